#!/usr/bin/env bash
# The README's recommended setup works when pasted verbatim:
#   - its main.cf block is conf/postfix-main.cf's settings, line for line, and its
#     DKIM milter lines are conf/opendkim.conf's (tests/e2e/test_postfix.sh and
#     test_dkim.sh apply those files to a real Postfix and deliver with them);
#   - no setting line in either carries a trailing comment (main.cf has none: the
#     comment would become part of the value);
#   - pasted at the end of Debian 12's stock main.cf, Postfix accepts it
#     (postfix check) and reads back exactly the values the block sets;
#   - its backstop.conf block, applied to the packaged conf/backstop.conf, passes
#     backstop-milter --check-config;
#   - the same for the filtering gateway's blocks: its main.cf lines are
#     conf/postfix-gateway.cf's (tests/e2e/test_gateway.sh applies that file), pasted
#     after the MX's Postfix accepts them, and its backstop.conf keys check.
# usage: test_postfix_setup.sh BACKSTOP_MILTER [BACKSTOP_CLI]
set -uo pipefail
MILTER=$1
REPO=$(dirname "$(readlink -f "$0")")/../..
README=$REPO/README.md

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
failed=0
pass() { printf 'PASS %s\n' "$1"; }
fail() {
    printf 'FAIL %s: %s\n' "$1" "$2"
    failed=1
}

