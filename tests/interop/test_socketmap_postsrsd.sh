#!/usr/bin/env bash
# Interop: backstop-milter's socketmap (maps forward and reverse, as Postfix's
# sender_canonical_maps and recipient_canonical_maps ask them) against postsrsd
# 1.10's tcp_table ports, the same secret and SRS domain on both sides. At a
# fixed instant (libfaketime for both daemons) and on the real clock: our
# forward answer equals postsrsd's, each reverses the other's, both refuse
# forged, expired and already rewritten addresses. Every lookup goes over one
# connection, one request outstanding, as Postfix asks.
# Usage: test_socketmap_postsrsd.sh /path/to/backstop /path/to/backstop-milter
set -euo pipefail
source "$(dirname "$0")/lib.sh"
interop_init "$@"
MILTER=${2:-}
[[ -n $MILTER && -x $MILTER ]] || die "usage: $0 /path/to/backstop /path/to/backstop-milter"
require_oracle postsrsd faketime
ORACLE=postsrsd

# Postfix socketmap client: one connection, one request outstanding. OK prints
# the value; NOTFOUND an empty line (the key on stderr); anything else
# (TEMP, PERM, a broken reply) a line no check can take for an answer.
cat >"$WORK/socketmap.py" <<'PY'
import socket, sys

host, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.create_connection((host, port), timeout=10)
f = s.makefile("rwb")

def netstring():
    n = b""
    while (c := f.read(1)) != b":":
        if not c.isdigit() or len(n) > 6:
            raise SystemExit(f"socketmap: bad reply length {n + c!r}")
        n += c
    data = f.read(int(n))
    if f.read(1) != b",":
        raise SystemExit("socketmap: reply without ','")
    return data.decode()

for line in sys.stdin:
    key = line.rstrip("\n")
    q = f"{name} {key}".encode()
    f.write(str(len(q)).encode() + b":" + q + b",")
    f.flush()
    reply = netstring()
    if reply.startswith("OK "):
        print(reply[3:])
    elif reply == "NOTFOUND ":
        print(f"{key}: NOTFOUND", file=sys.stderr); print("")
    else:
        print(f"{key}: unexpected reply {reply!r}", file=sys.stderr); print(f"!socketmap: {reply}")
PY

