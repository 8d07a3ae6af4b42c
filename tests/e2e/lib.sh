# Shared helpers for the end-to-end tests: a real MTA on loopback (DESIGN §8),
# an smtp-sink as the next hop, and backstop-milter between them.
# Sourced by tests/e2e/test_*.sh; needs root, swaks and smtp-sink (from postfix).
# e2e_setup brings up Postfix; a test for another MTA calls e2e_start_common and
# starts its MTA itself (test_sendmail.sh).
#
# Layout of one run (all under $E2E_DIR, removed at the end unless E2E_KEEP=1):
#   sink/        smtp-sink dumps, one file per delivered message
#   milter.conf  backstop config; milter.log its stderr; *.keys / *.secrets 0600
#   postfix/     backups of main.cf and master.cf, restored by e2e_cleanup

E2E_SINK_PORT=${E2E_SINK_PORT:-2526}
E2E_SMTP_PORT=25 # where smtp_send connects: the MTA under test
E2E_DELIVERY=30  # seconds to wait for a message to reach the sink
E2E_MAILLOG=/var/log/backstop-e2e.log # maillog_file must lie under /var
E2E_RUN=r$$x$(date +%s)               # in every address: tells our mail from any other
E2E_DIR=
E2E_PASSED=0
E2E_FAILED=0
E2E_MILTER_PID=
E2E_SINK_PID=
E2E_POSTFIX_STARTED=0
E2E_POSTFIX_WAS_RUNNING=0
E2E_MTA_STOP=          # function that stops the MTA under test; run first by e2e_cleanup
E2E_MTA_LOG=e2e_postfix_log # function printing the MTA log lines of this run

e2e_log() { printf '%s\n' "$*" >&2; }

e2e_pass() {
    E2E_PASSED=$((E2E_PASSED + 1))
    printf 'PASS %s\n' "$1"
}

# e2e_fail NAME WHY: also shows the tail of the milter and MTA logs.
e2e_fail() {
    E2E_FAILED=$((E2E_FAILED + 1))
    printf 'FAIL %s: %s\n' "$1" "$2"
    if [ -n "$E2E_DIR" ] && [ -f "$E2E_DIR/milter.log" ]; then
        sed 's/^/    milter| /' "$E2E_DIR/milter.log" | tail -n 8
    fi
    "$E2E_MTA_LOG"
}

e2e_postfix_log() {
    if [ -f "$E2E_MAILLOG" ]; then
        grep -F "$E2E_RUN" "$E2E_MAILLOG" | sed 's/^/    postfix| /' | tail -n 8
    fi
}

e2e_summary() {
    printf 'e2e: %d passed, %d failed\n' "$E2E_PASSED" "$E2E_FAILED"
    [ "$E2E_FAILED" -eq 0 ]
}

# wait_until SECONDS COMMAND...: polls COMMAND every 0.2 s until it succeeds.
wait_until() {
    local deadline=$(($(date +%s) + $1))
    shift
    while ! "$@"; do
        [ "$(date +%s)" -ge "$deadline" ] && return 1
        sleep 0.2
    done
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
port_closed() { ! port_open "$1" "$2"; }

# A loopback port with no listener (the kernel picks it).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# e2e_require TOOL...: root and TOOL... on the PATH, or the test is skipped.
e2e_require() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "e2e: needs root (the MTA, smtp-sink -u nobody)" >&2
        exit 77
    fi
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "e2e: $tool not installed" >&2; exit 77; }
    done
}

# --- backstop-milter ---------------------------------------------------------------

# e2e_write_config [UNSIGNED_BOUNCE_ACTION]: the milter config for this run.
e2e_write_config() {
    cat >"$E2E_DIR/milter.conf" <<EOF
socket = inet:$E2E_MILTER_PORT@127.0.0.1
foreground = true
log-level = debug
allow-root = true
state = sqlite:$E2E_DIR/state.db
[domains]
local = ours.example
internal-networks = 127.0.0.1/32
[srs]
enable = true
domain = fwd.ours.example
secrets = $E2E_DIR/srs.secrets
[batv]
enable = true
keys = $E2E_DIR/batv.keys
lifetime = 7
[inbound]
unsigned-bounce = ${1:-reject}
bad-signature = reject
exempt-recipients = postmaster@*
EOF
}

e2e_make_keys() {
    (
        umask 077
        "$E2E_CLI" keygen >"$E2E_DIR/srs.secrets"
        "$E2E_CLI" keygen --batv-key 1 >"$E2E_DIR/batv.keys"
    )
}

