#!/usr/bin/env bash
# shellcheck disable=SC2015  # "cond && ok || bad" is safe: ok() always succeeds.
# Every configuration key (as 'backstop-milter --help' lists them) is documented
# in backstop.conf(5) and present in the sample conf/backstop.conf, in its
# section; the sample, unedited, refuses to start in one line that says what to set;
# with its domains set it passes --check-config with real key files, also with every
# commented-out key line switched on; an unknown key is an error naming file:line.
#   test_config_documented.sh PATH-TO-backstop-milter PATH-TO-backstop
set -uo pipefail
M=${1:?usage: test_config_documented.sh PATH-TO-backstop-milter PATH-TO-backstop}
B=${2:?usage: test_config_documented.sh PATH-TO-backstop-milter PATH-TO-backstop}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MAN=$ROOT/man/backstop.conf.5
SAMPLE=$ROOT/conf/backstop.conf
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); printf 'FAIL %s\n' "$1"; [[ -n ${2:-} ]] && printf '%s\n' "$2" | sed 's/^/  /'; }

# The keys: the long options after the "configuration" heading of --help,
# as section.key (general keys have no section).
keys=$("$M" --help | awk '/^configuration/ {on = 1; next} on' | grep -oE '^ +--[a-z][a-z.-]*' | sed 's/^ *--//')
count=$(printf '%s\n' "$keys" | grep -c .)
if [[ $count -ge 30 ]]; then ok; else bad "only $count keys found in 'backstop-milter --help'"; fi

