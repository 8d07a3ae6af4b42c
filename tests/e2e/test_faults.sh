#!/bin/bash
# Faults and hostile input: backstop-milter behind a real Postfix MX (the topology of
# lib.sh and test_postfix.sh: local users, recipient validation, the socketmaps of
# conf/postfix-main.cf) while it is killed, reloaded, given bad key files, and fed
# oversized, deeply nested and malformed mail.
#
# usage: test_faults.sh BACKSTOP_MILTER BACKSTOP_CLI
#
# 1  kill -9 and reloads under a load of FAULTS_LOAD (5000) messages, nine in ten
#    outbound from mynetworks to the sink, one in ten a bounce from outside to a tag
#    of bsbob+NNNNN (a real user, with an extension) delivered to /var/mail/bsbob:
#    every message delivered exactly once, every outbound sender signed, every bounce
#    rewritten to its mailbox with its null sender, the queue empty after. The kill
#    takes the socketmap down too: Postfix tempfails what it cannot look up.
# 2  BATV key rotation at reload: new key signs, a tag of the old key still works.
# 3  BATV key file unusable at reload: logged, the old configuration keeps serving.
# 4  hostile input: a 50 MB bounce (peak RSS bounded), 2000 nested multiparts,
#    a DSN with 100000 recipients, control bytes and CR/LF in raw SMTP addresses.
#
# FAULTS_LOAD=N changes the size of the load; FAULTS_CASES="2 3" runs only some cases.
# FAULTS_DEFAULT_ACTION=accept sets Postfix's milter_default_action to accept, which
# lets mail through unsigned while the milter is dead: case 1 must then FAIL (this
# is how the test is shown to be able to fail).
# Needs root; prints PASS/FAIL per check and exits non-zero on any FAIL.
set -u
HERE=$(dirname "$(readlink -f "$0")")
. "$HERE/lib.sh"
SMTP=$HERE/faults_smtp.py

e2e_setup_or_exit "$@"

R=$E2E_RUN
KEYS=$E2E_DIR/batv.keys

# --- Helpers ----------------------------------------------------------------------------

milter_alive() { kill -0 "$E2E_MILTER_PID" 2>/dev/null && port_open 127.0.0.1 "$E2E_MILTER_PORT"; }

# log_mark / log_since: the milter log written after the mark.
log_mark() { LOG_MARK=$(stat -c %s "$E2E_DIR/milter.log"); }
log_since() { tail -c +$((LOG_MARK + 1)) "$E2E_DIR/milter.log"; }
log_since_has() { log_since | grep -qE -- "$1"; }

# reload_and_wait REGEX: SIGUSR1, then waits for a log line matching REGEX.
reload_and_wait() {
    log_mark
    kill -USR1 "$E2E_MILTER_PID"
    wait_until 10 log_since_has "$1"
}

# postfix_set NAME=VALUE...: changes main.cf (e2e_cleanup restores it) and reloads.
postfix_set() {
    postconf -e "$@" && postfix reload >/dev/null 2>&1 9>&-
}

our_queue_count() { postqueue -j 2>/dev/null | grep -cF "$R"; }
our_queue_empty() { [ "$(our_queue_count)" -eq 0 ]; }

# wait_queue_empty SECONDS: flushes now and then so that a deferred message
# (minimal_backoff_time is minutes) does not hide behind its retry time.
wait_queue_empty() {
    local deadline=$(($(date +%s) + $1))
    while ! our_queue_empty; do
        [ "$(date +%s)" -ge "$deadline" ] && return 1
        postqueue -f >/dev/null 2>&1
        wait_until 5 our_queue_empty && return 0
    done
}

# Wall-clock milliseconds, and the seconds since a start in ms as "12.3".
now_ms() { echo $(($(date +%s%N) / 1000000)); }
secs_since() { awk -v d=$(($(now_ms) - $1)) 'BEGIN { printf "%.1f", d / 1000 }'; }


# --- 1: kill -9 and reloads under load --------------------------------------------------