e2e_start_milter() {
    # 9>&-: daemons must not inherit the run lock.
    "$E2E_MILTER_BIN" --config "$E2E_DIR/milter.conf" --foreground >>"$E2E_DIR/milter.log" 2>&1 9>&- &
    E2E_MILTER_PID=$!
    if ! wait_until 15 port_open 127.0.0.1 "$E2E_MILTER_PORT"; then
        e2e_log "backstop-milter did not listen on $E2E_MILTER_PORT:"
        tail -n 20 "$E2E_DIR/milter.log" >&2
        return 1
    fi
}

e2e_stop_milter() {
    [ -n "$E2E_MILTER_PID" ] || return 0
    kill -TERM "$E2E_MILTER_PID" 2>/dev/null
    if ! wait_until 10 port_closed 127.0.0.1 "$E2E_MILTER_PORT"; then
        kill -KILL "$E2E_MILTER_PID" 2>/dev/null
    fi
    wait "$E2E_MILTER_PID" 2>/dev/null
    E2E_MILTER_PID=
}

# --- smtp-sink and Postfix ------------------------------------------------------------

e2e_start_sink() {
    if port_open 127.0.0.1 "$E2E_SINK_PORT"; then
        e2e_log "port $E2E_SINK_PORT is taken: set E2E_SINK_PORT"
        return 1
    fi
    mkdir -p "$E2E_DIR/sink"
    chown nobody "$E2E_DIR/sink"
    # One file per message: the template is strftime'd and a random suffix added.
    smtp-sink -u nobody -d "$E2E_DIR/sink/%M." "127.0.0.1:$E2E_SINK_PORT" 10 9>&- &
    E2E_SINK_PID=$!
    wait_until 10 port_open 127.0.0.1 "$E2E_SINK_PORT"
}

e2e_start_postfix() {
    mkdir -p "$E2E_DIR/postfix"
    cp -p /etc/postfix/main.cf /etc/postfix/master.cf "$E2E_DIR/postfix/"
    if postfix status >/dev/null 2>&1; then
        E2E_POSTFIX_WAS_RUNNING=1
        postfix stop >/dev/null 2>&1
        wait_until 20 port_closed 127.0.0.1 25
    fi
    # DESIGN §8, plus: ours.example and the SRS domain are relayed to the sink too, so
    # inbound mail that the milter lets through shows up there with its final recipient.
    postconf -e inet_interfaces=loopback-only mydestination= \
        "relayhost=[127.0.0.1]:$E2E_SINK_PORT" default_transport=smtp relay_transport=smtp \
        'relay_domains=ours.example fwd.ours.example' \
        "smtpd_milters=inet:127.0.0.1:$E2E_MILTER_PORT" \
        "non_smtpd_milters=inet:127.0.0.1:$E2E_MILTER_PORT" \
        milter_default_action=tempfail milter_protocol=6 \
        "maillog_file=$E2E_MAILLOG" \
        'mynetworks=127.0.0.0/8' \
        'smtpd_relay_restrictions=permit_mynetworks reject_unauth_destination' \
        smtp_connect_timeout=5s \
        content_filter= transport_maps= relay_recipient_maps= # whatever the box had
    postfix check >/dev/null 2>&1 || true
    postfix start >/dev/null 2>&1 9>&-
    E2E_POSTFIX_STARTED=1
    wait_until 30 port_open 127.0.0.1 25
}

# Removes our messages from the queue (never anybody else's).
e2e_delete_our_queue() {
    postqueue -j 2>/dev/null | grep -F "$E2E_RUN" |
        python3 -c 'import json,sys
for l in sys.stdin: print(json.loads(l)["queue_id"])' |
        postsuper -d - >/dev/null 2>&1
}

# Stops our Postfix, restores main.cf/master.cf and the Postfix that was running.
e2e_stop_postfix() {
    e2e_delete_our_queue
    if [ "$E2E_POSTFIX_STARTED" = 1 ]; then
        postfix stop >/dev/null 2>&1
        wait_until 20 port_closed 127.0.0.1 25
    fi
    if [ -f "$E2E_DIR/postfix/main.cf" ]; then
        cp -p "$E2E_DIR/postfix/main.cf" "$E2E_DIR/postfix/master.cf" /etc/postfix/
    fi
    [ "$E2E_POSTFIX_WAS_RUNNING" = 1 ] && postfix start >/dev/null 2>&1 9>&-
}