declare -A SM_PORTS MILTER_PIDS
# milter MODE: from now on, `ours` asks the backstop-milter for MODE's clock
# (libfaketime preloaded, as for postsrsd), started once: a socketmap on free
# loopback ports, SRS with CONF main's secret and domain (as postsrsd's).
# Sets SM_PORT and MILTER_PID.
milter() {
  local mode=$1 ports conf=$WORK/milter.$1.conf pid
  if [[ -n ${SM_PORTS[$mode]:-} ]]; then
    SM_PORT=${SM_PORTS[$mode]}; MILTER_PID=${MILTER_PIDS[$mode]}
    return 0
  fi
  local -a env=()
  [[ $mode == real ]] || env=(LD_PRELOAD="$LIBFAKETIME" FAKETIME="@$(mode_date "$mode")")
  for _ in 1 2 3; do
    ports=$("$PY" "$WORK/tcptable.py" --free-ports 2)
    SM_PORT=${ports#* }
    cat >"$conf" <<CONF
socket = inet:${ports% *}@127.0.0.1
socketmap = inet:$SM_PORT@127.0.0.1
foreground = true
allow-root = true
log-level = info
[domains]
local = ours.example
[srs]
enable = true
domain = $(conf_domain main)
secrets = $(conf_keyfile main)
CONF
    env "${env[@]}" "$MILTER" --config "$conf" >"$WORK/milter.$mode.log" 2>&1 &
    pid=$!
    track_pid "$pid"
    if "$PY" "$WORK/tcptable.py" --wait 127.0.0.1 "$SM_PORT" && kill -0 "$pid" 2>/dev/null; then
      MILTER_PID=$pid; SM_PORTS[$mode]=$SM_PORT; MILTER_PIDS[$mode]=$pid
      return 0
    fi
    kill "$pid" 2>/dev/null || true
    cat "$WORK/milter.$mode.log" >&2
  done
  die "backstop-milter did not start (3 tries)"
}

# ours MAP < in > out: our socketmap's answers; the stderr of the last call in
# $WORK/sm.err.
ours() { "$PY" "$WORK/socketmap.py" 127.0.0.1 "$SM_PORT" "$1" 2>"$WORK/sm.err"; }

# theirs MODE CONF forward|reverse < in > out: postsrsd 1.10 at MODE's clock.
theirs() {
  postsrsd_once "$1" "$2"
  if [[ $3 == forward ]]; then tcptable "$PSRS_FWD"; else tcptable "$PSRS_REV"; fi
}

# all_refused_500 LABEL: every postsrsd refusal in $WORK/x.err was a 500 (a
# refusal), none a 400 (a temporary failure that Postfix would retry).
all_refused_500() {
  local n500 nall
  n500=$(grep -c ': 500 ' "$WORK/x.err" || true); nall=$(wc -l <"$WORK/x.err")
  check_true "$1: postsrsd refused with 500 ($n500 of $nall)" test "$n500" -eq "$nall" -a "$nall" -gt 0
}
# all_notfound LABEL N: our socketmap answered NOTFOUND to all N (not TEMP or PERM).
all_notfound() {
  local n
  n=$(grep -c ': NOTFOUND$' "$WORK/sm.err" || true)
  check_true "$1: backstop answered NOTFOUND ($n of $2)" test "$n" -eq "$2"
}

# suite MODE SEED COUNT: every check at one clock.
suite() {
  local mode=$1 seed=$2 count=$3 m=$1 in=$WORK/addrs.$2
  gen_addresses "$seed" "$count" >"$in"
  echo "== socketmap vs $ORACLE, clock $mode: $(wc -l <"$in") generated addresses (seed $seed)"
  describe_addresses "$in"
  if [[ $mode == real ]]; then avoid_midnight 300; fi
  milter "$mode"

  # 1. forward: the same SRS0, byte for byte; each reverses the other's.
  ours forward <"$in" >"$WORK/o.fwd"
  theirs "$mode" main forward <"$in" >"$WORK/x.fwd" 2>"$WORK/x.err"
  check_lines "$m: socketmap forward == $ORACLE forward" "$in" "$WORK/x.fwd" "$WORK/o.fwd"
  ours reverse <"$WORK/x.fwd" >"$WORK/o.rev"
  check_lines "$m: socketmap reverse of $ORACLE forward" "$WORK/x.fwd" "$in" "$WORK/o.rev"
  theirs "$mode" main reverse <"$WORK/o.fwd" >"$WORK/x.rev" 2>"$WORK/x.err"
  check_lines "$m: $ORACLE reverse of socketmap forward" "$WORK/o.fwd" "$in" "$WORK/x.rev"
  cp "$WORK/o.fwd" "$WORK/o.main"; cp "$WORK/x.fwd" "$WORK/x.main"

  # 2. Postfix folds the keys of canonical maps to lower case before it asks.
  to_lower <"$in" >"$WORK/in.lc"
  ours forward <"$WORK/in.lc" >"$WORK/o.fwd"
  theirs "$mode" main forward <"$WORK/in.lc" >"$WORK/x.fwd" 2>"$WORK/x.err"
  check_lines "$m lowercase keys: socketmap forward == $ORACLE forward" "$WORK/in.lc" "$WORK/x.fwd" "$WORK/o.fwd"
  to_lower <"$WORK/x.main" >"$WORK/x.lc"
  ours reverse <"$WORK/x.lc" >"$WORK/o.rev"
  check_lines "$m lowercase keys: socketmap reverse of $ORACLE forward" "$WORK/x.lc" "$WORK/in.lc" "$WORK/o.rev"
  to_lower <"$WORK/o.main" >"$WORK/o.lc"
  theirs "$mode" main reverse <"$WORK/o.lc" >"$WORK/x.rev" 2>"$WORK/x.err"
  check_lines "$m lowercase keys: $ORACLE reverse of socketmap forward" "$WORK/o.lc" "$WORK/in.lc" "$WORK/x.rev"

  # 3. SRS1: another forwarder's (postsrsd at h1.example) SRS0 forwarded again.
  local in1=$WORK/addrs1.$seed
  gen_addresses "$((seed + 1))" "$count" 30 >"$in1"
  theirs "$mode" hop1 forward <"$in1" >"$WORK/hop1" 2>"$WORK/x.err"
  ours forward <"$WORK/hop1" >"$WORK/o.fwd"
  theirs "$mode" main forward <"$WORK/hop1" >"$WORK/x.fwd" 2>"$WORK/x.err"
  check_lines "$m SRS1: socketmap forward == $ORACLE forward" "$WORK/hop1" "$WORK/x.fwd" "$WORK/o.fwd"
  check_true "$m SRS1: every answer is SRS1 ($(grep -c '^SRS1=' "$WORK/o.fwd" || true))" \
    test "$(grep -c '^SRS1=' "$WORK/o.fwd" || true)" -eq "$(wc -l <"$in1")"
  ours reverse <"$WORK/x.fwd" >"$WORK/o.rev"
  check_lines "$m SRS1: socketmap reverse of $ORACLE forward" "$WORK/x.fwd" "$WORK/hop1" "$WORK/o.rev"
  theirs "$mode" main reverse <"$WORK/o.fwd" >"$WORK/x.rev" 2>"$WORK/x.err"
  check_lines "$m SRS1: $ORACLE reverse of socketmap forward" "$WORK/o.fwd" "$WORK/hop1" "$WORK/x.rev"

  # 4. Forged: a changed hash character, and the right form made with another
  #    secret. Neither may map anywhere.
  tamper_hash <"$WORK/x.main" >"$WORK/x.bad"
  ours reverse <"$WORK/x.bad" >"$WORK/o.rev"
  check_all_empty "$m forged: socketmap refuses $ORACLE forward with a changed hash" "$WORK/x.bad" "$WORK/o.rev"
  all_notfound "$m forged" "$(wc -l <"$WORK/x.bad")"
  tamper_hash <"$WORK/o.main" >"$WORK/o.bad"
  theirs "$mode" main reverse <"$WORK/o.bad" >"$WORK/x.rev" 2>"$WORK/x.err"
  check_all_empty "$m forged: $ORACLE refuses socketmap forward with a changed hash" "$WORK/o.bad" "$WORK/x.rev"
  all_refused_500 "$m forged"
  theirs "$mode" other forward <"$in" >"$WORK/x.other" 2>"$WORK/x.err"
  check_true "$m forged: $ORACLE with another secret made SRS0 at $(conf_domain other)" \
    test "$(grep -c "^SRS0=.*@$(conf_domain other)\$" "$WORK/x.other" || true)" -eq "$(wc -l <"$in")"
  ours reverse <"$WORK/x.other" >"$WORK/o.rev"
  check_all_empty "$m forged: socketmap refuses SRS0 signed with another secret" "$WORK/x.other" "$WORK/o.rev"
  all_notfound "$m other secret" "$(wc -l <"$WORK/x.other")"

  # 5. Already rewritten: neither signs its own SRS again.
  ours forward <"$WORK/o.main" >"$WORK/o.fwd"
  check_all_empty "$m already rewritten: socketmap forward of its own SRS0" "$WORK/o.main" "$WORK/o.fwd"
  all_notfound "$m already rewritten" "$(wc -l <"$WORK/o.main")"
  theirs "$mode" main forward <"$WORK/o.main" >"$WORK/x.fwd" 2>"$WORK/x.err"
  check_all_empty "$m already rewritten: $ORACLE forward of socketmap SRS0" "$WORK/o.main" "$WORK/x.fwd"
  all_refused_500 "$m already rewritten"

  check_true "$m: backstop-milter still running, no error logged" \
    eval "kill -0 $MILTER_PID 2>/dev/null && ! grep -qi error '$WORK/milter.$mode.log'"
}

# Another secret at our SRS domain (example.com): the forgeries of suite 4.
CONF_SECRETS[other]="n0t-0ur-s3cret"

# DESIGN §2's vectors through the socketmap (secret tops3cr3t, FIXED_DATE).
vectors() {
  echo "== DESIGN §2 vectors through the socketmap ($FIXED_DATE)"
  milter fixed
  srs_vector_files
  ours forward <"$WORK/v.in" >"$WORK/o.fwd"
  check_lines "vectors: socketmap forward" "$WORK/v.in" "$WORK/v.fwd" "$WORK/o.fwd"
  printf '%s\n' 'SRS0=XjO9=2V=otherdomain.com=test@example.com' \
    'srs0=xjo9=2v=otherdomain.com=test@example.com' \
    'SRS1=JIBX=thirddomain.com==opaque+string@example.com' >"$WORK/r.in"
  printf '%s\n' test@otherdomain.com test@otherdomain.com 'SRS0=opaque+string@thirddomain.com' >"$WORK/r.want"
  ours reverse <"$WORK/r.in" >"$WORK/o.rev"
  check_lines "vectors: socketmap reverse" "$WORK/r.in" "$WORK/r.want" "$WORK/o.rev"
  printf '%s\n' 'SRS0=te87=T7=otherdomain.com=test@example.com' \
    'SRS0=FAKE=2V=otherdomain.com=test@example.com' >"$WORK/e.in"
  ours reverse <"$WORK/e.in" >"$WORK/o.rev"
  check_all_empty "vectors: socketmap refuses out-of-date and bad-hash" "$WORK/e.in" "$WORK/o.rev"
  all_notfound "vectors: out-of-date and bad-hash" 2

  # The age window, against postsrsd's clock moved back: 21 days is still
  # valid, 22 days is not.
  gen_addresses 4101 60 >"$WORK/age.in"
  theirs shift:-21 main forward <"$WORK/age.in" >"$WORK/x.fwd" 2>"$WORK/x.err"
  ours reverse <"$WORK/x.fwd" >"$WORK/o.rev"
  check_lines "age 21 days: socketmap reverse of $ORACLE forward" "$WORK/x.fwd" "$WORK/age.in" "$WORK/o.rev"
  theirs shift:-22 main forward <"$WORK/age.in" >"$WORK/x.fwd" 2>"$WORK/x.err"
  ours reverse <"$WORK/x.fwd" >"$WORK/o.rev"
  check_all_empty "age 22 days: socketmap refuses $ORACLE forward" "$WORK/x.fwd" "$WORK/o.rev"
  all_notfound "age 22 days" "$(wc -l <"$WORK/age.in")"
}

vectors
suite fixed 4001 300
suite real 4011 300

interop_finish