LOAD=${FAULTS_LOAD:-5000}

# The plan: e2e_write_load_plan (lib.sh), bounces to tags of bsbob+bNNNNN.RUN.
LOAD_USER=bsbob

# check_load PLAN: tests/e2e/load_check.py on this run (the distinct outbound senders
# in $E2E_DIR/load-senders).
check_load() {
    python3 "$HERE/load_check.py" "$1" "$E2E_DIR/sink" "$(mailbox_of "$LOAD_USER")" "$R" \
        "$E2E_DIR/load-senders" postfix
}

case_1() {
    local name="1 kill-9-under-load" plan=$E2E_DIR/load-plan out=$E2E_DIR/load-out pid
    if [ -n "${FAULTS_DEFAULT_ACTION:-}" ]; then
        e2e_log "case 1: milter_default_action=$FAULTS_DEFAULT_ACTION (deliberate breakage)"
        postfix_set "milter_default_action=$FAULTS_DEFAULT_ACTION"
    fi
    e2e_write_load_plan "$plan" "$LOAD" "$LOAD_USER" "$R"
    local started
    started=$(now_ms)
    python3 "$SMTP" load "$plan" "$E2E_DIR/load-progress" 120 8 >"$out" 2>&1 9>&- &
    pid=$!

    # Faults at fixed points of the load: reload, kill -9 + restart, reload, reload.
    local killed_at=-1 dead_for=0 reloads=0 at t0
    for at in $((LOAD / 10)) $((LOAD * 3 / 10)) $((LOAD / 2)) $((LOAD * 7 / 10)); do
        wait_until 120 e2e_load_progress_at_least "$at" || break
        if [ "$at" -eq $((LOAD * 3 / 10)) ]; then
            killed_at=$(e2e_load_progress)
            t0=$(now_ms)
            kill -KILL "$E2E_MILTER_PID"
            wait "$E2E_MILTER_PID" 2>/dev/null
            sleep 2
            e2e_start_milter || { e2e_fail "$name" "the milter did not restart"; break; }
            dead_for=$(secs_since "$t0")
        else
            reload_and_wait "configuration reloaded" && reloads=$((reloads + 1))
        fi
    done
    wait "$pid"
    local sent_for
    sent_for=$(secs_since "$started")
    if ! wait_queue_empty 120; then
        e2e_fail "$name-queue-drained" "$(our_queue_count) of our messages still queued after 120 s"
    else
        e2e_pass "$name-queue-drained"
    fi
    local total
    total=$(secs_since "$started")

    local result numbers
    result=$(check_load "$plan")
    numbers=$(sed -n 's/^numbers //p' <<<"$result")
    printf '    load: %s\n' "$(tr '\n' ' ' <"$out")"
    printf '    sink: %s\n' "$numbers"
    printf '    killed at %s accepted, milter back after %s s; %d reloads; sent in %s s, drained in %s s (%s msg/s end to end)\n' \
        "$killed_at" "$dead_for" "$reloads" "$sent_for" "$total" "$(awk -v n="$LOAD" -v t="$total" 'BEGIN { printf "%.0f", n / t }')"

    if [ "$killed_at" -lt 0 ] || [ "$killed_at" -ge "$LOAD" ]; then
        e2e_fail "$name-kill-during-load" "the milter was not killed while the load ran"
    else
        e2e_pass "$name-kill-during-load"
    fi
    if [ "$reloads" -eq 3 ]; then
        e2e_pass "$name-reloads"
    else
        e2e_fail "$name-reloads" "$reloads of 3 reloads logged 'configuration reloaded'"
    fi
    if grep -q '^accepted='"$LOAD"'$' "$out" && grep -q '^rejected=0 ' "$out"; then
        e2e_pass "$name-all-accepted"
    else
        e2e_fail "$name-all-accepted" "client: $(tr '\n' ' ' <"$out")"
    fi
    if grep -q '^bad ' <<<"$result" || ! grep -q "delivered-ids=$LOAD missing=0 duplicated=0 " <<<"$result"; then
        e2e_fail "$name-exactly-once-signed" "$(grep '^bad ' <<<"$result" | head -n 5 | tr '\n' ';') $numbers"
    else
        e2e_pass "$name-exactly-once-signed"
    fi
    # Every distinct outbound sender is a tag that verifies to the sender we used.
    local verified
    verified=$("$E2E_CLI" batv verify --keys "$KEYS" <"$E2E_DIR/load-senders" 2>&1 | sort -u)
    if [ "$verified" = "x.$R@ours.example" ]; then
        e2e_pass "$name-tags-verify"
    else
        e2e_fail "$name-tags-verify" "outbound senders verify to: $(tr '\n' ' ' <<<"$verified")"
    fi
    # The later cases grep the sink: keep the load's 5000 dumps out of their way.
    mkdir -p "$E2E_DIR/load-sink"
    find "$E2E_DIR/sink" -type f -exec mv -t "$E2E_DIR/load-sink" {} +
    [ -n "${FAULTS_DEFAULT_ACTION:-}" ] && postfix_set milter_default_action=tempfail
}

