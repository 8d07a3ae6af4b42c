# shellcheck shell=bash disable=SC2016
# (SC2016: Exim expansions are meant to stay literal in single quotes.)
# Shared helpers for the interop tests (sourced, not run).
#
# Each test compares backstop with a deployed implementation ("oracle"):
# Mail::SRS, pysrs, postsrsd 1.10, Exim 4. A missing oracle FAILS the test
# (exit 1 with the install hint): CI installs them with scripts/install-oracles,
# and a silent skip would hide a lost interop check.
#
# Usage in a test:
#   source "$(dirname "$0")/lib.sh"
#   interop_init "$@"          # $1 = backstop binary
#   ... check_lines LABEL INPUT EXPECTED ACTUAL ...
#   interop_finish

set -euo pipefail

# The fixed instant of DESIGN §2's vectors: 2020-01-01 00:01 UTC, TT "2W".
FIXED_DATE='2020-01-01 00:01:00'
FIXED_EPOCH=1577836860
EXIM_DIR=${BACKSTOP_EXIM_DIR:-/opt/backstop-oracles/exim}
EXIM=$EXIM_DIR/usr/sbin/exim4
# Debian's python3-srs lives in the system interpreter, not in a pyenv one.
PY=/usr/bin/python3
LIBFAKETIME=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1
export TZ=UTC LC_ALL=C

CHECKS=0
FAILED=0
_PIDS=()

die() { printf '%s: FATAL: %s\n' "$TEST_NAME" "$*" >&2; exit 1; }

interop_init() {
  TEST_NAME=$(basename "$0" .sh)
  [[ $# -ge 1 ]] || die "usage: $0 /path/to/backstop"
  BACKSTOP=$1
  [[ -x $BACKSTOP ]] || die "backstop binary not found or not executable: $BACKSTOP"
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/backstop-interop.XXXXXX")
  trap _interop_cleanup EXIT
  trap 'exit 130' INT TERM
  _write_helpers
}

_interop_cleanup() {
  local p
  for p in "${_PIDS[@]}"; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  [[ -n ${KEEP_WORK:-} ]] && { echo "work dir kept: $WORK"; return 0; }
  rm -rf "$WORK"
}

# Remember a background process so the EXIT trap kills it.
track_pid() { _PIDS+=("$1"); }

# --- oracle lookup: fail, never skip -------------------------------------

_missing() {
  printf '%s: FAIL: oracle missing: %s (install with: sudo scripts/install-oracles)\n' \
    "$TEST_NAME" "$1" >&2
  exit 1
}

require_oracle() {
  local o
  for o in "$@"; do
    case $o in
      mailsrs)
        command -v srs >/dev/null || _missing "srs (Debian package srs, Mail::SRS CLI)"
        perl -MMail::SRS -e1 2>/dev/null || _missing "Mail::SRS (libmail-srs-perl)" ;;
      pysrs)
        if ! "$PY" -c 'import SRS' 2>/dev/null; then
          _missing "pysrs ($PY -c 'import SRS', python3-srs)"
        fi ;;
      postsrsd)
        command -v postsrsd >/dev/null || _missing "postsrsd 1.10 (postsrsd)" ;;
      faketime)
        [[ -r $LIBFAKETIME ]] || _missing "libfaketime ($LIBFAKETIME)"
        # libfaketime starts a running clock at FIXED_DATE: a loaded machine may
        # already be a second or two past it, which no day-based stamp notices.
        _ft=$(at fixed date +%s)
        (( _ft >= FIXED_EPOCH && _ft - FIXED_EPOCH <= 10 )) \
          || _missing "a working faketime (clock not near $FIXED_DATE: $_ft)" ;;
      exim)
        [[ -x $EXIM ]] || _missing "Exim 4 unpacked at $EXIM_DIR"
        "$EXIM" -C /dev/null -be '${prvs {a@b.c}{k}{1}}' >/dev/null 2>&1 \
          || _missing "a runnable $EXIM (shared libraries? Debian-exim user?)" ;;
      *) die "unknown oracle $o" ;;
    esac
  done
}

# --- key files ---------------------------------------------------------------

# write_keyfile PATH LINE...: one line each, mode 0600 (backstop refuses
# group/world-readable key files).
write_keyfile() {
  local path=$1; shift
  (umask 077; printf '%s\n' "$@" >"$path")
  chmod 600 "$path"
}

# --- running things ----------------------------------------------------------

# run_bs OUT ERR ARGS...: backstop with stdin, stdout to OUT, stderr to ERR;
# sets BS_RC (the exit code is checked by the caller, not by set -e).
run_bs() {
  local out=$1 err=$2; shift 2
  BS_RC=0
  "$BACKSTOP" "$@" >"$out" 2>"$err" || BS_RC=$?
}