e2e_cleanup() {
    set +e
    [ -n "$E2E_MTA_STOP" ] && "$E2E_MTA_STOP"
    e2e_stop_milter
    if [ -n "$E2E_SINK_PID" ]; then
        kill "$E2E_SINK_PID" 2>/dev/null
        wait "$E2E_SINK_PID" 2>/dev/null
    fi
    if [ "${E2E_KEEP:-0}" = 1 ]; then
        e2e_log "e2e: kept $E2E_DIR"
    else
        rm -rf "$E2E_DIR"
    fi
}

# e2e_start_common MILTER CLI: run lock, temp dir, keys, smtp-sink and the milter;
# cleanup is trapped. The caller has checked its tools with e2e_require.
e2e_start_common() {
    E2E_MILTER_BIN=$1
    E2E_CLI=$2
    [ -x "$E2E_MILTER_BIN" ] || { echo "e2e: no milter binary: $E2E_MILTER_BIN" >&2; exit 2; }
    [ -x "$E2E_CLI" ] || { echo "e2e: no CLI binary: $E2E_CLI" >&2; exit 2; }
    # One run per machine (Postfix owns port 25): runs (ctest, a developer, another
    # checkout, the Sendmail test) take turns.
    exec 9>/run/lock/backstop-e2e.lock
    if ! flock -w "${E2E_LOCK_WAIT:-900}" 9; then
        echo "e2e: another e2e run holds /run/lock/backstop-e2e.lock" >&2
        return 1
    fi
    E2E_DIR=$(mktemp -d /tmp/backstop-e2e.XXXXXX)
    chmod 755 "$E2E_DIR"
    trap e2e_cleanup EXIT
    trap 'exit 130' INT TERM
    E2E_MILTER_PORT=$(free_port)
    e2e_make_keys
    e2e_write_config reject
    : >"$E2E_DIR/milter.log"
    e2e_start_sink || return 1
    e2e_start_milter
}