# --- 2 and 3: key files at reload ---------------------------------------------------------

# signed_outbound NAME DIGIT: an outbound message now leaves signed with key DIGIT,
# and the tag verifies with the keys file as it is now (or as saved in $KEYS.good).
signed_outbound() {
    local name=$1 digit=$2 user="alice$RANDOM.$R@ours.example" rcpt="bob$RANDOM.$R@remote.example"
    local keys=$KEYS
    [ -f "$KEYS.good" ] && keys=$KEYS.good
    check_sent_signed "$name" "$user" "$rcpt" "$user" "$digit" "$keys"
}

# (2) A new key on the first line signs after SIGUSR1; a tag of the old key, made
# before the reload, still brings its bounce to the real mailbox (through the
# reverse map and the milter, both reloaded).
case_2() {
    local name="2 key-rotation" user="bsbob+k2.$R@ours.example" old_tag msg
    old_tag=$("$E2E_CLI" batv sign --keys "$KEYS" "$user")
    (
        umask 077
        { "$E2E_CLI" keygen --batv-key 2; cat "$KEYS"; } >"$KEYS.new"
    )
    mv "$KEYS.new" "$KEYS"
    if ! reload_and_wait "configuration reloaded"; then
        e2e_fail "$name-reload" "no 'configuration reloaded' after SIGUSR1: $(log_since | tail -n 2)"
        return
    fi
    signed_outbound "$name-new-key-signs" 2
    if ! smtp_send 127.0.0.2 "" "$old_tag"; then
        e2e_fail "$name-old-tag-accepted" "bounce to <$old_tag> refused: $(swaks_rcpt_reply)"
    elif ! wait_done "$(swaks_queue_id)"; then
        e2e_fail "$name-old-tag-accepted" "Postfix did not finish the bounce to <$old_tag>"
    elif [ "$(mbox_count "$(mailbox_of bsbob)" "Delivered-To: $user")" -ne 1 ]; then
        e2e_fail "$name-old-tag-accepted" "bounce to <$old_tag> not delivered once to <$user>"
    else
        msg=$(mbox_message "$(mailbox_of bsbob)" "Delivered-To: $user")
        if ! grep -qx 'Return-Path: <>' <<<"$msg"; then
            e2e_fail "$name-old-tag-accepted" "the bounce lost its null sender"
        else
            e2e_pass "$name-old-tag-accepted"
        fi
    fi
}

