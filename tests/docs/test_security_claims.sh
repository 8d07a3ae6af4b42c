#!/usr/bin/env bash
# docs/SECURITY.md names a test for each claim: every GoogleTest it names
# (`Suite.Test`, or `Suite.*`), fuzz harness, script and quoted check must exist, so a
# renamed or removed test cannot leave a claim standing on nothing.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DOC=$ROOT/docs/SECURITY.md
fail=0 names=0
missing() { echo "FAIL docs/SECURITY.md names $1, which does not exist"; fail=$((fail + 1)); }
# GoogleTest names: `Suite.Test` and `Suite.*` (the "Suite.Test" of the intro is the form).
while read -r t; do
    suite=${t%%.*} name=${t#*.}
    [[ $t == Suite.Test ]] && continue
    names=$((names + 1))
    if [[ $name == '*' ]]; then
        grep -rqE "TEST(_F|_P)?\($suite, " "$ROOT/tests" || missing "$t"
    else
        grep -rqE "TEST(_F|_P)?\($suite, $name\)" "$ROOT/tests" || missing "$t"
    fi
done < <(grep -oE '`[A-Z][A-Za-z0-9]*\.([A-Z][A-Za-z0-9]*|\*)`' "$DOC" | tr -d '`' | sort -u)
# differential.* is the ctest prefix of tests/differential.
grep -q '`differential\.\*`' "$DOC" && { [[ -d $ROOT/tests/differential ]] || missing differential.*; }
# Fuzz harnesses and test scripts.
while read -r f; do
    names=$((names + 1))
    [[ -f $ROOT/tests/fuzz/$f.cpp ]] || missing "$f"
done < <(grep -oE '`fuzz_[a-z_]+`' "$DOC" | tr -d '`' | sort -u)
while read -r f; do
    names=$((names + 1))
    [[ -f $ROOT/$f || -f $ROOT/tests/e2e/$f ]] || missing "$f"
done < <(grep -oE '`(tests/[a-z/_]+\.sh|test_[a-z_]+\.sh)`' "$DOC" | tr -d '`' | sort -u)
# Quoted check names of the CLI test.
while read -r c; do
    names=$((names + 1))
    grep -qF "check \"$c" "$ROOT/tests/cli/test_cli.sh" || missing "test_cli.sh check \"$c\""
done < <(grep -oE '`tests/cli/test_cli.sh` "[^"]+"' "$DOC" | sed 's/.*"\(.*\)"/\1/' | sort -u)
# Postfix cases: "case X" must be a case of test_postfix.sh.
while read -r c; do
    names=$((names + 1))
    grep -qE "^case_$c\(\)" "$ROOT/tests/e2e/test_postfix.sh" || missing "test_postfix.sh case $c"
done < <(grep -oE 'test_postfix.sh` case [a-z0-9]+' "$DOC" | awk '{print $3}' | sort -u)
echo "security claims: $names names checked, $fail missing"
[[ $fail -eq 0 && $names -gt 30 ]]
