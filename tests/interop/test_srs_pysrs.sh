#!/usr/bin/env bash
# Interop: backstop SRS <-> pysrs 1.0.4 (Debian python3-srs, SRS.new = Guarded),
# both directions, at a fixed instant (faketime / --time) and on the real clock.
# Usage: test_srs_pysrs.sh /path/to/backstop
set -euo pipefail
source "$(dirname "$0")/lib.sh"
interop_init "$@"
require_oracle pysrs faketime
ORACLE=pysrs

pysrs_args() {
  local s
  while read -r s; do printf -- '--secret\n%s\n' "$s"; done < <(conf_secrets "$1")
  printf -- '--alias\n%s\n--separator\n%s\n--hashlength\n%s\n' \
    "$(conf_domain "$1")" "$(conf_sep "$1")" "$(conf_len "$1")"
}
oracle_forward() { local -a a; mapfile -t a < <(pysrs_args "$2"); pysrs "$1" forward "${a[@]}"; }
oracle_reverse() { local -a a; mapfile -t a < <(pysrs_args "$2"); pysrs "$1" reverse "${a[@]}"; }

srs_vectors
srs_suite fixed 2001 250
srs_age_suite 2003 60
srs_suite real 2011 250

# Quoted local parts (fixed instant). pysrs, like backstop, hashes the
# unquoted local part (Mail::SRS and postsrsd 1.10 hash the quotes too and
# put them inside the SRS local part, which is no valid address); pysrs
# also keeps quotes that are not needed. Expected: pysrs's hash, RFC 5321
# quoting (quotes exactly when the local part is not a dot-string).
echo "== pysrs: quoted local parts"
printf '%s\n' '"a b"@x.example' '"a@b"@x.example' '"a=b c"@x.example' '"quoted"@x.example' \
  '".dot"@x.example' '"john..doe"@x.example' '"dot."@x.example' >"$WORK/q.in"
printf '%s\n' '"a b"@x.example' '"a@b"@x.example' '"a=b c"@x.example' 'quoted@x.example' \
  '".dot"@x.example' '"john..doe"@x.example' '"dot."@x.example' >"$WORK/q.orig"
printf '%s\n' '"SRS0=BadI=2W=x.example=a b"@example.com' '"SRS0=1IMi=2W=x.example=a@b"@example.com' \
  '"SRS0=Tw1S=2W=x.example=a=b c"@example.com' 'SRS0=mkNz=2W=x.example=quoted@example.com' \
  'SRS0=G7Ko=2W=x.example=.dot@example.com' '"SRS0=XNBq=2W=x.example=john..doe"@example.com' \
  '"SRS0=AY/U=2W=x.example=dot."@example.com' >"$WORK/q.want"
oracle_forward fixed main <"$WORK/q.in" >"$WORK/x.fwd" 2>"$WORK/x.err"
# the oracle's hashes are the expected ones (quoting aside)
sed 's/"//g' "$WORK/x.fwd" >"$WORK/x.nq"; sed 's/"//g' "$WORK/q.want" >"$WORK/q.nq"
check_lines "quoted: pysrs forward == expected, quotes aside" "$WORK/q.in" "$WORK/q.nq" "$WORK/x.nq"
ours_forward fixed main <"$WORK/q.in" >"$WORK/o.fwd"
check_lines "quoted: backstop forward == pysrs hash with RFC 5321 quoting" "$WORK/q.in" "$WORK/q.want" "$WORK/o.fwd"
ours_reverse fixed main <"$WORK/x.fwd" >"$WORK/o.rev"
check_lines "quoted: backstop reverses pysrs forward" "$WORK/x.fwd" "$WORK/q.orig" "$WORK/o.rev"
ours_reverse fixed main <"$WORK/q.want" >"$WORK/o.rev"
check_lines "quoted: backstop reverses the expected forward" "$WORK/q.want" "$WORK/q.orig" "$WORK/o.rev"

interop_finish