# (3) The keys file becomes unusable (readable by others; then missing): SIGUSR1
# logs a configuration error naming the file, and the old configuration serves on.
old_config_serves() {
    local name=$1
    if log_since | grep -qE "configuration error, keeping the old configuration: .*${KEYS//./\\.}"; then
        e2e_pass "$name-logged"
    else
        e2e_fail "$name-logged" "no configuration error naming $KEYS: $(log_since | tail -n 2)"
    fi
    if ! milter_alive; then
        e2e_fail "$name" "the milter died on SIGUSR1"
        e2e_start_milter
        return
    fi
    signed_outbound "$name-still-signs" 2
    # An unsigned bounce to a real user: the milter's refusal, not Postfix's.
    check_unsigned_bounce_refused "$name-still-refuses" "bsbob+n$RANDOM.$R@ours.example" \
        "$(mailbox_of bsbob)"
}

case_3() {
    local name="3 unusable-keys"
    cp -p "$KEYS" "$KEYS.good"
    chmod 644 "$KEYS"
    reload_and_wait "configuration error"
    old_config_serves "$name-world-readable"
    rm -f "$KEYS"
    reload_and_wait "configuration error"
    old_config_serves "$name-missing"
    mv "$KEYS.good" "$KEYS"
    if reload_and_wait "configuration reloaded"; then
        e2e_pass "$name-restored"
    else
        e2e_fail "$name-restored" "the good keys file was not taken back"
    fi
}

# --- 4: hostile input --------------------------------------------------------------------

# proc_kb FIELD: a field of the milter's /proc status in kB (VmRSS, VmHWM).
proc_kb() { sed -n "s/^$1:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$E2E_MILTER_PID/status"; }

# verdict_line STRING: the milter's end-of-message log line for the message whose
# sender contains STRING.
verdict_line() { grep -F -- "$1" "$E2E_DIR/milter.log" | grep -E ' verdict=[a-z]+ reason=' | tail -n 1; }

# send_generated NAME IP SENDER RCPT GENERATOR...: a message made by
# "faults_smtp.py GENERATOR..." sent in one transaction; the replies go to
# $E2E_DIR/NAME.out. False when the client itself failed.
send_generated() {
    local out=$E2E_DIR/$1.out ip=$2 sender=$3 rcpt=$4
    shift 4
    python3 "$SMTP" "$@" | python3 "$SMTP" send "$ip" "$sender" "$rcpt" - >"$out" 2>&1
}
final_reply() { grep -E '^(RCPT [45]|DATA)' "$E2E_DIR/$1.out" | tail -n 1; }

# generated_queue_id NAME: the queue ID in the DATA reply of send_generated NAME.
generated_queue_id() { sed -n 's/^DATA 250 .*queued as \([0-9A-Za-z]*\).*/\1/p' "$E2E_DIR/$1.out"; }

