#!/usr/bin/env bash
# Interop: backstop BATV (prvs) <-> Exim 4.96's ${prvs} and ${prvscheck},
# both directions, at fixed instants (faketime / --time) and on the real
# clock. Exim is unpacked, not installed (scripts/install-oracles).
# Usage: test_batv_exim.sh /path/to/backstop
set -euo pipefail
source "$(dirname "$0")/lib.sh"
interop_init "$@"
require_oracle exim faketime
ORACLE=Exim

KEY1=s3cr3t-batv KEY3=n3w-batv
write_keyfile "$WORK/keys.main" "1 $KEY1"
write_keyfile "$WORK/keys.rot" "3 $KEY3" "1 $KEY1"     # 3 signs, both verify

ours_sign() {
  local mode=$1 keys=$2; shift 2
  local -a t; mapfile -t t < <(bs_time "$mode")
  run_bs /dev/stdout "$WORK/bs.err" batv sign --keys "$keys" "${t[@]}" "$@"
}
ours_verify() {
  local mode=$1 keys=$2; shift 2
  local -a t; mapfile -t t < <(bs_time "$mode")
  run_bs /dev/stdout "$WORK/bs.err" batv verify --keys "$keys" "${t[@]}" "$@"
}
# exim_sign MODE SECRET KEYNUM < addresses
exim_sign() {
  sed "s/.*/\${prvs {&}{$2}{$3}}/" | exim_be "$1"
}
# exim_check MODE SECRET-EXPR < tagged: "ADDRESS [1]" when valid,
# "ADDRESS []" when not, the input unchanged when it is not a prvs address.
exim_check() {
  sed "s/.*/\${prvscheck {&}{$2}{\$prvscheck_address [\$prvscheck_result]}}/" | exim_be "$1"
}
with_result() { sed "s/\$/ [$1]/" "$2"; }
# Flip the last hex digit of the tag (prvs=KDDDSSSSSS=...).
tamper_tag() { perl -pe 's{^(prvs=\d{4}[0-9a-f]{5})([0-9a-f])}{$1 . ($2 eq "0" ? "1" : "0")}ei'; }

