#!/usr/bin/env bash
# The admin CLI as a script or greylister uses it: exit codes, one answer line per
# input line, stderr reasons, co-process mode, key-file refusals.
set -euo pipefail
B=${1:?usage: test_cli.sh PATH-TO-backstop}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
check() {  # check NAME EXPECTED ACTUAL
    if [[ "$2" == "$3" ]]; then pass=$((pass + 1)); else fail=$((fail + 1)); printf 'FAIL %s\n  expected: %q\n  actual:   %q\n' "$1" "$2" "$3"; fi
}
(umask 077; echo tops3cr3t >"$T/srs"; echo "1 secret" >"$T/batv")
NOW=1577836860
DAY779=$((20779 * 86400))

out=$("$B" srs forward --secrets "$T/srs" --srs-domain example.com --time $NOW test@otherdomain.com)
check "srs forward vector" "SRS0=vmyz=2W=otherdomain.com=test@example.com" "$out"

# Option forms: after the arguments, --name=value, an abbreviated long name (Boost's
# guessing), and "--" before an argument that starts with a dash.
check "options after arguments" "$out" \
    "$("$B" srs forward test@otherdomain.com --time $NOW --srs-domain example.com --secrets "$T/srs")"
check "--name=value" "$out" \
    "$("$B" srs forward --secrets="$T/srs" --srs-domain=example.com --time=$NOW test@otherdomain.com)"
check "abbreviated long name" "$out" \
    "$("$B" srs forward --secret "$T/srs" --srs-dom example.com --time $NOW test@otherdomain.com)"
set +e
"$B" srs forward --s "$T/srs" test@otherdomain.com >/dev/null 2>"$T/err"
rc=$?
set -e
check "ambiguous option is a usage error" 2 $rc
check "ambiguous option named" "1" "$(grep -c "option '--s' is ambiguous" "$T/err")"
check "-- ends the options" '{"file":"-x","error":"cannot open file"}' \
    "$("$B" classify -- -x 2>/dev/null || true)"

# Many files, as a script passes them: two directories taken in turn, a bare name,
# a missing file, a file given twice and more files than one batch of closes (64).
# Each line names its file, in input order, and its answer is that file's alone.
mkdir -p "$T/d1" "$T/d2"
args=()
for i in $(seq 1 70); do
    d="$T/d$((i % 2 + 1))"
    printf 'From: x%d@example.org\nSubject: note %d\n\nbody %d\n' "$i" "$i" "$i" >"$d/m$i.eml"
    args+=("$d/m$i.eml")
    [[ $i == 40 ]] && args+=("$T/d1/none.eml" "$d/m$i.eml")