# (4a) A 50 MB bounce to a valid tag of a real user: delivered to the mailbox whole
# (Postfix's mailbox_size_limit is lifted for it), and the milter's memory stays
# bounded. It reads at most [classify] max-bytes (512 KiB) of a message; the rest of
# the body only streams through the protocol's 64 KiB chunks. So the peak RSS (VmHWM,
# reset to the current RSS before sending) may grow by a few MB of buffers and
# copies, never by the message: 16 MB of growth is generous, and a milter that kept
# the body would need 50. The whole process stays under 64 MB.
case_4a() {
    # bscarol's mailbox: the later cases read bsbob's, better without 50 MB in it.
    local name="4a 50MB-bounce" user="bscarol+big.$R@ours.example" tag rss0 hwm t0 took
    local mbox size0 grown
    mbox=$(mailbox_of bscarol)
    size0=$(stat -c %s "$mbox" 2>/dev/null || echo 0)
    tag=$("$E2E_CLI" batv sign --keys "$KEYS" "$user")
    echo 5 >"/proc/$E2E_MILTER_PID/clear_refs" # resets VmHWM to VmRSS
    rss0=$(proc_kb VmRSS)
    t0=$(now_ms)
    send_generated big 127.0.0.2 "" "$tag" big 50 "$tag" "big-$R"
    took=$(secs_since "$t0")
    hwm=$(proc_kb VmHWM)
    printf '    50 MB bounce: %s in %s s; milter VmRSS before %d kB, VmHWM after %d kB\n' \
        "$(final_reply big)" "$took" "$rss0" "$hwm"
    if ! milter_alive; then
        e2e_fail "$name" "the milter died: $(final_reply big)"
        e2e_start_milter
        return
    fi
    if ! grep -q '^DATA 250 ' "$E2E_DIR/big.out"; then
        e2e_fail "$name-delivered" "not accepted: $(tail -n 3 "$E2E_DIR/big.out" | tr '\n' ' ')"
    elif ! wait_done "$(generated_queue_id big)"; then
        e2e_fail "$name-delivered" "Postfix did not finish the bounce to <$user>"
    else
        # local(8) writes LF line ends: 50 MiB of 1000-byte lines is 52.37 MB there.
        grown=$(($(stat -c %s "$mbox") - size0))
        if [ "$(grep -cx "end of big big-$R" "$mbox")" -eq 1 ] && [ "$grown" -gt 52000000 ]; then
            e2e_pass "$name-delivered"
        else
            e2e_fail "$name-delivered" "$mbox grew by $grown bytes, $(grep -cx "end of big big-$R" "$mbox") end lines"
        fi
    fi
    if [ "$hwm" -lt $((rss0 + 16384)) ] && [ "$hwm" -lt 65536 ]; then
        e2e_pass "$name-memory-bounded"
    else
        e2e_fail "$name-memory-bounded" "VmHWM $hwm kB after the message, VmRSS $rss0 kB before (bound: +16384 kB, < 65536 kB)"
    fi
}

# (4b) An auto-reply-like message (non-null sender, Auto-Submitted) from outside to
# an unsigned address of a real user, 2000 multiparts deep: no crash, a verdict in
# the log.
case_4b() {
    local name="4b nested-multipart" sender="auto-nest-$R@remote.example" line
    send_generated nested 127.0.0.2 "$sender" "bsbob+4b.$R@ours.example" nested 2000 "nest-$R"
    line=$(verdict_line "from=<$sender>")
    printf '    2000-deep multipart: %s; log: %s\n' "$(final_reply nested)" "${line#*: }"
    if ! milter_alive; then
        e2e_fail "$name" "the milter died"
        e2e_start_milter
    elif ! grep -qE '^DATA [245][0-9][0-9] ' "$E2E_DIR/nested.out"; then
        e2e_fail "$name" "no reply to the message: $(tail -n 3 "$E2E_DIR/nested.out" | tr '\n' ' ')"
    elif [ -z "$line" ]; then
        e2e_fail "$name" "no verdict logged for from=<$sender>"
    else
        e2e_pass "$name"
    fi
}

# (4c) A DSN with 100000 per-recipient blocks (about 7 MB) to a valid tag: no crash,
# a reply, delivered; the hard bounces recorded are bounded by what is examined.
case_4c() {
    local name="4c huge-dsn" user="bsbob+4c.$R@ours.example" tag t0 took recorded line
    tag=$("$E2E_CLI" batv sign --keys "$KEYS" "$user")
    t0=$(now_ms)
    send_generated dsn 127.0.0.2 "" "$tag" dsn 100000 "$tag" "$user" "dsn-$R"
    took=$(secs_since "$t0")
    recorded=$("$E2E_CLI" bounces list --state "sqlite:$E2E_DIR/state.db" 2>/dev/null | grep -cF -- "-dsn-$R@")
    line=$(grep -F -- "rewritten=1" "$E2E_DIR/milter.log" | tail -n 1)
    printf '    100000-recipient DSN: %s in %s s; %d hard bounces recorded; log: %s\n' \
        "$(final_reply dsn)" "$took" "$recorded" "${line#*: }"
    if ! milter_alive; then
        e2e_fail "$name" "the milter died"
        e2e_start_milter
        return
    fi
    if ! grep -q '^DATA 250 ' "$E2E_DIR/dsn.out"; then
        e2e_fail "$name-delivered" "not accepted: $(tail -n 3 "$E2E_DIR/dsn.out" | tr '\n' ' ')"
    elif ! wait_done "$(generated_queue_id dsn)"; then
        e2e_fail "$name-delivered" "Postfix did not finish the DSN to <$user>"
    elif [ "$(mbox_count "$(mailbox_of bsbob)" "Delivered-To: $user")" -ne 1 ]; then
        e2e_fail "$name-delivered" "not delivered once to <$user>"
    else
        e2e_pass "$name-delivered"
    fi
    if [ "$recorded" -ge 1 ] && [ "$recorded" -le 1000 ]; then
        e2e_pass "$name-records-bounded"
    else
        e2e_fail "$name-records-bounded" "$recorded hard bounces recorded (want 1 to 1000)"
    fi
}