# batv_suite MODE SEED COUNT
batv_suite() {
  local mode=$1 m=$1 in=$WORK/b.$2
  gen_addresses "$2" "$3" 48 >"$in"
  echo "== Exim, clock $mode: $(wc -l <"$in") generated addresses (seed $2)"
  describe_addresses "$in"
  if [[ $mode == real ]]; then avoid_midnight 300; fi

  ours_sign "$mode" "$WORK/keys.main" <"$in" >"$WORK/o.tag"
  check_rc "$m: backstop batv sign" 0 "$BS_RC"
  exim_sign "$mode" "$KEY1" 1 <"$in" >"$WORK/x.tag"
  check_lines "$m: backstop sign == Exim \${prvs}" "$in" "$WORK/x.tag" "$WORK/o.tag"
  exim_check "$mode" "$KEY1" <"$WORK/o.tag" >"$WORK/x.chk"
  with_result 1 "$in" >"$WORK/want"
  check_lines "$m: Exim \${prvscheck} accepts backstop tags" "$WORK/o.tag" "$WORK/want" "$WORK/x.chk"
  ours_verify "$mode" "$WORK/keys.main" <"$WORK/x.tag" >"$WORK/o.ver"
  check_rc "$m: backstop batv verify" 0 "$BS_RC"
  check_lines "$m: backstop verifies Exim tags" "$WORK/x.tag" "$in" "$WORK/o.ver"

  # tag type and hex in upper case (Exim's own check wants lowercase hex)
  perl -pe 's{^prvs=(\w{10})=}{"PRVS=" . uc($1) . "="}e' "$WORK/x.tag" >"$WORK/x.uc"
  ours_verify "$mode" "$WORK/keys.main" <"$WORK/x.uc" >"$WORK/o.ver"
  check_lines "$m: backstop verifies Exim tags with PRVS= and upper-case hex" "$WORK/x.uc" "$in" "$WORK/o.ver"

  # forms seen in the wild (DESIGN §3), made from Exim's tags: the old draft
  # order prvs=local=TAG@domain and the sub-address local+prvs=TAG@domain
  # (addresses without '=' in the local part, where the order is unambiguous)
  paste -d '\t' "$WORK/x.tag" "$in" | awk -F '\t' '$2 !~ /=.*@/' >"$WORK/alt"
  cut -f2 "$WORK/alt" >"$WORK/alt.in"
  perl -ne 'm{^prvs=(\w{10})=(.*)\@([^@\t]+)\t} and print "prvs=$2=$1\@$3\n"' "$WORK/alt" >"$WORK/alt.old"
  perl -ne 'm{^prvs=(\w{10})=(.*)\@([^@\t]+)\t} and print "$2+prvs=$1\@$3\n"' "$WORK/alt" >"$WORK/alt.sub"
  ours_verify "$mode" "$WORK/keys.main" <"$WORK/alt.old" >"$WORK/o.ver"
  check_lines "$m: backstop verifies prvs=local=TAG@domain (old draft order)" "$WORK/alt.old" "$WORK/alt.in" "$WORK/o.ver"
  # the sub-address form is opt-in (--subaddress): without it, no tag
  ours_verify "$mode" "$WORK/keys.main" --subaddress <"$WORK/alt.sub" >"$WORK/o.ver"
  check_lines "$m: backstop --subaddress verifies local+prvs=TAG@domain" "$WORK/alt.sub" "$WORK/alt.in" "$WORK/o.ver"
  ours_verify "$mode" "$WORK/keys.main" <"$WORK/alt.sub" >"$WORK/o.ver"
  check_all_empty "$m: backstop without --subaddress finds no tag in local+prvs=TAG@domain" "$WORK/alt.sub" "$WORK/o.ver"

  # key rotation: key 3 signs, 1 still verifies
  ours_sign "$mode" "$WORK/keys.rot" <"$in" >"$WORK/o.tag"
  exim_sign "$mode" "$KEY3" 3 <"$in" >"$WORK/x.tag"
  check_lines "$m rotation: backstop sign (key 3) == Exim \${prvs} key 3" "$in" "$WORK/x.tag" "$WORK/o.tag"
  exim_check "$mode" "\${if eq{\$prvscheck_keynum}{3}{$KEY3}{$KEY1}}" <"$WORK/o.tag" >"$WORK/x.chk"
  check_lines "$m rotation: Exim (keys 3 and 1) accepts backstop key-3 tags" "$WORK/o.tag" "$WORK/want" "$WORK/x.chk"
  exim_sign "$mode" "$KEY1" 1 <"$in" >"$WORK/x.tag1"
  ours_verify "$mode" "$WORK/keys.rot" <"$WORK/x.tag1" >"$WORK/o.ver"
  check_lines "$m rotation: backstop (keys 3 and 1) verifies Exim key-1 tags" "$WORK/x.tag1" "$in" "$WORK/o.ver"

  # forged tags: both refuse
  tamper_tag <"$WORK/x.tag1" >"$WORK/x.bad"
  ours_verify "$mode" "$WORK/keys.main" <"$WORK/x.bad" >"$WORK/o.ver"
  check_rc "$m tampered: backstop batv verify" 1 "$BS_RC"
  check_all_empty "$m tampered: backstop refuses altered Exim tags" "$WORK/x.bad" "$WORK/o.ver"
  ours_sign "$mode" "$WORK/keys.main" <"$in" | tamper_tag >"$WORK/o.bad"
  exim_check "$mode" "$KEY1" <"$WORK/o.bad" >"$WORK/x.chk"
  with_result "" "$in" >"$WORK/want0"
  check_lines "$m tampered: Exim refuses altered backstop tags" "$WORK/o.bad" "$WORK/want0" "$WORK/x.chk"
  write_keyfile "$WORK/keys.wrong" "3 not-$KEY3"
  ours_verify "$mode" "$WORK/keys.wrong" <"$WORK/x.tag" >"$WORK/o.ver"
  check_all_empty "$m wrong key: backstop refuses Exim tags made with another secret" "$WORK/x.tag" "$WORK/o.ver"
}