# e2e_setup_or_exit "$@": the usage check and e2e_setup for a Postfix test script; a
# setup that fails is a failed "setup" case and ends the script.
e2e_setup_or_exit() {
    if [ $# -ne 2 ]; then
        echo "usage: $0 BACKSTOP_MILTER BACKSTOP_CLI" >&2
        exit 2
    fi
    if ! e2e_setup "$1" "$2"; then
        e2e_fail setup "could not start smtp-sink, backstop-milter or Postfix"
        e2e_summary
        exit 1
    fi
}

# e2e_setup MILTER CLI: everything up, Postfix in front; cleanup is trapped.
e2e_setup() {
    e2e_require postfix postconf postqueue postsuper swaks smtp-sink python3
    E2E_MTA_STOP=e2e_stop_postfix
    e2e_start_common "$1" "$2" || return 1
    e2e_start_postfix || return 1
}

# --- Sending and looking -----------------------------------------------------------------

# smtp_send FROM_IP SENDER RCPT... : one SMTP transaction with swaks; the transcript
# goes to $E2E_DIR/swaks.out, the exit status is swaks's. SENDER "" is the null sender.
# Extra swaks arguments for the next call go in the array SWAKS_ARGS.
SWAKS_ARGS=()
smtp_send() {
    local ip=$1 sender=${2:-<>}
    shift 2
    local to
    to=$(IFS=,; echo "$*")
    swaks --server 127.0.0.1 --port "$E2E_SMTP_PORT" --local-interface "$ip" \
        --from "$sender" --to "$to" --helo "client-$E2E_RUN.example" \
        --header "Subject: backstop e2e $E2E_RUN" \
        "${SWAKS_ARGS[@]}" >"$E2E_DIR/swaks.out" 2>&1
}

# local_send SENDER RCPT: a local submission through sendmail(1) (non_smtpd_milters).
local_send() {
    printf 'Subject: backstop e2e %s\nFrom: %s\n\nLocal submission.\n' "$E2E_RUN" "$1" |
        sendmail -f "$1" "$2"
}

# The server's reply to the first RCPT, e.g. "<** 550 5.7.1 ..." or "<-  250 2.1.5 Ok".
swaks_rcpt_reply() { grep -A1 -- '-> RCPT TO' "$E2E_DIR/swaks.out" | grep -E '^ *<' | head -n 1; }
swaks_tail() { tail -n 4 "$E2E_DIR/swaks.out" | tr '\n' ' '; }
# Any line of the transcript matching an extended regex.
swaks_has() { grep -Eq -- "$1" "$E2E_DIR/swaks.out"; }

# sink_file_for PATTERN: the dump file containing the fixed string PATTERN (first one).
sink_file_for() { grep -lF -- "$1" "$E2E_DIR"/sink/* 2>/dev/null | head -n 1; }
sink_has() { [ -n "$(sink_file_for "$1")" ]; }
sink_count() { grep -lF -- "$1" "$E2E_DIR"/sink/* 2>/dev/null | wc -l; }
# smtp-sink writes the dump while the transaction runs: a dump is complete once the
# body is in it (swaks's default body, or local_send's).
sink_complete() {
    local file
    file=$(sink_file_for "$1")
    [ -n "$file" ] && grep -qE '^(This is a test mailing|Local submission\.)' "$file"
}
# wait_for_sink SECONDS PATTERN: polls until a complete dump contains PATTERN.
wait_for_sink() { wait_until "$1" sink_complete "$2"; }

# Header value of the smtp-sink dump, e.g. sink_field FILE X-Mail-Args.
sink_field() { sed -n "s/^$2: //p" "$1"; }

# The address inside "<addr> SIZE=..." (smtp-sink writes the MAIL/RCPT arguments
# without FROM:/TO:; both forms are accepted). "<>" gives "".
angle_addr() { sed -n 's/^\([A-Za-z]*:\)\{0,1\}<\([^>]*\)>.*/\2/p'; }

# --- Checks shared by the MTA tests ------------------------------------------------------

# check_prvs_sender NAME RCPT USER [DIGIT [KEYS]]: the dump for RCPT has sender
# prvs=DIGIT...=USER (key 1 unless given), and the tag verifies with KEYS (default:
# the run's BATV keys).
check_prvs_sender() {
    local name=$1 rcpt=$2 user=$3 digit=${4:-1} keys=${5:-$E2E_DIR/batv.keys}
    local file sender untagged
    if ! wait_for_sink "$E2E_DELIVERY" "<$rcpt>"; then
        e2e_fail "$name" "no delivery to $rcpt within ${E2E_DELIVERY}s"
        return
    fi
    file=$(sink_file_for "<$rcpt>")
    sender=$(sink_field "$file" X-Mail-Args | angle_addr)
    if ! [[ $sender =~ ^prvs=${digit}[0-9]{3}[0-9a-f]{6}=${user//./\\.}$ ]]; then
        e2e_fail "$name" "sender on the wire is <$sender>, expected <prvs=${digit}DDDSSSSSS=$user>"
        return
    fi
    untagged=$("$E2E_CLI" batv verify --keys "$keys" "$sender" 2>&1)
    if [ "$untagged" != "$user" ]; then
        e2e_fail "$name" "tag <$sender> does not verify: $untagged"
        return
    fi
    e2e_pass "$name"
}

# check_sent_signed NAME SENDER RCPT USER [DIGIT [KEYS]]: mail from SENDER, sent by an
# internal client to RCPT, leaves signed for USER (as check_prvs_sender checks it).
# Returns 1 when the mail could not be sent (already reported).
check_sent_signed() {
    local name=$1 sender=$2 rcpt=$3
    shift 3
    if ! smtp_send 127.0.0.1 "$sender" "$rcpt"; then
        e2e_fail "$name" "swaks failed: $(swaks_tail)"
        return 1
    fi
    check_prvs_sender "$name" "$rcpt" "$@"
}

# check_unsigned_bounce_refused NAME RCPT: a bounce from outside to the unsigned
# local address RCPT gets 550 5.7.1 at RCPT and reaches nobody.
check_unsigned_bounce_refused() {
    local name=$1 rcpt=$2
    if smtp_send 127.0.0.2 "" "$rcpt"; then
        e2e_fail "$name" "swaks succeeded: the bounce was accepted"
        return
    fi
    expect_rcpt_reply "$name" '^ *<\*\* 550 5\.7\.1 '
    if [ "$(sink_count "<$rcpt>")" -ne 0 ]; then
        e2e_fail "$name-not-delivered" "a rejected bounce reached the sink"
    else
        e2e_pass "$name-not-delivered"
    fi
}

# expect_rcpt_reply NAME REGEX: the RCPT reply in the swaks transcript matches.
expect_rcpt_reply() {
    local reply
    reply=$(swaks_rcpt_reply)
    if [[ $reply =~ $2 ]]; then
        e2e_pass "$1"
    else
        e2e_fail "$1" "RCPT reply '$reply', expected /$2/"
    fi
}