# (4d) Raw SMTP, nothing sanitized on the way: NUL and control bytes, CR/LF, 1000-
# character local parts and invalid UTF-8 in MAIL FROM and RCPT TO. Every reply is a
# well-formed reply, the milter lives on, and nothing forges a line in its log.
raw_case() {
    local name="4d raw-$1" ip=$2 sender=$3 rcpt=$4 out=$E2E_DIR/raw-$1.out
    python3 "$SMTP" raw "$ip" "$sender" "$rcpt" >"$out" 2>&1
    printf '    %-14s %s\n' "$1:" "$(grep -E '^(MAIL|RCPT|DOT|QUIT) ' "$out" | grep -v '^QUIT 221' | cut -c1-90 | tr '\n' '|')"
    if ! milter_alive; then
        e2e_fail "$name" "the milter died"
        e2e_start_milter
    elif ! grep -q '^replies control=0 malformed=0$' "$out"; then
        e2e_fail "$name" "bad replies: $(tail -n 4 "$out" | tr '\n' '|')"
    else
        e2e_pass "$name"
    fi
}

case_4d() {
    local long i=.$R
    long=$(printf 'a%.0s' {1..1000})
    log_mark
    # Bounces from outside to our domain reach the milter's RCPT check and its log
    # when Postfix's recipient validation lets them by: the local parts extend a
    # real user's (bsbob+...).
    local u=bsbob+
    raw_case nul-rcpt 127.0.0.2 "" "${u}a\\x00b$i@ours.example"
    raw_case ctl-rcpt 127.0.0.2 "" "${u}a\\x1b[2J\\x07b$i@ours.example"
    raw_case crlf-rcpt 127.0.0.2 "" "${u}a$i\\r\\nX-Injected: yes@ours.example"
    raw_case cr-rcpt 127.0.0.2 "" "${u}a$i\\rX-Injected: yes@ours.example"
    raw_case lf-rcpt 127.0.0.2 "" "${u}a$i\\nX-Injected: yes@ours.example"
    raw_case pct-rcpt 127.0.0.2 "" "${u}a$i%0d%0aX-Injected:yes@ours.example"
    raw_case long-rcpt 127.0.0.2 "" "$u$long$i@ours.example"
    raw_case long-tag 127.0.0.2 "" "prvs=1123abcdef=$u$long$i@ours.example"
    raw_case utf8-rcpt 127.0.0.2 "" "$u\\xc3\\x28\\xff$i@ours.example"
    # Outbound senders are signed and logged at the end of the message.
    raw_case ctl-sender 127.0.0.1 "x\\x01\\x1b[2J$i@ours.example" "bob$i@remote.example"
    raw_case cr-sender 127.0.0.1 "x$i\\rX-Injected: yes@ours.example" "bob$i@remote.example"
    raw_case long-sender 127.0.0.1 "$long$i@ours.example" "bob$i@remote.example"
    raw_case utf8-sender 127.0.0.2 "\\xff\\xfe$i@remote.example" "${u}s$i@ours.example"
    raw_case lf-sender 127.0.0.2 "a$i\\nX-Injected: yes@remote.example" "${u}s$i@ours.example"

    local forged ctl
    forged=$(log_since | grep -cv '^backstop-milter: ')
    ctl=$(log_since | LC_ALL=C grep -c $'[\x01-\x08\x0b-\x1f\x7f]')
    if [ "$forged" -eq 0 ] && [ "$ctl" -eq 0 ] && ! log_since | grep -q '^X-Injected'; then
        e2e_pass "4d raw-log-clean"
    else
        e2e_fail "4d raw-log-clean" "$forged log lines not from the milter, $ctl with control bytes: $(log_since | LC_ALL=C grep -v '^backstop-milter: ' | head -n 2 | cat -v)"
    fi
}