# Documented keys: ".BI key " = "" lines in backstop.conf(5), as section.key,
# where the section is the .SH they are under ("GENERAL KEYS" or "[section]").
documented=$(awk '
    /^\.SH / {
        sh = substr($0, 5); gsub(/"/, "", sh)
        if (sh == "GENERAL KEYS") sec = "-"
        else if (sh ~ /^\[[a-z]+\]$/) sec = substr(sh, 2, length(sh) - 2)
        else sec = ""
        next
    }
    sec != "" && /^\.BI [a-z\\-]+ " = "/ {
        k = $2; gsub(/\\-/, "-", k)
        print (sec == "-" ? k : sec "." k)
    }' "$MAN" | sort -u)

# Keys in the sample, set or commented out ("key = v" or "# key = v"), as
# section.key; general keys come before the first section header.
in_sample=$(awk '
    /^\[[a-z]+\]/ { sec = substr($1, 2, length($1) - 2); if (sec == "general") sec = ""; next }
    /^(# )?[a-z][a-z-]* *=/ {
        line = $0; sub(/^# /, "", line); split(line, p, / *=/)
        print (sec == "" ? p[1] : sec "." p[1])
    }' "$SAMPLE" | sort)

for key in $keys; do
    if grep -qx -- "$key" <<<"$documented"; then ok; else bad "backstop.conf.5 does not document $key in its section"; fi
    n=$(grep -cx -- "$key" <<<"$in_sample")
    if [[ $n -eq 1 ]]; then ok; else bad "conf/backstop.conf has $key $n times in its section (want exactly once)"; fi
done
# And nothing documented or in the sample that the milter does not know.
for key in $documented $(sort -u <<<"$in_sample"); do
    grep -qx -- "$key" <<<"$keys" && ok || bad "documented key $key is not a key of backstop-milter"
done

# Every key's entry in the man page says its default.
missing_default=$(awk '
    function flush() { if (key != "" && !def) print key; key = ""; def = 0 }
    /^\.S[HS] / {flush()}
    /^\.SH / {in_keys = ($0 ~ /GENERAL KEYS|\[/); next}
    /^\.TP/ {flush(); next}
    in_keys && /^\.BI [a-z\\-]+ " = "/ {key = $2}
    /Default:/ {def = 1}
    END {flush()}' "$MAN")
[[ -z $missing_default ]] && ok || bad "backstop.conf.5 entries without 'Default:'" "$missing_default"

# The sample with its key-file paths pointed at fresh 0600 files.
(
    umask 077
    "$B" keygen >"$T/srs.secrets"
    "$B" keygen --batv-key 1 >"$T/batv.keys"
    "$B" keygen >"$T/watermark.keys"
    printf '^no-?reply$\n' >"$T/localpart-deny"
    printf 'postmaster\nalice\n' >"$T/valid-localparts"
)
awk -v dir="$T" '
    /^\[[a-z]+\]/ { sec = substr($1, 2, length($1) - 2) }
    sec == "srs" && /^secrets *=/ { print "secrets = " dir "/srs.secrets"; next }
    sec == "batv" && /^keys *=/ { print "keys = " dir "/batv.keys"; next }
    sec == "watermark" && /^keys *=/ { print "keys = " dir "/watermark.keys"; next }
    { print }' "$SAMPLE" >"$T/unedited.conf"

# Unedited, the sample names no domain of ours: the milter refuses to start, with
# one line that says what to set; then, with only [domains] local set, one line
# for the SRS domain.
want="backstop-milter: $T/unedited.conf: [domains] local is not set: set it to the domains this host sends mail for (local = example.org)"
out=$("$M" --config "$T/unedited.conf" --check-config 2>&1)
rc=$?
if [[ $rc -eq 1 && $out == "$want" ]]; then ok; else bad "unedited sample: want rc 1 and the one line about [domains] local (rc=$rc)" "$out"; fi
sed 's/^# local = example.org$/local = example.org/' "$T/unedited.conf" >"$T/local-only.conf"
want="backstop-milter: $T/local-only.conf: [srs] domain is not set: set it to a domain whose MX is this host, for the senders of forwarded mail (domain = fwd.example.org), or set enable = false"
out=$("$M" --config "$T/local-only.conf" --check-config 2>&1)
rc=$?
if [[ $rc -eq 1 && $out == "$want" ]]; then ok; else bad "sample with only local set: want rc 1 and the one line about [srs] domain (rc=$rc)" "$out"; fi

# Edited as an administrator would: both values set, from their commented examples.
sed -e 's/^# local = example.org$/local = example.org/' \
    -e 's/^# domain = fwd.example.org$/domain = fwd.example.org/' "$T/unedited.conf" >"$T/backstop.conf"
if out=$("$M" --config "$T/backstop.conf" --check-config 2>&1); then ok; else bad "sample fails --check-config" "$out"; fi

# Every "# key = value" line switched on: the values shown are all valid.
sed -E 's/^# ([a-z][a-z-]* *=)/\1/' "$T/backstop.conf" |
    sed -e "s#^localpart-deny = .*#localpart-deny = $T/localpart-deny#" \
        -e "s#^valid-localparts = .*#valid-localparts = $T/valid-localparts#" >"$T/all.conf"
if out=$("$M" --config "$T/all.conf" --check-config 2>&1); then ok; else bad "sample with every key switched on fails --check-config" "$out"; fi

# A key file others can read is refused, naming the file.
chmod 644 "$T/batv.keys"
out=$("$M" --config "$T/backstop.conf" --check-config 2>&1)
rc=$?
if [[ $rc -eq 1 && $out == *"$T/batv.keys"* ]]; then ok; else bad "world-readable key file not refused (rc=$rc)" "$out"; fi
chmod 600 "$T/batv.keys"

# Unknown keys are errors naming file:line (and the section).
{ echo "no-such-key = 1"; cat "$T/backstop.conf"; } >"$T/unknown1.conf"
out=$("$M" --config "$T/unknown1.conf" --check-config 2>&1)
rc=$?
if [[ $rc -eq 1 && $out == *"$T/unknown1.conf:1: unknown key 'no-such-key'"* ]]; then ok; else bad "unknown general key (rc=$rc)" "$out"; fi
{ cat "$T/backstop.conf"; printf '[srs]\nfrobnicate = yes\n'; } >"$T/unknown2.conf"
line=$(wc -l <"$T/unknown2.conf")
out=$("$M" --config "$T/unknown2.conf" --check-config 2>&1)
rc=$?
if [[ $rc -eq 1 && $out == *"$T/unknown2.conf:$line: unknown key 'frobnicate' in [srs]"* ]]; then ok; else bad "unknown key in [srs] (rc=$rc, want line $line)" "$out"; fi
# The same on the command line.
out=$("$M" --config "$T/backstop.conf" --check-config --srs.frobnicate yes 2>&1)
rc=$?
if [[ $rc -eq 1 && $out == *frobnicate* ]]; then ok; else bad "unknown command-line option accepted (rc=$rc)" "$out"; fi

echo "docs: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
