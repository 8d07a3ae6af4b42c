#!/usr/bin/env bash
# shellcheck disable=SC2015  # "cond && ok || bad" is safe: ok() always succeeds.
# The man pages: lint clean with mandoc and groff, and in step with the programs
# (every CLI command and option, every milter option, the version).
#   test_man.sh PATH-TO-backstop-milter PATH-TO-backstop
set -uo pipefail
M=${1:?usage: test_man.sh PATH-TO-backstop-milter PATH-TO-backstop}
B=${2:?usage: test_man.sh PATH-TO-backstop-milter PATH-TO-backstop}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PAGES=("$ROOT/man/backstop-milter.8" "$ROOT/man/backstop.conf.5" "$ROOT/man/backstop.1")
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); printf 'FAIL %s\n' "$1"; [[ -n ${2:-} ]] && printf '%s\n' "$2" | sed 's/^/  /'; }

# roff source spelling of an option: --foo-bar is written \-\-foo\-bar.
roff() { printf '%s' "$1" | sed 's/-/\\-/g'; }

command -v mandoc >/dev/null && ok || bad "mandoc is not installed (apt-get install mandoc)"

for page in "${PAGES[@]}"; do
    name=$(basename "$page")
    if [[ ! -f $page ]]; then bad "$name: missing"; continue; fi
    # mandoc: no message at level warning or above (no filter needed so far).
    if out=$(mandoc -T lint -W warning "$page" 2>&1) && [[ -z $out ]]; then ok; else bad "$name: mandoc -T lint -W warning" "$out"; fi
    if command -v groff >/dev/null; then
        if out=$(groff -ww -z -man "$page" 2>&1) && [[ -z $out ]]; then ok; else bad "$name: groff -ww -z -man" "$out"; fi
    fi
    # The version in .TH is the programs' version.
    version=$("$B" --version | awk '{print $2}')
    if grep -q "^\.TH .*\"backstop $version\"" "$page"; then ok; else bad "$name: .TH does not name backstop $version"; fi
done

# backstop-milter(8): the options of the daemon itself.
for opt in --config --check-config --help --version; do
    grep -qF -- "$(roff "$opt")" "$ROOT/man/backstop-milter.8" && ok || bad "backstop-milter.8 does not mention $opt"
done
for sig in SIGUSR1 SIGTERM SIGHUP SIGINT; do
    grep -q "$sig" "$ROOT/man/backstop-milter.8" && ok || bad "backstop-milter.8 does not mention $sig"
done
grep -qF "$(roff "$("$M" --version | awk '{print $2}')")" "$ROOT/man/backstop-milter.8" && ok ||
    bad "backstop-milter --version differs from the man page"

# backstop(1): every command and subcommand has a subsection, every option of
# each is documented.
commands=$("$B" --help | awk '/^commands:/ {on = 1; next} on && /^  [a-z]/ {print $1}')
[[ -n $commands ]] && ok || bad "no commands in 'backstop --help'"
for cmd in $commands; do
    subs=$("$B" "$cmd" --help 2>&1 | grep -oE "backstop $cmd [a-z]+( |$)" | awk '{print $3}' | sort -u)
    [[ -z $subs ]] && subs="-"
    for sub in $subs; do
        if [[ $sub == - ]]; then label=$cmd; args=("$cmd"); else label="$cmd $sub"; args=("$cmd" "$sub"); fi
        grep -qx "\.SS $label" "$ROOT/man/backstop.1" && ok || bad "backstop.1 has no '.SS $label'"
        if ! help=$("$B" "${args[@]}" --help 2>&1); then bad "backstop $label --help failed" "$help"; continue; fi
        opts=$(printf '%s\n' "$help" | grep -oE '^ +(-h \[ )?--[a-z][a-z-]*' | grep -oE -- '--[a-z-]+' | grep -vx -- '--help')
        for opt in $opts; do
            # The option must appear in the command's own subsection.
            if awk -v ss=".SS $label" -v o="$(roff "$opt")" '
                $0 == ss {on = 1; next}
                /^\.S[SH] / {on = 0}
                on && index($0, o) {found = 1}
                END {exit !found}' "$ROOT/man/backstop.1"; then
                ok
            else
                bad "backstop.1: '$label' does not document $opt"
            fi
        done
    done
done
for status in 0 1 2; do
    awk '/^\.SH EXIT STATUS/ {on = 1; next} /^\.SH / {on = 0} on' "$ROOT/man/backstop.1" | grep -qx "\.B $status" && ok ||
        bad "backstop.1: EXIT STATUS does not describe $status"
done

echo "docs: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
