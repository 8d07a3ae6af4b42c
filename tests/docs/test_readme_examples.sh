#!/usr/bin/env bash
# shellcheck disable=SC2015  # "cond && ok || bad" is safe: ok() always succeeds.
# README, "The admin CLI": every example prints what the README says it prints, and
# the synopsis is the CLI's own usage lines, every command included.
#   test_readme_examples.sh PATH-TO-backstop-milter PATH-TO-backstop
# The examples run in a temporary directory as one shell, with /etc/backstop and
# /var/lib/backstop moved into it and "backstop" being the built CLI; the output
# conventions are in tests/docs/readme_blocks.sh.
set -uo pipefail
B=$(realpath -- "${2:?usage: test_readme_examples.sh PATH-TO-backstop-milter PATH-TO-backstop}")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
README=${README:-$ROOT/README.md} # README=FILE: check another copy (to see the test fail)
# shellcheck source=tests/docs/readme_blocks.sh
source "$ROOT/tests/docs/readme_blocks.sh"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); printf 'FAIL %s\n' "$1"; [[ -n ${2:-} ]] && printf '%s\n' "$2" | sed 's/^/  /'; }
SECTION='^## The admin CLI$'

# --- The examples ----------------------------------------------------------------
mkdir -p "$T/work" "$T/etc/backstop" "$T/var/lib/backstop" # as the package leaves them
ln -s "$ROOT/tests" "$T/work/tests" # examples may name the repository's sample files
readme_blocks "$README" "$SECTION" sh |
    sed -e "s#/etc/backstop#$T/etc/backstop#g" -e "s#/var/lib/backstop#$T/var/lib/backstop#g" >"$T/examples"
if out=$(readme_run_block "$T/examples" "$T/work" "backstop() { $(printf '%q' "$B") \"\$@\"; }"); then
    ok
    printf '%s\n' "$out"
else
    bad "README examples (The admin CLI)" "$out"
fi

# --- The synopsis: the usage lines of 'backstop COMMAND --help', all of them -------
# A usage line starts with "usage: backstop" or an indented "backstop"; a more
# indented line continues it. Blanks are squeezed for the comparison.
squeeze() { tr -s ' \t' '  ' | sed 's/^ //; s/ $//'; }
usage_lines() {
    awk '
        /^usage: backstop / {if (u != "") print u; u = substr($0, 8); next}
        u != "" && /^ +backstop / {print u; sub(/^ +/, ""); u = $0; next}
        u != "" && /^ +[^ ]/ {sub(/^ +/, " "); u = u $0; next}
        {if (u != "") print u; u = ""; exit}
        END {if (u != "") print u}'
}
commands=$("$B" --help | awk '/^commands:/ {on = 1; next} on && /^  [a-z]/ {print $1}')
[[ $(wc -w <<<"$commands") -ge 8 ]] && ok || bad "too few commands in 'backstop --help': $commands"
for cmd in $commands; do
    "$B" "$cmd" --help 2>&1 | usage_lines
done | squeeze | sort -u >"$T/usage.cli"
awk -v start="$SECTION" '
    !on && $0 ~ start {on = 1; next}
    on && /^## / {exit}
    on && !in_block && $0 == "```" {in_block = 1; next}
    on && in_block && /^```/ {exit}
    in_block {print}' "$README" | squeeze | sort -u >"$T/usage.readme"
for cmd in $commands; do
    grep -q "^backstop $cmd\( \|$\)" "$T/usage.cli" && ok || bad "'backstop $cmd --help' prints no usage line"
done
if missing=$(comm -23 "$T/usage.cli" "$T/usage.readme") && [[ -z $missing ]]; then ok; else
    bad "README synopsis lacks these usage lines of the CLI" "$missing"
fi
if extra=$(comm -13 "$T/usage.cli" "$T/usage.readme") && [[ -z $extra ]]; then ok; else
    bad "README synopsis has lines the CLI does not print" "$extra"
fi

echo "docs: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