# The setting lines of a main.cf text: no comments, no blank lines.
settings() { grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$1"; }

# first_block START_REGEX LANG: the first ```LANG block after the line matching START_REGEX
# (blocks of another language before it are skipped whole).
first_block() {
    awk -v start="$1" -v fence="\`\`\`$2" '
        !on && $0 ~ start {on = 1; next}
        on && skipping && /^```/ {skipping = 0; next}
        on && !in_block && $0 == fence {in_block = 1; next}
        on && !in_block && /^```/ {skipping = 1; next}
        in_block && /^```/ {exit}
        in_block {print}' "$README"
}
first_block '^\*\*2\. `/etc/postfix/main\.cf`' '' >"$WORK/readme.main.cf"
first_block '^\*\*3\. DKIM' '' >"$WORK/readme.dkim.cf"
first_block '^\*\*Filtering gateway\.\*\*' '' >"$WORK/readme.gateway.cf"
first_block '^\*\*Filtering gateway\.\*\*' ini >"$WORK/readme.gateway.conf"
first_block '^\*\*1\. `/etc/backstop/backstop\.conf`' ini >"$WORK/readme.backstop.conf"
for f in readme.main.cf readme.dkim.cf readme.backstop.conf readme.gateway.cf readme.gateway.conf; do
    [[ -s $WORK/$f ]] || fail "readme-blocks" "no block found for $f (README headings changed?)"
done

settings "$REPO/conf/postfix-main.cf" >"$WORK/conf.main.cf"
if diff -u "$WORK/conf.main.cf" <(settings "$WORK/readme.main.cf") >"$WORK/diff"; then
    pass "README main.cf block = conf/postfix-main.cf"
else
    fail "README main.cf block = conf/postfix-main.cf" "$(cat "$WORK/diff")"
fi

if diff -u <(settings "$REPO/conf/postfix-gateway.cf") <(settings "$WORK/readme.gateway.cf") \
    >"$WORK/diff"; then
    pass "README gateway block = conf/postfix-gateway.cf"
else
    fail "README gateway block = conf/postfix-gateway.cf" "$(cat "$WORK/diff")"
fi

# conf/opendkim.conf gives the Postfix milter lines as comments ("#   key = value").
sed -n 's/^#[[:space:]]*\(\(smtpd\|non_smtpd\)_milters = .*\)$/\1/p' "$REPO/conf/opendkim.conf" \
    >"$WORK/conf.dkim.cf"
if [[ -s $WORK/conf.dkim.cf ]] && diff -u "$WORK/conf.dkim.cf" "$WORK/readme.dkim.cf" >"$WORK/diff"; then
    pass "README DKIM milter lines = conf/opendkim.conf"
else
    fail "README DKIM milter lines = conf/opendkim.conf" "$(cat "$WORK/diff")"
fi

trailing=$(cat "$WORK/readme.main.cf" "$WORK/readme.dkim.cf" "$WORK/conf.main.cf" \
    "$WORK/readme.gateway.cf" "$REPO/conf/postfix-gateway.cf" |
    grep -v '^[[:space:]]*#' | grep '#' || true)
if [[ -z $trailing ]]; then
    pass "no trailing comments"
else
    fail "no trailing comments" "$trailing"
fi

# Pasted into Debian's stock main.cf (not /etc/postfix, which a running e2e test
# may have changed): postfix check accepts it and every value reads back as set.
check_pasted() {
    local name=$1 block=$2 dir=$WORK/postfix.$1 key value got
    mkdir -p "$dir"
    cp /usr/share/postfix/main.cf.debian "$dir/main.cf"
    cp /usr/share/postfix/master.cf.dist "$dir/master.cf"
    cat "$block" >>"$dir/main.cf"
    if ! postfix -c "$dir" check >"$WORK/check.out" 2>&1 || [[ -s $WORK/check.out ]]; then
        fail "$name: postfix check" "$(cat "$WORK/check.out")"
        return
    fi
    while IFS= read -r line; do
        key=${line%% =*}
        value=${line#*= }
        got=$(postconf -c "$dir" -h "$key" 2>&1)
        if [[ $got != "$value" ]]; then
            fail "$name: $key" "Postfix reads '$got', the block sets '$value'"
            return
        fi
    done < <(settings "$block")
    pass "$name: postfix check, and Postfix reads every value as set"
}
if command -v postfix >/dev/null && [[ -f /usr/share/postfix/main.cf.debian ]]; then
    check_pasted main.cf "$WORK/readme.main.cf"
    # The DKIM lines replace the milter lines of the main.cf block.
    grep -v -e '^smtpd_milters =' -e '^non_smtpd_milters =' "$WORK/readme.main.cf" |
        cat - "$WORK/readme.dkim.cf" >"$WORK/readme.both.cf"
    check_pasted main.cf+dkim "$WORK/readme.both.cf"
    cat "$WORK/readme.main.cf" "$WORK/readme.gateway.cf" >"$WORK/readme.gateway.both.cf"
    check_pasted main.cf+gateway "$WORK/readme.gateway.both.cf"
else
    fail "postfix check" "Postfix is not installed (scripts/test installs it)"
fi

# The backstop.conf block applied to the packaged file as an admin edits it: each
# key replaces its commented or live line in its section (the general keys go to
# the top), key files made for the test.
# The gateway's keys go on top of the MX's, as its README paragraph says.
cat "$WORK/readme.backstop.conf" "$WORK/readme.gateway.conf" >"$WORK/readme.both.conf"
python3 - "$REPO/conf/backstop.conf" "$WORK/readme.both.conf" "$WORK/backstop.conf" <<'EOF'
import re, sys
conf = open(sys.argv[1]).read().split('\n')
edits, section = [], ''
for line in open(sys.argv[2]):
    line = line.strip()
    if not line or line.startswith('#'):
        continue
    m = re.fullmatch(r'\[(.+)\]', line)
    if m:
        section = m.group(1)
        continue
    key, value = [x.strip() for x in line.split('=', 1)]
    edits.append((section, key, value))
for section, key, value in edits:
    current, done = '', False
    for i, line in enumerate(conf):
        m = re.fullmatch(r'\[(.+)\]', line.strip())
        if m:
            current = m.group(1)
            continue
        if current == section and re.match(r'#? ?' + re.escape(key) + r' =', line):
            conf[i] = f'{key} = {value}'
            done = True
            break
    if not done:
        sys.exit(f'{section or "general"}: {key} is not in conf/backstop.conf')
open(sys.argv[3], 'w').write('\n'.join(conf))
EOF
if [[ $? -ne 0 ]]; then
    fail "backstop.conf block" "cannot be applied to conf/backstop.conf"
else
    (
        umask 077
        head -c 32 /dev/urandom | base64 >"$WORK/srs.secrets"
        echo "1 $(head -c 32 /dev/urandom | base64)" >"$WORK/batv.keys"
        head -c 32 /dev/urandom | base64 >"$WORK/watermark.keys"
    )
    # Only the key files' paths differ from the installed system.
    out=$("$MILTER" --config "$WORK/backstop.conf" --check-config \
        --srs.secrets "$WORK/srs.secrets" --batv.keys "$WORK/batv.keys" \
        --watermark.keys "$WORK/watermark.keys" 2>&1)
    if [[ $? -eq 0 && $out == *"configuration OK"* ]]; then
        pass "backstop.conf block applied to conf/backstop.conf: --check-config OK"
    else
        fail "backstop.conf block applied to conf/backstop.conf" "$out"
    fi
fi

exit $failed