# age_suite SEED COUNT: tags made N days before (or after) the check, at
# the fixed instant and where DDD wraps past 999. Exim's window is
# open-ended to the future; backstop's is bounded by the lifetime (7 days).
age_suite() {
  local in=$WORK/age.$1 base d sm want
  gen_addresses "$1" "$2" 48 >"$in"
  for base in 0 733; do  # day 18262 (2020-01-01) and day 18995 (DDD wraps)
    echo "== Exim, tag age at day $((FIXED_EPOCH / 86400 + base)): $(wc -l <"$in") addresses"
    for d in 0 -3 -7 -8 -30; do
      sm=shift:$((base + d)); want=valid; ((d < -7)) && want=refused
      ours_sign "$sm" "$WORK/keys.main" <"$in" >"$WORK/o.tag"
      exim_sign "$sm" "$KEY1" 1 <"$in" >"$WORK/x.tag"
      check_lines "age ${d}d: backstop sign == Exim" "$in" "$WORK/x.tag" "$WORK/o.tag"
      ours_verify "shift:$base" "$WORK/keys.main" <"$WORK/x.tag" >"$WORK/o.ver"
      exim_check "shift:$base" "$KEY1" <"$WORK/o.tag" >"$WORK/x.chk"
      if [[ $want == valid ]]; then
        check_lines "age ${d}d: backstop verifies Exim tag" "$WORK/x.tag" "$in" "$WORK/o.ver"
        with_result 1 "$in" >"$WORK/want"
        check_lines "age ${d}d: Exim accepts backstop tag" "$WORK/o.tag" "$WORK/want" "$WORK/x.chk"
      else
        check_all_empty "age ${d}d: backstop refuses expired Exim tag" "$WORK/x.tag" "$WORK/o.ver"
        with_result "" "$in" >"$WORK/want"
        check_lines "age ${d}d: Exim refuses expired backstop tag" "$WORK/o.tag" "$WORK/want" "$WORK/x.chk"
      fi
    done
    # made 100 days in the future: Exim accepts it, backstop must not.
    sm=shift:$((base + 100))
    exim_sign "$sm" "$KEY1" 1 <"$in" >"$WORK/x.tag"
    ours_verify "shift:$base" "$WORK/keys.main" <"$WORK/x.tag" >"$WORK/o.ver"
    check_all_empty "future +100d: backstop refuses (bounded window; Exim's is open)" "$WORK/x.tag" "$WORK/o.ver"
    # --lifetime 30: a 20-day-old tag is valid, a 31-day-old one is not
    ours_sign "shift:$((base - 20))" "$WORK/keys.main" --lifetime 30 <"$in" >"$WORK/o.tag"
    ours_verify "shift:$base" "$WORK/keys.main" --lifetime 30 <"$WORK/o.tag" >"$WORK/o.ver"
    check_lines "lifetime 30, 20 days old: backstop verifies its own tag" "$WORK/o.tag" "$in" "$WORK/o.ver"
    exim_check "shift:$base" "$KEY1" <"$WORK/o.tag" >"$WORK/x.chk"
    with_result 1 "$in" >"$WORK/want"
    check_lines "lifetime 30, 20 days old: Exim accepts it" "$WORK/o.tag" "$WORK/want" "$WORK/x.chk"
  done
}

vectors() {
  echo "== DESIGN §3 vectors (key 'secret')"
  local k day addr tag
  # K DAY ADDRESS TAG: DAY is the day the tag is made (DDD = DAY + 7).
  while read -r k day addr tag; do
    write_keyfile "$WORK/keys.v" "$k secret"
    printf '%s\n' "$addr" >"$WORK/v.in"; printf '%s\n' "$tag" >"$WORK/v.want"
    ours_sign "shift:$((day - FIXED_EPOCH / 86400))" "$WORK/keys.v" <"$WORK/v.in" >"$WORK/o.tag"
    check_lines "vector K=$k day $day: backstop sign" "$WORK/v.in" "$WORK/v.want" "$WORK/o.tag"
    exim_sign "shift:$((day - FIXED_EPOCH / 86400))" secret "$k" <"$WORK/v.in" >"$WORK/x.tag"
    check_lines "vector K=$k day $day: Exim \${prvs}" "$WORK/v.in" "$WORK/v.want" "$WORK/x.tag"
    ours_verify "shift:$((day - FIXED_EPOCH / 86400))" "$WORK/keys.v" <"$WORK/v.want" >"$WORK/o.ver"
    check_lines "vector K=$k day $day: backstop verify" "$WORK/v.want" "$WORK/v.in" "$WORK/o.ver"
  done <<'V'
1 19779 user@example.com prvs=1786c06615=user@example.com
0 19779 user@example.com prvs=07867e8775=user@example.com
0 19772 user@example.com prvs=077934312a=user@example.com
0 19992 user@example.com prvs=099999d073=user@example.com
3 19779 First.Last+x@Example.COM prvs=37868a4174=First.Last+x@Example.COM
V
}

vectors
batv_suite fixed 4001 250
age_suite 4003 100
batv_suite real 4011 250

interop_finish