# A MODE says which clock an oracle and backstop run with:
#   fixed      FIXED_DATE (faketime for oracles, --time for backstop)
#   shift:N    FIXED_DATE moved by N days (N may be negative)
#   real       the real clock (no faketime, no --time)
mode_epoch() {
  case $1 in
    fixed) echo "$FIXED_EPOCH" ;;
    shift:*) echo $((FIXED_EPOCH + ${1#shift:} * 86400)) ;;
    *) die "mode_epoch: $1 has no fixed instant" ;;
  esac
}
mode_date() { date -u -d "@$(mode_epoch "$1")" '+%Y-%m-%d %H:%M:%S'; }

# at MODE CMD...: run an oracle with the clock of MODE. libfaketime is
# preloaded directly, not through the faketime(1) wrapper: the wrapper names a
# POSIX semaphore after its pid and fails ("sem_open: File exists") when one
# left by an earlier, killed wrapper has the same pid; tests run in parallel.
at() {
  local mode=$1; shift
  if [[ $mode == real ]]; then "$@"; else
    env LD_PRELOAD="$LIBFAKETIME" FAKETIME="@$(mode_date "$mode")" "$@"
  fi
}

# bs_time MODE: the backstop options that match `at MODE` (one per line).
bs_time() { [[ $1 == real ]] || printf -- '--time\n%s\n' "$(mode_epoch "$1")"; }

# Real-clock runs compare outputs made seconds apart: do not straddle a UTC
# midnight (the SRS timestamp and the BATV day would change in between).
avoid_midnight() {
  local left=$((86400 - $(date +%s) % 86400))
  if ((left < ${1:-180})); then
    echo "note: waiting ${left}s for UTC midnight to pass (real-clock run)"
    sleep $((left + 2))
  fi
}

# --- checks -------------------------------------------------------------------

# check_lines LABEL INPUT EXPECTED ACTUAL [ci]: line i of ACTUAL must equal
# line i of EXPECTED (case-insensitively with "ci"); every line is a check.
check_lines() {
  local label=$1 input=$2 expected=$3 actual=$4 ci=${5:-}
  local n_in n_exp n_act
  n_in=$(wc -l <"$input"); n_exp=$(wc -l <"$expected"); n_act=$(wc -l <"$actual")
  if [[ $n_exp != "$n_in" || $n_act != "$n_in" ]]; then
    printf 'FAIL  %s: line counts differ (input %s, expected %s, actual %s)\n' \
      "$label" "$n_in" "$n_exp" "$n_act"
    CHECKS=$((CHECKS + n_in)); FAILED=$((FAILED + n_in))
    return 0
  fi
  local res bad
  res=$(paste -d '\t' "$input" "$expected" "$actual" | awk -F '\t' -v ci="$ci" '
    { e = $2; a = $3; if (ci != "") { e = tolower(e); a = tolower(a) }
      if (e != a) { bad++; if (bad <= 5) printf "    input %s\n      expected %s\n      actual   %s\n", $1, $2, $3 > "/dev/stderr" } }
    END { print NR + 0, bad + 0 }' 2>"$WORK/.mismatch")
  bad=${res#* }
  CHECKS=$((CHECKS + ${res% *})); FAILED=$((FAILED + bad))
  if ((bad)); then
    printf 'FAIL  %s: %s of %s differ\n' "$label" "$bad" "${res% *}"
    cat "$WORK/.mismatch"
  else
    printf 'ok    %s (%s)\n' "$label" "${res% *}"
  fi
}

# check_all_empty LABEL INPUT ACTUAL: every input must have been refused
# (an empty output line).
check_all_empty() {
  local label=$1 input=$2 actual=$3
  sed 's/.*//' "$input" >"$WORK/.empty"
  check_lines "$label" "$input" "$WORK/.empty" "$actual"
}

# check_true LABEL CONDITION-COMMAND...: one check.
check_true() {
  local label=$1; shift
  CHECKS=$((CHECKS + 1))
  if "$@"; then
    printf 'ok    %s\n' "$label"
  else
    FAILED=$((FAILED + 1)); printf 'FAIL  %s\n' "$label"
  fi
}

# check_rc LABEL EXPECTED ACTUAL: exit code check.
check_rc() {
  CHECKS=$((CHECKS + 1))
  if [[ $2 == "$3" ]]; then
    printf 'ok    %s: exit %s\n' "$1" "$3"
  else
    FAILED=$((FAILED + 1)); printf 'FAIL  %s: exit %s, expected %s\n' "$1" "$3" "$2"
  fi
}

interop_finish() {
  printf '%s: %d checks, %d failed\n' "$TEST_NAME" "$CHECKS" "$FAILED"
  ((FAILED == 0))
}

# --- address generation -------------------------------------------------------

# gen_addresses SEED COUNT [MAXLEN] > FILE: deterministic, varied ASCII
# addresses; local+domain length <= MAXLEN (default 46) keeps SRS0/SRS1
# results within the 64-octet local-part limit even with a 6-char hash.
gen_addresses() { "$PY" "$WORK/gen.py" "$@"; }

# describe_addresses FILE: what the generated set covers, for the log.
describe_addresses() {
  awk -F '@' '
    { n++; l = $1; d = $2
      if (l ~ /\./) dot++; if (l ~ /\+/) plus++; if (l ~ /-/) hy++; if (l ~ /=/) eq++
      if (l ~ /[A-Z]/) up++; if (l ~ /[0-9]/) dig++; if (length(l) >= 20) long++
      if (gsub(/\./, ".", d) >= 2) sub_++; if (d ~ /[A-Z]/) dup++ }
    END { printf "   %d addresses; local part with . %d, + %d, - %d, = %d, upper case %d, digits %d, >= 20 chars %d; subdomains %d, upper-case domain %d\n",
          n, dot, plus, hy, eq, up, dig, long, sub_, dup }' "$1"
}

# --- oracle drivers -----------------------------------------------------------

# mailsrs MODE forward|reverse [--secret=S]... [--alias=D] [--separator=C]
#   [--hashlength=N] < in > out: Mail::SRS in one perl process, built as the
#   `srs` CLI builds it; one line out per line in, empty on failure.
mailsrs() { local mode=$1; shift; at "$mode" perl "$WORK/mailsrs.pl" "$@"; }

# srs_cli MODE ARGS...: the `srs` program itself, all addresses in one run
# (it stops at the first failure, so use it where all must succeed).
srs_cli() { local mode=$1; shift; at "$mode" srs "$@"; }

# pysrs MODE forward|reverse --secret S... [--alias D] [--separator C]
#   [--hashlength N] < in > out: pysrs (SRS.new, Guarded) in one process.
pysrs() { local mode=$1; shift; at "$mode" "$PY" "$WORK/pysrs.py" "$@"; }

# postsrsd_start MODE SECRETFILE DOMAIN [EXTRA...]: start postsrsd 1.10 on
# free loopback ports; sets PSRS_FWD, PSRS_REV, PSRS_PID. Other than real,
# its clock is fixed through libfaketime, preloaded directly (env execs
# postsrsd, so $! is postsrsd itself and the EXIT trap can kill it).
postsrsd_start() {
  local mode=$1 secrets=$2 domain=$3 ports; shift 3
  local -a env=()
  [[ $mode == real ]] || env=(LD_PRELOAD="$LIBFAKETIME" FAKETIME="@$(mode_date "$mode")")
  # The free ports are released before postsrsd binds them: another test
  # running in parallel may take one first, so try again with new ones.
  for _ in 1 2 3; do
    ports=$("$PY" "$WORK/tcptable.py" --free-ports 2)
    PSRS_FWD=${ports% *}; PSRS_REV=${ports#* }
    env "${env[@]}" postsrsd -s "$secrets" -d "$domain" -l 127.0.0.1 \
      -f "$PSRS_FWD" -r "$PSRS_REV" -4 "$@" >"$WORK/postsrsd.$PSRS_FWD.log" 2>&1 &
    PSRS_PID=$!
    track_pid "$PSRS_PID"
    if "$PY" "$WORK/tcptable.py" --wait 127.0.0.1 "$PSRS_FWD" "$PSRS_REV" \
        && kill -0 "$PSRS_PID" 2>/dev/null; then
      return 0
    fi
    kill "$PSRS_PID" 2>/dev/null || true
    cat "$WORK/postsrsd.$PSRS_FWD.log" >&2
  done
  die "postsrsd did not start (3 tries)"
}


# postsrsd_once MODE CONF: the postsrsd 1.10 for this clock and configuration,
# started on first use; sets PSRS_FWD and PSRS_REV to its ports. Not in a pipeline
# or $( ): the ports must be remembered in the calling shell.
declare -A PSRS_FWD_PORTS PSRS_REV_PORTS
postsrsd_once() {
  local key=$1/$2
  if [[ -z ${PSRS_FWD_PORTS[$key]:-} ]]; then
    postsrsd_start "$1" "$(conf_keyfile "$2")" "$(conf_domain "$2")" \
      -a "$(conf_sep "$2")" -n "$(conf_len "$2")"
    PSRS_FWD_PORTS[$key]=$PSRS_FWD; PSRS_REV_PORTS[$key]=$PSRS_REV
  fi
  PSRS_FWD=${PSRS_FWD_PORTS[$key]}; PSRS_REV=${PSRS_REV_PORTS[$key]}
}

# tcptable PORT < in > out: Postfix tcp_table queries over one connection.
tcptable() { "$PY" "$WORK/tcptable.py" 127.0.0.1 "$1"; }

# exim_be MODE < expressions > results: Exim string expansion test mode,
# every line one expression, all in one exim process.
exim_be() {
  local mode=$1 n
  cat >"$WORK/.exim.in"
  n=$(wc -l <"$WORK/.exim.in")
  # -be prompts with "> " before each line it reads; the result follows it.
  at "$mode" "$EXIM" -C /dev/null -be <"$WORK/.exim.in" | sed -n 's/^> //p' | head -n "$n"
}

# --- helper programs, written once per test run ------------------------------

_write_helpers() {
  cat >"$WORK/gen.py" <<'PY'
import random, sys

seed = int(sys.argv[1]); count = int(sys.argv[2])
maxlen = int(sys.argv[3]) if len(sys.argv) > 3 else 46
rnd = random.Random(seed)
words = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
         "ivan", "judy", "mallory", "oscar", "peggy", "trent", "victor",
         "walter", "news", "billing", "noreply", "support", "info", "jo",
         "x", "ops", "team", "list", "sales", "dev", "root", "postmaster"]
tags = ["tag", "lists", "2024", "a", "newsletter", "x-y", "in", "spam"]
labels = ["mail", "mx", "lists", "corp", "eu", "us-east", "a1", "b2b",
          "shop", "news", "relay", "smtp3", "dept", "it", "example-isp",
          "alpha", "beta", "gamma", "delta", "web", "host-42"]
tlds = ["com", "org", "net", "de", "io", "co.uk", "fr", "info", "nl", "ch"]

def local_part():
    k = rnd.randrange(10)
    w = lambda: rnd.choice(words)
    if k == 0: s = w() + "." + w()
    elif k == 1: s = w() + "+" + rnd.choice(tags)
    elif k == 2: s = w() + "-" + w() + str(rnd.randrange(100))
    elif k == 3: s = w() + "=" + w()                 # '=' inside the local part
    elif k == 4: s = w().capitalize() + "." + w().upper()
    elif k == 5: s = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789")
                             for _ in range(rnd.randrange(12, 28)))
    elif k == 6: s = w() + "_" + str(rnd.randrange(10**6))
    elif k == 7: s = w() + "." + w() + "+" + rnd.choice(tags) + "=" + w()
    elif k == 8: s = str(rnd.randrange(10**9))
    else: s = "".join(c.upper() if rnd.random() < .3 else c for c in w() + "." + w())
    return s

def domain():
    n = rnd.choice([1, 1, 2, 2, 3])
    parts = [rnd.choice(labels) for _ in range(n)]
    if rnd.random() < .15: parts[0] += str(rnd.randrange(10))
    d = ".".join(parts) + "." + rnd.choice(tlds)
    if rnd.random() < .1: d = d.upper()
    return d

seen = set(); out = []
while len(out) < count:
    l, d = local_part(), domain()
    if len(l) + len(d) > maxlen or l.lower().startswith(("srs0", "srs1", "prvs")):
        continue
    a = l + "@" + d
    if a in seen: continue
    seen.add(a); out.append(a)
print("\n".join(out))
PY

  cat >"$WORK/mailsrs.pl" <<'PL'
# Mail::SRS, constructed as the `srs` CLI constructs it; one result line per
# input line, an empty line (reason on stderr) where it dies.
use strict; use warnings; use Getopt::Long; use Mail::SRS;
my (@secrets, $alias, $sep, $len) = ();
$sep = '='; $len = 4;
my $op = shift @ARGV;
GetOptions('secret=s' => \@secrets, 'alias=s' => \$alias,
           'separator=s' => \$sep, 'hashlength=i' => \$len) or die "bad options\n";
my $srs = Mail::SRS->new(Secret => \@secrets, Separator => $sep, HashLength => $len);
$SIG{__WARN__} = sub {};    # "case insensitive hash match" is expected
$| = 1;
while (my $a = <STDIN>) {
  chomp $a;
  my $r = eval { $op eq 'forward' ? $srs->forward($a, $alias) : $srs->reverse($a) };
  if (defined $r) { print "$r\n" } else { my $e = $@; $e =~ s/\s+$//; print STDERR "$a: $e\n"; print "\n" }
}
PL

  cat >"$WORK/pysrs.py" <<'PY'
# pysrs (SRS.new = Guarded); one result line per input line, empty on error.
import argparse, sys
import SRS
p = argparse.ArgumentParser()
p.add_argument("op", choices=["forward", "reverse"])
p.add_argument("--secret", action="append", required=True)
p.add_argument("--alias")
p.add_argument("--separator", default="=")
p.add_argument("--hashlength", type=int, default=4)
a = p.parse_args()
srs = SRS.new(secret=a.secret, separator=a.separator, hashlength=a.hashlength)
srs.warn = lambda *m: None   # case-smash warnings are expected
for line in sys.stdin:
    addr = line.rstrip("\n")
    try:
        r = srs.forward(addr, a.alias) if a.op == "forward" else srs.reverse(addr)
    except Exception as e:
        print(f"{addr}: {e}", file=sys.stderr); r = ""
    print(r, flush=False)
PY

  cat >"$WORK/tcptable.py" <<'PY'
# Postfix tcp_table client (one persistent connection), free-port finder,
# and start-up waiter for postsrsd.
import socket, sys, time, urllib.parse

if sys.argv[1] == "--free-ports":
    socks = []
    for _ in range(int(sys.argv[2])):
        s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
    print(" ".join(str(s.getsockname()[1]) for s in socks))
    sys.exit(0)

if sys.argv[1] == "--wait":
    host, ports = sys.argv[2], [int(p) for p in sys.argv[3:]]
    deadline = time.time() + 10
    while ports and time.time() < deadline:
        try:
            socket.create_connection((host, ports[0]), timeout=1).close(); ports.pop(0)
        except OSError:
            time.sleep(0.05)
    sys.exit(1 if ports else 0)

host, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection((host, port), timeout=10)
f = s.makefile("rwb")
for line in sys.stdin:
    addr = line.rstrip("\n")
    # tcp_table encodes '%', whitespace and control characters as %XX
    f.write(b"get " + urllib.parse.quote(addr, safe="!\"#$&'()*+,-./:;<=>?@[\\]^_`{|}~").encode() + b"\n")
    f.flush()
    reply = f.readline().decode().rstrip("\n")
    code, _, text = reply.partition(" ")
    text = urllib.parse.unquote(text)
    if code == "200":
        print(text)
    else:
        print(f"{addr}: {reply}", file=sys.stderr); print("")
PY
}

# --- the SRS suite shared by the Mail::SRS, pysrs and postsrsd tests ---------
#
# A test defines oracle_forward MODE CONF and oracle_reverse MODE CONF (stdin
# to stdout, one line per line, empty on failure) and calls srs_suite.
# A CONF names a secret list, an SRS domain, a separator and a hash length.

declare -A CONF_SECRETS=(
  [main]="tops3cr3t" [len6]="tops3cr3t" [plus6]="tops3cr3t" [minus5]="tops3cr3t"
  [old]="0ld-s3cret" [new_old]="n3w-s3cret 0ld-s3cret" [old_new]="0ld-s3cret n3w-s3cret"
  [hop1]="an0ther-hop" [hop1p]="an0ther-hop" [hop2]="third-h0p"
)
declare -A CONF_DOMAIN=([hop1]=h1.example [hop1p]=h1.example [hop2]=h2.example)
declare -A CONF_SEP=([plus6]=+ [minus5]=- [hop1p]=+)
declare -A CONF_LEN=([len6]=6 [plus6]=6 [minus5]=5)
conf_domain() { echo "${CONF_DOMAIN[$1]:-example.com}"; }
conf_sep() { echo "${CONF_SEP[$1]:-=}"; }
conf_len() { echo "${CONF_LEN[$1]:-4}"; }
# conf_secrets CONF: one secret per line, first signs.
conf_secrets() { tr ' ' '\n' <<<"${CONF_SECRETS[$1]}"; }

conf_keyfile() {
  local f=$WORK/secrets.$1
  if [[ ! -e $f ]]; then
    local -a lines
    mapfile -t lines < <(conf_secrets "$1")
    write_keyfile "$f" "${lines[@]}"
  fi
  echo "$f"
}

# ours_forward MODE CONF [EXTRA...] < in > out   (sets BS_RC; stderr to $WORK/bs.err)
ours_forward() {
  local mode=$1 conf=$2; shift 2
  local -a t; mapfile -t t < <(bs_time "$mode")
  run_bs /dev/stdout "$WORK/bs.err" srs forward --secrets "$(conf_keyfile "$conf")" \
    --srs-domain "$(conf_domain "$conf")" --separator "$(conf_sep "$conf")" \
    --hash-length "$(conf_len "$conf")" "${t[@]}" "$@"
}
ours_reverse() {
  local mode=$1 conf=$2; shift 2
  local -a t; mapfile -t t < <(bs_time "$mode")
  run_bs /dev/stdout "$WORK/bs.err" srs reverse --secrets "$(conf_keyfile "$conf")" "${t[@]}" "$@"
}

# Address transforms (the hash is the field after "SRSn<sep>").
# ASCII only on purpose: SMTP case smashing is ASCII.
# shellcheck disable=SC2018,SC2019
to_lower() { tr 'A-Z' 'a-z'; }
# shellcheck disable=SC2018,SC2019
to_upper() { tr 'a-z' 'A-Z'; }
hash_to_url() { perl -pe 's{^(SRS[01][-+=])([^=]*)}{my ($p, $h) = ($1, $2); $h =~ tr|+/|-_|; "$p$h"}ei'; }
# Change the first hash character to a different letter (not just its case).
tamper_hash() { perl -pe 's{^(SRS[01][-+=])(.)}{$1 . (lc($2) eq "a" ? "b" : "a")}ei'; }

# srs_pair LABEL MODE CONF IN [WANT]: both directions for one configuration:
#   ours forward == oracle forward (byte for byte), oracle reverses ours,
#   ours reverses the oracle's, to WANT (default IN; re-forwarding an SRS1
#   reverses to the SRS0 inside it). Leaves $WORK/o.fwd and $WORK/x.fwd.
srs_pair() {
  local label=$1 mode=$2 conf=$3 in=$4 want=${5:-$4}
  ours_forward "$mode" "$conf" <"$in" >"$WORK/o.fwd"
  check_rc "$label: backstop srs forward" 0 "$BS_RC"
  oracle_forward "$mode" "$conf" <"$in" >"$WORK/x.fwd" 2>"$WORK/x.err"
  check_lines "$label: backstop forward == $ORACLE forward" "$in" "$WORK/x.fwd" "$WORK/o.fwd"
  oracle_reverse "$mode" "$conf" <"$WORK/o.fwd" >"$WORK/x.rev" 2>"$WORK/x.err"
  check_lines "$label: $ORACLE reverses backstop forward" "$WORK/o.fwd" "$want" "$WORK/x.rev"
  ours_reverse "$mode" "$conf" <"$WORK/x.fwd" >"$WORK/o.rev"
  check_rc "$label: backstop srs reverse" 0 "$BS_RC"
  check_lines "$label: backstop reverses $ORACLE forward" "$WORK/x.fwd" "$want" "$WORK/o.rev"
}

# srs_suite MODE SEED COUNT: everything for one clock mode.
srs_suite() {
  local mode=$1 seed=$2 count=$3 m=$1
  local in=$WORK/addrs.$seed
  gen_addresses "$seed" "$count" >"$in"
  echo "== $ORACLE, clock $mode: $(wc -l <"$in") generated addresses (seed $seed)"
  describe_addresses "$in"
  if [[ $mode == real ]]; then avoid_midnight 300; fi

  # 1. default format, both directions
  srs_pair "$m std" "$mode" main "$in"
  cp "$WORK/o.fwd" "$WORK/o.main"; cp "$WORK/x.fwd" "$WORK/x.main"

  # 2. case smashed by a relay: all-lowercase and all-uppercase forms
  to_lower <"$WORK/o.main" >"$WORK/o.lc"; to_lower <"$in" >"$WORK/in.lc"
  to_upper <"$WORK/o.main" >"$WORK/o.uc"; to_upper <"$in" >"$WORK/in.uc"
  oracle_reverse "$mode" main <"$WORK/o.lc" >"$WORK/x.rev" 2>"$WORK/x.err"
  check_lines "$m lowercase: $ORACLE reverses backstop forward" "$WORK/o.lc" "$WORK/in.lc" "$WORK/x.rev"
  oracle_reverse "$mode" main <"$WORK/o.uc" >"$WORK/x.rev" 2>"$WORK/x.err"
  check_lines "$m uppercase: $ORACLE reverses backstop forward" "$WORK/o.uc" "$WORK/in.uc" "$WORK/x.rev"
  to_lower <"$WORK/x.main" >"$WORK/x.lc"; to_upper <"$WORK/x.main" >"$WORK/x.uc"
  ours_reverse "$mode" main <"$WORK/x.lc" >"$WORK/o.rev"
  check_lines "$m lowercase: backstop reverses $ORACLE forward" "$WORK/x.lc" "$WORK/in.lc" "$WORK/o.rev"
  ours_reverse "$mode" main <"$WORK/x.uc" >"$WORK/o.rev"
  check_lines "$m uppercase: backstop reverses $ORACLE forward" "$WORK/x.uc" "$WORK/in.uc" "$WORK/o.rev"

  # 3. other separators and hash lengths
  srs_pair "$m sep + hash 6" "$mode" plus6 "$in"
  srs_pair "$m sep - hash 5" "$mode" minus5 "$in"

  # 4. url alphabet (postsrsd >= 2.2.6): the oracle's hash with -_ for +/
  hash_to_url <"$WORK/x.main" >"$WORK/x.url"
  ours_reverse "$mode" main <"$WORK/x.url" >"$WORK/o.rev"
  check_lines "$m url alphabet: backstop reverses $ORACLE forward with -_ ($(grep -c '^SRS0=[^=]*[-_]' "$WORK/x.url" || true) with -_)" \
    "$WORK/x.url" "$in" "$WORK/o.rev"
  ours_forward "$mode" main --alphabet url <"$in" >"$WORK/o.fwd"
  check_lines "$m url alphabet: backstop --alphabet url == $ORACLE forward with -_" "$in" "$WORK/x.url" "$WORK/o.fwd"

  # 5. secret rotation: the first secret signs, all verify
  oracle_forward "$mode" old <"$in" >"$WORK/x.fwd" 2>"$WORK/x.err"
  ours_reverse "$mode" new_old <"$WORK/x.fwd" >"$WORK/o.rev"
  check_lines "$m rotation: backstop [new,old] reverses $ORACLE [old]" "$WORK/x.fwd" "$in" "$WORK/o.rev"
  ours_forward "$mode" new_old <"$in" >"$WORK/o.fwd"
  oracle_reverse "$mode" old_new <"$WORK/o.fwd" >"$WORK/x.rev" 2>"$WORK/x.err"
  check_lines "$m rotation: $ORACLE [old,new] reverses backstop [new,old]" "$WORK/o.fwd" "$in" "$WORK/x.rev"

  # 6. SRS1: re-forwarding an SRS0 made by another domain (hop1), and
  #    re-forwarding that SRS1 once more (hop2 -> main). Shorter addresses:
  #    the SRS1 local part carries the whole SRS0 one.
  in=$WORK/addrs1.$seed
  gen_addresses "$((seed + 1))" "$count" 30 >"$in"
  oracle_forward "$mode" hop1 <"$in" >"$WORK/hop1" 2>"$WORK/x.err"
  check_true "$m SRS1: $ORACLE made $(grep -c '^SRS0' "$WORK/hop1" || true) SRS0 addresses at hop1" \
    test "$(grep -c '^SRS0' "$WORK/hop1" || true)" -eq "$(wc -l <"$in")"
  srs_pair "$m SRS1 of SRS0" "$mode" main "$WORK/hop1"
  grep -c '^SRS1=' "$WORK/o.fwd" >"$WORK/.n" || true
  check_true "$m SRS1 of SRS0: every result is SRS1 ($(cat "$WORK/.n"))" test "$(cat "$WORK/.n")" -eq "$(wc -l <"$in")"
  oracle_forward "$mode" hop2 <"$WORK/hop1" >"$WORK/hop2" 2>"$WORK/x.err"
  # hop1's SRS0 with its tag smashed to lower case is still an SRS0
  # (reversing the SRS1 gives the tag back as "SRS0", as all of them do)
  to_lower <"$WORK/hop1" >"$WORK/hop1.lc"
  sed 's/^srs0/SRS0/' "$WORK/hop1.lc" >"$WORK/hop1.lc.want"
  srs_pair "$m SRS1 of lowercase srs0" "$mode" main "$WORK/hop1.lc" "$WORK/hop1.lc.want"
  # an SRS0+ from hop1, re-forwarded with separator + and hash length 6
  oracle_forward "$mode" hop1p <"$in" >"$WORK/hop1p" 2>"$WORK/x.err"
  srs_pair "$m SRS1 of SRS0+, sep + hash 6" "$mode" plus6 "$WORK/hop1p"
  # hop2's SRS1 re-forwarded by us reverses straight to hop1's SRS0
  srs_pair "$m SRS1 of SRS1" "$mode" main "$WORK/hop2" "$WORK/hop1"
  ours_reverse "$mode" hop1 <"$WORK/o.rev" >"$WORK/o.rev2"
  check_lines "$m SRS1 chain: backstop with hop1's secret reverses hop1's SRS0 to the original" "$WORK/hop1" "$in" "$WORK/o.rev2"

  # 7. refusals both sides agree on
  in=$WORK/addrs.$seed
  tamper_hash <"$WORK/x.main" >"$WORK/x.bad"
  ours_reverse "$mode" main <"$WORK/x.bad" >"$WORK/o.rev"
  check_rc "$m tampered hash: backstop srs reverse" 1 "$BS_RC"
  check_all_empty "$m tampered hash: backstop refuses $ORACLE forward" "$WORK/x.bad" "$WORK/o.rev"
  tamper_hash <"$WORK/o.main" >"$WORK/o.bad"
  oracle_reverse "$mode" main <"$WORK/o.bad" >"$WORK/x.rev" 2>"$WORK/x.err"
  check_all_empty "$m tampered hash: $ORACLE refuses backstop forward" "$WORK/o.bad" "$WORK/x.rev"
  ours_reverse "$mode" hop1 <"$WORK/x.main" >"$WORK/o.rev"
  check_all_empty "$m wrong secret: backstop refuses $ORACLE forward" "$WORK/x.main" "$WORK/o.rev"
}

# srs_age_suite: the time stamp window at the fixed instant (default max age
# 21 days: 21 days old is valid, 22 days old and 1 day in the future are not).
srs_age_suite() {
  local seed=$1 count=$2 in=$WORK/age.$1 d want
  gen_addresses "$seed" "$count" >"$in"
  echo "== $ORACLE, time stamp window at $FIXED_DATE: $(wc -l <"$in") addresses"
  for d in -21 -22 1; do
    want=valid; ((d < -21 || d > 0)) && want=refused
    oracle_forward "shift:$d" main <"$in" >"$WORK/x.fwd" 2>"$WORK/x.err"
    ours_forward "shift:$d" main <"$in" >"$WORK/o.fwd"
    check_lines "age ${d}d: backstop forward == $ORACLE forward" "$in" "$WORK/x.fwd" "$WORK/o.fwd"
    ours_reverse fixed main <"$WORK/x.fwd" >"$WORK/o.rev"
    oracle_reverse fixed main <"$WORK/o.fwd" >"$WORK/x.rev" 2>"$WORK/x.err"
    if [[ $want == valid ]]; then
      check_lines "age ${d}d: backstop accepts $ORACLE forward" "$WORK/x.fwd" "$in" "$WORK/o.rev"
      check_lines "age ${d}d: $ORACLE accepts backstop forward" "$WORK/o.fwd" "$in" "$WORK/x.rev"
    else
      check_all_empty "age ${d}d: backstop refuses $ORACLE forward" "$WORK/x.fwd" "$WORK/o.rev"
      check_all_empty "age ${d}d: $ORACLE refuses backstop forward" "$WORK/o.fwd" "$WORK/x.rev"
    fi
  done
}

# srs_vector_files: DESIGN §2's inputs in $WORK/v.in and their SRS forward answers
# (secret tops3cr3t, domain example.com, FIXED_DATE) in $WORK/v.fwd.
srs_vector_files() {
  printf '%s\n' test@otherdomain.com sender@otherdomain.com hash234@somedomain.com \
    'SRS0=opaque+string@otherdomain.com' 'SRS1=X=thirddomain.com==opaque+string@otherdomain.com' \
    >"$WORK/v.in"
  printf '%s\n' 'SRS0=vmyz=2W=otherdomain.com=test@example.com' \
    'SRS0=9KJ+=2W=otherdomain.com=sender@example.com' \
    'SRS0=+3/5=2W=somedomain.com=hash234@example.com' \
    'SRS1=chaI=otherdomain.com==opaque+string@example.com' \
    'SRS1=JIBX=thirddomain.com==opaque+string@example.com' >"$WORK/v.fwd"
}

# srs_vectors: DESIGN §2's vectors through backstop and the oracle.
srs_vectors() {
  echo "== DESIGN §2 vectors (secret tops3cr3t, $FIXED_DATE)"
  srs_vector_files
  ours_forward fixed main <"$WORK/v.in" >"$WORK/o.fwd"
  check_lines "vectors: backstop forward" "$WORK/v.in" "$WORK/v.fwd" "$WORK/o.fwd"
  oracle_forward fixed main <"$WORK/v.in" >"$WORK/x.fwd" 2>"$WORK/x.err"
  check_lines "vectors: $ORACLE forward" "$WORK/v.in" "$WORK/v.fwd" "$WORK/x.fwd"
  echo test@otherdomain.com >"$WORK/v6.in"; echo 'SRS0=vmyz7B=2W=otherdomain.com=test@example.com' >"$WORK/v6.fwd"
  ours_forward fixed len6 <"$WORK/v6.in" >"$WORK/o.fwd"
  check_lines "vectors: backstop forward, hash length 6" "$WORK/v6.in" "$WORK/v6.fwd" "$WORK/o.fwd"
  oracle_forward fixed len6 <"$WORK/v6.in" >"$WORK/x.fwd" 2>"$WORK/x.err"
  check_lines "vectors: $ORACLE forward, hash length 6" "$WORK/v6.in" "$WORK/v6.fwd" "$WORK/x.fwd"

  # RFC 5321 limit: a 64-octet SRS local part is emitted as the oracle does;
  # at 65 the oracles emit it anyway, backstop must not (refuse, or a short form).
  local l35 l36 out65
  l35=$(printf 'a%.0s' {1..35}); l36=${l35}b
  printf '%s\n' "$l35@otherdomain.com" >"$WORK/l.in"
  ours_forward fixed main <"$WORK/l.in" >"$WORK/o.fwd"
  oracle_forward fixed main <"$WORK/l.in" >"$WORK/x.fwd" 2>"$WORK/x.err"
  check_lines "limit: 64-octet SRS0 local part, backstop == $ORACLE" "$WORK/l.in" "$WORK/x.fwd" "$WORK/o.fwd"
  printf '%s\n' "$l36@otherdomain.com" >"$WORK/l.in"
  ours_forward fixed main <"$WORK/l.in" >"$WORK/o.fwd"
  oracle_forward fixed main <"$WORK/l.in" >"$WORK/x.fwd" 2>"$WORK/x.err"
  out65=$(cat "$WORK/o.fwd"); local local65=${out65%@*}
  check_true "limit: 65-octet SRS0 local part not emitted by backstop (got '${out65}', exit $BS_RC; $ORACLE: '$(cat "$WORK/x.fwd")')" \
    test "${#out65}" -eq 0 -o "${#local65}" -le 64
  if [[ -z $out65 ]]; then
    check_true "limit: refusal exits 1 and says why on stderr" test "$BS_RC" -eq 1 -a -s "$WORK/bs.err"
  fi

  printf '%s\n' 'SRS0=XjO9=2V=otherdomain.com=test@example.com' \
    'srs0=xjo9=2v=otherdomain.com=test@example.com' 'SRS0=XJO9=2V=OTHERDOMAIN.COM=TEST@EXAMPLE.COM' \
    'SRS1=JIBX=thirddomain.com==opaque+string@example.com' >"$WORK/r.in"
  printf '%s\n' test@otherdomain.com test@otherdomain.com TEST@OTHERDOMAIN.COM \
    'SRS0=opaque+string@thirddomain.com' >"$WORK/r.want"
  ours_reverse fixed main <"$WORK/r.in" >"$WORK/o.rev"
  check_rc "vectors: backstop srs reverse" 0 "$BS_RC"
  check_lines "vectors: backstop reverse" "$WORK/r.in" "$WORK/r.want" "$WORK/o.rev"
  oracle_reverse fixed main <"$WORK/r.in" >"$WORK/x.rev" 2>"$WORK/x.err"
  check_lines "vectors: $ORACLE reverse" "$WORK/r.in" "$WORK/r.want" "$WORK/x.rev"
  printf '%s\n' 'SRS0=te87=T7=otherdomain.com=test@example.com' \
    'SRS0=FAKE=2V=otherdomain.com=test@example.com' >"$WORK/e.in"
  ours_reverse fixed main <"$WORK/e.in" >"$WORK/o.rev"
  check_rc "vectors: backstop srs reverse of bad addresses" 1 "$BS_RC"
  check_all_empty "vectors: backstop refuses out-of-date and bad-hash" "$WORK/e.in" "$WORK/o.rev"
  check_true "vectors: backstop says why on stderr (2 lines naming the address)" \
    test "$(grep -c -e '^SRS0=te87=T7=otherdomain.com=test@example.com: .' \
      -e '^SRS0=FAKE=2V=otherdomain.com=test@example.com: .' "$WORK/bs.err" || true)" -eq 2
  oracle_reverse fixed main <"$WORK/e.in" >"$WORK/x.rev" 2>"$WORK/x.err"
  check_all_empty "vectors: $ORACLE refuses out-of-date and bad-hash" "$WORK/e.in" "$WORK/x.rev"
}