# (4e) Bounces to our addresses in forms that Postfix accepts and normalizes to the
# plain address (a trailing dot, a comment, white space, a backslash, an unquoted
# special): Postfix delivers them to that address, so the milter must treat them as
# the unsigned addresses they are. The local parts extend the real user bsbob's, so
# that Postfix's recipient validation lets them by, and carry the mark x4e.RUN.
# Each is refused, by Postfix or by the milter, and none reaches a mailbox.
loose_rcpt() {
    local name="4e loose-rcpt-$1" rcpt=$2 out=$E2E_DIR/loose-$1.out
    python3 "$SMTP" raw 127.0.0.2 "" "$rcpt" >"$out" 2>&1
    if grep -qE '^DOT 250 ' "$out"; then
        e2e_fail "$name" "<$rcpt> accepted: $(grep -E '^(RCPT|DOT) ' "$out" | tr '\n' '|')"
        LOOSE_ACCEPTED+=("$(sed -n 's/^DOT 250 .*queued as \([0-9A-Za-z]*\).*/\1/p' "$out")")
    elif ! grep -qE '^RCPT 5[0-9][0-9] ' "$out"; then
        e2e_fail "$name" "no 5xx for <$rcpt>: $(grep -E '^(RCPT|DOT) ' "$out" | tr '\n' '|')"
    else
        e2e_pass "$name"
    fi
}

case_4e() {
    local i=x4e.$R u=bsbob+ srs carol=carol-4e.$R@foreign.example qid
    LOOSE_ACCEPTED=()
    srs=$("$E2E_CLI" srs forward --secrets "$E2E_DIR/srs.secrets" --srs-domain fwd.ours.example "$carol")
    loose_rcpt trailing-dot "${u}e1$i@ours.example."
    loose_rcpt upper-dot "${u}e2$i@OURS.Example."
    loose_rcpt comment "${u}e3$i(note)@ours.example"
    loose_rcpt domain-comment "${u}e4$i@ours.example(note)"
    loose_rcpt space "${u}e5 $i@ours.example"
    loose_rcpt backslash "${u}e6$i\\\\x@ours.example"
    loose_rcpt colon "${u}e:7$i@ours.example"
    loose_rcpt srs-dot "${srs}."
    for qid in "${LOOSE_ACCEPTED[@]}"; do
        wait_done "$qid"
    done
    local delivered
    delivered=$(($(mbox_count "$(mailbox_of bsbob)" "$i") + $(sink_count "$carol")))
    if [ "$delivered" -eq 0 ]; then
        e2e_pass "4e loose-rcpt-none-delivered"
    else
        e2e_fail "4e loose-rcpt-none-delivered" "$delivered unsigned bounces reached their mailbox"
    fi
}

case_4() {
    local limit mailbox_limit
    limit=$(postconf -h message_size_limit)
    mailbox_limit=$(postconf -h mailbox_size_limit)
    # mailbox_size_limit may not be below message_size_limit.
    postfix_set message_size_limit=80000000 mailbox_size_limit=0
    case_4a
    case_4b
    case_4c
    case_4d
    case_4e
    postfix_set "message_size_limit=$limit" "mailbox_size_limit=$mailbox_limit"
}

# FAULTS_CASES="2 3" runs only those cases (while working on them).
for c in ${FAULTS_CASES:-1 2 3 4}; do
    "case_$c"
done

e2e_summary
