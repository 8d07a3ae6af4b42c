#!/usr/bin/env bash
# Interop: backstop normalize strips the tags other implementations add:
# Exim prvs tags, Mail::SRS / pysrs SRS0 and SRS1 addresses, tags nested in
# each other, and the vendor forms of DESIGN §3 made from Exim's tags.
# normalize decodes without keys and lowercases the domain.
# Usage: test_normalize.sh /path/to/backstop
set -euo pipefail
source "$(dirname "$0")/lib.sh"
interop_init "$@"
require_oracle exim mailsrs pysrs faketime

norm() { run_bs /dev/stdout "$WORK/bs.err" normalize; }
# The expected form: local part as is, domain lowercased.
lc_domain() { perl -pe 's{\@([^@]*)$}{"\@" . lc($1)}e'; }

in=$WORK/n.in
gen_addresses 5001 250 30 >"$in"
lc_domain <"$in" >"$WORK/want"
echo "== normalize: $(wc -l <"$in") generated addresses (seed 5001)"
describe_addresses "$in"

norm <"$in" >"$WORK/o"
check_rc "plain addresses: backstop normalize" 0 "$BS_RC"
check_lines "plain addresses come back with the domain lowercased" "$in" "$WORK/want" "$WORK/o"

# shellcheck disable=SC2016  # an Exim expansion, literal on purpose
sed 's/.*/${prvs {&}{k3y}{5}}/' "$in" | exim_be fixed >"$WORK/prvs"
norm <"$WORK/prvs" >"$WORK/o"
check_lines "Exim prvs=TAG=local@domain" "$WORK/prvs" "$WORK/want" "$WORK/o"
perl -pe 's{^prvs=(\w{10})=}{PRVS=\U$1\E=}' "$WORK/prvs" >"$WORK/t"; norm <"$WORK/t" >"$WORK/o"
check_lines "Exim tag in upper case (PRVS=, hex)" "$WORK/t" "$WORK/want" "$WORK/o"
perl -pe 's{^prvs=(\w{10})=(.*)\@}{btv1==$1==$2\@}' "$WORK/prvs" >"$WORK/t"; norm <"$WORK/t" >"$WORK/o"
check_lines "Barracuda btv1==TAG==local@domain" "$WORK/t" "$WORK/want" "$WORK/o"
perl -pe 's{^prvs=(\w{10})=(.*)\@}{msprvs1=$1=$2\@}' "$WORK/prvs" >"$WORK/t"; norm <"$WORK/t" >"$WORK/o"
check_lines "SparkPost msprvs1=TAG=local@domain" "$WORK/t" "$WORK/want" "$WORK/o"

mailsrs fixed forward --secret=s1 --alias=fwd.example <"$in" >"$WORK/srs0" 2>/dev/null
norm <"$WORK/srs0" >"$WORK/o"
check_lines "Mail::SRS SRS0" "$WORK/srs0" "$WORK/want" "$WORK/o"
to_lower <"$WORK/srs0" >"$WORK/t"; norm <"$WORK/t" >"$WORK/o"
to_lower <"$WORK/want" >"$WORK/want.lc"
check_lines "Mail::SRS SRS0, all lowercase" "$WORK/t" "$WORK/want.lc" "$WORK/o"
pysrs fixed forward --secret s2 --alias relay.example <"$WORK/srs0" >"$WORK/srs1" 2>/dev/null
norm <"$WORK/srs1" >"$WORK/o"
check_lines "pysrs SRS1 around Mail::SRS SRS0" "$WORK/srs1" "$WORK/want" "$WORK/o"
mailsrs fixed forward --secret=s3 --alias=fwd.example --separator=+ <"$WORK/prvs" >"$WORK/t" 2>/dev/null
norm <"$WORK/t" >"$WORK/o"
check_lines "Mail::SRS SRS0+ around an Exim prvs tag" "$WORK/t" "$WORK/want" "$WORK/o"

interop_finish
