#!/usr/bin/env bash
# Interop: backstop SRS <-> Mail::SRS 0.31 (Debian libmail-srs-perl + srs),
# both directions, at a fixed instant (faketime / --time) and on the real clock.
# Usage: test_srs_mailsrs.sh /path/to/backstop
set -euo pipefail
source "$(dirname "$0")/lib.sh"
interop_init "$@"
require_oracle mailsrs faketime
ORACLE=Mail::SRS

mailsrs_args() {
  local s
  while read -r s; do printf -- '--secret=%s\n' "$s"; done < <(conf_secrets "$1")
  printf -- '--alias=%s\n--separator=%s\n--hashlength=%s\n' \
    "$(conf_domain "$1")" "$(conf_sep "$1")" "$(conf_len "$1")"
}
oracle_forward() { local -a a; mapfile -t a < <(mailsrs_args "$2"); mailsrs "$1" forward "${a[@]}"; }
oracle_reverse() { local -a a; mapfile -t a < <(mailsrs_args "$2"); mailsrs "$1" reverse "${a[@]}"; }

srs_vectors
srs_suite fixed 1001 250
srs_age_suite 1003 60
srs_suite real 1011 250

# The in-process driver must be the same Mail::SRS the `srs` program runs.
echo "== the srs program itself"
gen_addresses 1021 200 >"$WORK/cli.in"
mapfile -t addrs <"$WORK/cli.in"
srs_cli fixed --secret=tops3cr3t --alias=example.com "${addrs[@]}" >"$WORK/cli.fwd"
ours_forward fixed main <"$WORK/cli.in" >"$WORK/o.fwd"
check_lines "srs --alias (CLI) == backstop forward" "$WORK/cli.in" "$WORK/cli.fwd" "$WORK/o.fwd"
mapfile -t fwd <"$WORK/o.fwd"
srs_cli fixed --reverse --secret=tops3cr3t "${fwd[@]}" >"$WORK/cli.rev" 2>/dev/null || true
check_lines "srs --reverse (CLI) of backstop forward" "$WORK/o.fwd" "$WORK/cli.in" "$WORK/cli.rev"

interop_finish