done
printf 'From: bare@example.org\n\nbare\n' >"$T/bare.eml"
abs_b=$(realpath "$B")
set +e
out=$(cd "$T" && "$abs_b" classify "${args[@]}" bare.eml)
rc=$?
set -e
check "many files: exit status names the missing one" 1 $rc
check "many files: one line each" 73 "$(printf '%s\n' "$out" | wc -l)"
expect=$(printf '%s\n' "${args[@]}" bare.eml)
check "many files: in input order" "$expect" "$(printf '%s\n' "$out" | sed 's/^{"file":"\([^"]*\)".*/\1/')"
check "many files: the missing one is an error" \
    "{\"file\":\"$T/d1/none.eml\",\"error\":\"cannot open file\"}" "$(printf '%s\n' "$out" | sed -n 41p)"
check "many files: 72 read" 72 "$(printf '%s\n' "$out" | grep -c '"kind":"none"')"
# Closes are batched: with fewer descriptors allowed than a batch, every file is still read.
check "many files: under a low descriptor limit" 72 \
    "$( (ulimit -n 16; cd "$T" && "$abs_b" classify "${args[@]}" bare.eml 2>/dev/null) | grep -c '"kind":"none"')"

# stdin: one answer line per input line, in order, failures as empty lines.
set +e
out=$(printf 'SRS0=XjO9=2V=otherdomain.com=test@example.com\nSRS0=FAKE=2V=otherdomain.com=test@example.com\nsrs0=xjo9=2v=otherdomain.com=test@example.com\n' |
    "$B" srs reverse --secrets "$T/srs" --time $NOW 2>"$T/err")
rc=$?
set -e
check "srs reverse stdin answers" $'test@otherdomain.com\n\ntest@otherdomain.com' "$out"
check "srs reverse exit 1 on a failure" 1 $rc
check "srs reverse reason on stderr" "SRS0=FAKE=2V=otherdomain.com=test@example.com: hash invalid" "$(cat "$T/err")"

out=$("$B" batv sign --keys "$T/batv" --time $DAY779 user@example.com)
check "batv sign vector" "prvs=1786c06615=user@example.com" "$out"
out=$("$B" batv verify --keys "$T/batv" --time $DAY779 prvs=1786c06615=user@example.com)
check "batv verify prints original" "user@example.com" "$out"
set +e
"$B" batv verify --keys "$T/batv" --time $((DAY779 + 8 * 86400)) prvs=1786c06615=user@example.com >/dev/null 2>"$T/err"
rc=$?
set -e
check "batv verify expired exit" 1 $rc
check "batv verify expired reason" "prvs=1786c06615=user@example.com: expired: BATV tag expired (day stamp 786)" "$(cat "$T/err")"

check "verp encode" "owner+a=b.example@lists.example" "$("$B" verp encode --prefix owner@lists.example a@b.example)"
check "verp decode" "a@b.example" "$("$B" verp decode owner+a=b.example@lists.example)"
check "verp qmail" "list-a=b.example@lists.example" "$("$B" verp encode --prefix 'list-@lists.example-@[]' a@b.example)"
check "normalize" $'user@example.com\ntest@otherdomain.com' \
    "$(printf 'prvs=1786c06615=user@Example.com\nSRS0=vmyz=2W=otherdomain.com=test@example.com\n' | "$B" normalize)"

# A line longer than 8 KiB (a runaway producer) is answered with an empty line and
# not held; the lines around it, the last one without a newline, are answered.
set +e
out=$({ echo test@otherdomain.com; head -c 100000 /dev/zero | tr '\0' a; echo; printf %s test@otherdomain.com; } |
    "$B" srs forward --secrets "$T/srs" --srs-domain example.com --time $NOW 2>"$T/err")
rc=$?
set -e
check "over-long line: answers per line" $'SRS0=vmyz=2W=otherdomain.com=test@example.com\n\nSRS0=vmyz=2W=otherdomain.com=test@example.com' "$out"
check "over-long line: failure status" 1 $rc
check "over-long line: named" "input line longer than 8192 bytes: not read" "$(cat "$T/err")"
out=$(printf '%8192s\n' x | tr ' ' a | "$B" srs forward --secrets "$T/srs" --srs-domain example.com --time $NOW 2>&1 || true)
check "8192-byte line is read" 0 "$(grep -c 'longer than' <<<"$out")"

# Co-process: the answer to the first line arrives before the second line is written
# (30 s is a hang guard for a loaded machine, not a speed check).
coproc CO { "$B" srs forward --secrets "$T/srs" --srs-domain example.com --time $NOW; }
# Bash unsets CO_PID once it has reaped the co-process, which can be before the wait.
co_pid=$CO_PID
echo test@otherdomain.com >&"${CO[1]}"
read -r -t 30 line <&"${CO[0]}" || line=timeout
check "co-process answers per line" "SRS0=vmyz=2W=otherdomain.com=test@example.com" "$line"
exec {CO[1]}>&-
wait "$co_pid" || true

# Key files: missing, world-readable, empty are usage errors (2) naming the file.
chmod 644 "$T/srs"
set +e
"$B" srs forward --secrets "$T/srs" --srs-domain example.com a@b.example >/dev/null 2>"$T/err"
rc=$?
set -e
check "world-readable secrets refused" 2 $rc
grep -q "$T/srs: mode 0644" "$T/err" && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL message names file and mode: $(cat "$T/err")"; }
set +e
"$B" batv sign --keys "$T/missing" a@b.example >/dev/null 2>&1; check "missing keys refused" 2 $?
"$B" srs frobnicate >/dev/null 2>&1; check "unknown subcommand" 2 $?
"$B" nosuchcommand >/dev/null 2>&1; check "unknown command" 2 $?
"$B" srs forward --help >/dev/null 2>&1; check "help despite required options" 0 $?
set -e
keyline=$("$B" keygen --batv-key 3)
[[ "$keyline" =~ ^3\ [A-Za-z0-9_-]{32}$ ]] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL keygen: $keyline"; }

# bounces: records written by the milter into a sqlite store. A reader never creates one.
set +e
"$B" bounces list --state "sqlite:$T/state.db" >/dev/null 2>"$T/err"; check "bounces list, no database" 2 $?
set -e
check "no database named" "backstop bounces list: state sqlite:$T/state.db: no such database" "$(cat "$T/err")"
[[ ! -e $T/state.db ]] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL reader created $T/state.db"; }
python3 - "$T/state.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("CREATE TABLE bounces(address TEXT PRIMARY KEY, status TEXT, reason TEXT, "
           "first_seen INTEGER, last_seen INTEGER, count INTEGER)")
db.execute("INSERT INTO bounces VALUES('gone@remote.example','5.1.1','userunknown',1577836800,1577923200,3)")
db.commit()
PY
check "bounces list" $'gone@remote.example\t3\t5.1.1\tuserunknown\t2020-01-01T00:00:00Z\t2020-01-02T00:00:00Z' \
    "$("$B" bounces list --state "sqlite:$T/state.db")"
check "bounces export" '[
 {"address":"gone@remote.example","count":3,"status":"5.1.1","reason":"userunknown","first_seen":"2020-01-01T00:00:00Z","last_seen":"2020-01-02T00:00:00Z"}
]' "$("$B" bounces export --state "sqlite:$T/state.db" --json)"
# --config: the milter's state and bounce-expiry (a 2020 record expired long ago).
printf 'state = sqlite:%s\n[outbound]\nbounce-expiry = 0\n' "$T/state.db" >"$T/keep.conf"
printf 'state = sqlite:%s\n' "$T/state.db" >"$T/default.conf"
check "bounces list --config, kept forever" "gone@remote.example" "$("$B" bounces list --config "$T/keep.conf" | cut -f1)"
check "bounces list --config, expired after 90 days" "" "$("$B" bounces list --config "$T/default.conf")"
check "bounces forget" "GONE@remote.example: forgotten" "$("$B" bounces forget --state "sqlite:$T/state.db" GONE@remote.example)"
set +e
"$B" bounces show --state "sqlite:$T/state.db" gone@remote.example >/dev/null 2>&1; check "bounces show after forget" 1 $?
set -e

echo "cli: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
