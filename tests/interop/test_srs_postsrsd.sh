#!/usr/bin/env bash
# Interop: backstop SRS <-> postsrsd 1.10 (libsrs2) over its Postfix tcp_table
# ports on loopback, both directions, at a fixed instant (libfaketime /
# --time) and on the real clock. One postsrsd per clock and configuration,
# each on free ports, all killed on exit.
# Usage: test_srs_postsrsd.sh /path/to/backstop
set -euo pipefail
source "$(dirname "$0")/lib.sh"
interop_init "$@"
require_oracle postsrsd faketime
ORACLE=postsrsd

# Not in a pipeline or $( ): the ports must be remembered in this shell.
oracle_forward() { postsrsd_once "$1" "$2"; tcptable "$PSRS_FWD"; }
oracle_reverse() { postsrsd_once "$1" "$2"; tcptable "$PSRS_REV"; }

srs_vectors
srs_suite fixed 3001 250
srs_age_suite 3003 60
srs_suite real 3011 250

# SRS that our own secret signed, seen again under another domain: postsrsd
# answers "500 Already rewritten" (Postfix keeps the address); backstop
# must hand it back unchanged (Mail::SRS and pysrs would nest it in SRS1).
echo "== postsrsd: already rewritten"
gen_addresses 3021 200 >"$WORK/ar.in"
ours_forward fixed main <"$WORK/ar.in" | sed 's/@example\.com$/@h1.example/' >"$WORK/ar.srs"
oracle_forward fixed main <"$WORK/ar.srs" >"$WORK/x.fwd" 2>"$WORK/x.err"
check_all_empty "already rewritten: postsrsd refuses to rewrite again" "$WORK/ar.srs" "$WORK/x.fwd"
check_true "already rewritten: postsrsd says so ($(grep -c 'Already rewritten' "$WORK/x.err" || true) times)" \
  test "$(grep -c 'Already rewritten' "$WORK/x.err" || true)" -eq "$(wc -l <"$WORK/ar.srs")"
ours_forward fixed main <"$WORK/ar.srs" >"$WORK/o.fwd"
check_rc "already rewritten: backstop srs forward" 0 "$BS_RC"
check_lines "already rewritten: backstop leaves them unchanged" "$WORK/ar.srs" "$WORK/ar.srs" "$WORK/o.fwd"

echo "== postsrsd: ${#PSRS_FWD_PORTS[@]} daemons were queried"

interop_finish
