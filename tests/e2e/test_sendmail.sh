#!/bin/bash
# Layer 4: backstop-milter and its socket map behind a real Sendmail 8.17 set up as an MX.
#
# usage: test_sendmail.sh BACKSTOP_MILTER BACKSTOP_CLI
#
# Sendmail is Debian 12's sendmail-bin, unpacked by scripts/install-oracles into
# /opt/backstop-oracles/sendmail (BACKSTOP_SENDMAIL_DIR): the package conflicts with
# postfix, which stays installed. Its sendmail.cf is built with m4 from a .mc of this
# run followed by all of conf/sendmail.mc, ports changed, so the documented lines (the
# milter, the socket map, the recipient and sender rules) are the ones tested.
#
# The topology is an MX as sites run it: ours.example and the SRS domain
# fwd.ours.example are local (class w), with a real user whose mail procmail delivers to
# /var/mail (OSTYPE(linux)'s local mailer; Debian's mail.local cannot lock there), and
# Sendmail's own recipient check on (an unknown user gets 550 5.1.1 at RCPT); an aliases file of the run forwards bsfwd@ours.example to a remote address;
# remote domains go to an smtp-sink. 127.0.0.1 is an internal client (allowed to relay),
# 127.0.0.2 the outside world; local submissions go through a Sendmail MSP (submit.cf)
# as on a stock install. Every local delivery is counted in the mailbox by a header
# naming the run and the case, after Sendmail's queue has drained.
# Needs root (skipped otherwise); fails when the unpacked Sendmail or m4 is missing.
# SENDMAIL_CASES="d n" runs only some cases; SENDMAIL_LOAD=N sizes case n's load.
# SM_DEBUG=26.1 (Sendmail -d flags) writes its debug output to sendmail/debug (E2E_KEEP=1).
# Prints PASS/FAIL per case and "e2e: N passed, M failed"; exits non-zero on a failure.
set -u
HERE=$(dirname "$(readlink -f "$0")")
# shellcheck source=lib.sh
. "$HERE/lib.sh"

SENDMAIL_ROOT=${BACKSTOP_SENDMAIL_DIR:-/opt/backstop-oracles/sendmail}
SENDMAIL_BIN=$SENDMAIL_ROOT/usr/libexec/sendmail/sendmail
SENDMAIL_CF=$SENDMAIL_ROOT/usr/share/sendmail/cf
MC_SNIPPET=$HERE/../../conf/sendmail.mc
MTA_NAME=mta.ours.example
PROCMAIL=/usr/bin/procmail # the local mailer of OSTYPE(linux)
LOCAL_USER=bssmalice       # a real account: mail to it ends in /var/mail/bssmalice
MAILBOX=/var/mail/$LOCAL_USER
SM_DIR=  # $E2E_DIR/sendmail: .mc, .cf, queues, aliases, pid file, -X trace
SM_PID=  # the daemon; also its process group, so its children go with it
# Sendmail qualifies the host name before it reads sendmail.cf and sleeps 60 s when it
# cannot (a dotless name without a dotted alias in /etc/hosts, as on most test
# machines). In a UTS namespace of its own it gets a dotted name instead: SM_PREFIX is
# the command that runs it there, empty when unshare is refused.
SM_PREFIX=()
E2E_SOCKETMAP_PORT=

# Sendmail's traffic trace (-X) stands in for its syslog in failure reports.
sendmail_log() {
    [ -n "$SM_DIR" ] || return 0
    sed 's/^/    sendmail| /' "$SM_DIR/daemon.out" 2>/dev/null | tail -n 4
    tail -n 8 "$SM_DIR/trace" 2>/dev/null | sed 's/^/    sendmail| /'
}

sendmail_require() {
    local missing=
    [ -x "$SENDMAIL_BIN" ] || missing=" $SENDMAIL_BIN"
    [ -x "$PROCMAIL" ] || missing="$missing $PROCMAIL"
    [ -f "$SENDMAIL_CF/m4/cf.m4" ] || missing="$missing $SENDMAIL_CF/m4/cf.m4"
    command -v m4 >/dev/null || missing="$missing m4"
    if [ -n "$missing" ]; then
        # Not a skip: scripts/test installs them for CI, so their absence is a failure.
        echo "e2e: the Sendmail test needs:$missing" >&2
        echo "e2e: apt-get install m4 procmail; scripts/install-oracles unpacks Sendmail" >&2
        exit 1
    fi
}

# The local account, made once per machine: no home, no login.
sendmail_make_user() {
    id -u "$LOCAL_USER" >/dev/null 2>&1 ||
        useradd --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
            "$LOCAL_USER"
}

# sm_run ARGS...: Sendmail as this run's MTA host (see SM_PREFIX).
sm_run() { "${SM_PREFIX[@]}" "$SENDMAIL_BIN" "$@"; }

# conf/sendmail.mc with this run's milter and socket map ports: the INPUT_MAIL_FILTER
# line's S=inet:8891@127.0.0.1 and the K lines' inet:8893@127.0.0.1, nothing else.
snippet_lines() {
    sed -e "s/^\(INPUT_MAIL_FILTER(.*S=inet:\)8891\(@127\.0\.0\.1,.*\)\$/\1$E2E_MILTER_PORT\2/" \
        -e "s/^\(K[a-z]* socket .*inet:\)8893\(@127\.0\.0\.1\)\$/\1$E2E_SOCKETMAP_PORT\2/" \
        "$MC_SNIPPET"
}

# m4 FILE.mc > FILE.cf with the unpacked sendmail-cf.
sendmail_m4() {
    m4 -D_CF_DIR_="$SENDMAIL_CF/" "$SENDMAIL_CF/m4/cf.m4" "$1.mc" >"$1.cf"
}

# The MTA's .mc: everything it reads or writes is under $SM_DIR (it touches neither
# /etc/mail nor /var/spool), mail.local for local delivery, the sink for the rest; then
# conf/sendmail.mc, appended after the MAILER lines as its first line says.
sendmail_write_mc() {
    # Quoted m4 strings: `...' pairs; $u, $h stay for Sendmail.
    cat >"$SM_DIR/sendmail.mc" <<EOF
divert(-1)
Built by tests/e2e/test_sendmail.sh for one run.
divert(0)dnl
VERSIONID(\`backstop e2e $E2E_RUN')dnl
OSTYPE(\`linux')dnl
define(\`confDOMAIN_NAME', \`$MTA_NAME')dnl
dnl Host names from our own hosts file, never from DNS.
define(\`confSERVICE_SWITCH_FILE', \`$SM_DIR/service.switch')dnl
define(\`confHOSTS_FILE', \`$SM_DIR/hosts')dnl
define(\`ALIAS_FILE', \`$SM_DIR/aliases')dnl
define(\`QUEUE_DIR', \`$SM_DIR/mqueue')dnl
define(\`confPID_FILE', \`$SM_DIR/sendmail.pid')dnl
define(\`STATUS_FILE', \`$SM_DIR/sendmail.st')dnl
dnl The run directory lies under /tmp: a world-writable directory with the sticky bit.
define(\`confDONT_BLAME_SENDMAIL', \`TrustStickyBit')dnl
define(\`confDONT_PROBE_INTERFACES', \`True')dnl
define(\`confDELIVERY_MODE', \`background')dnl
dnl Our domains: local users and aliases; the SRS domain must be in class w too.
LOCAL_DOMAIN(\`ours.example fwd.ours.example')dnl
dnl Every remote domain goes to the smtp-sink.
define(\`SMART_HOST', \`esmtp:[127.0.0.1]')dnl
define(\`ESMTP_MAILER_ARGS', \`TCP \$h $E2E_SINK_PORT')dnl
FEATURE(\`nocanonify')dnl
FEATURE(\`accept_unresolvable_domains')dnl
FEATURE(\`no_default_msa')dnl
DAEMON_OPTIONS(\`Family=inet, Name=MTA, Port=$E2E_SMTP_PORT, Addr=127.0.0.1')dnl
MAILER(\`local')dnl
MAILER(\`smtp')dnl
EOF
    cat "$SM_DIR/snippet.mc" >>"$SM_DIR/sendmail.mc"
}

# The MSP's .mc, as Sendmail's own submit.mc: sendmail(1) relays to our MTA over SMTP.
# It must run as a user other than root: nobody (Debian's smmsp does not exist here).
sendmail_write_submit_mc() {
    cat >"$SM_DIR/submit.mc" <<EOF
divert(0)dnl
VERSIONID(\`backstop e2e submit $E2E_RUN')dnl
define(\`__OSTYPE__',\`')dnl as Sendmail's submit.mc
define(\`confDOMAIN_NAME', \`$MTA_NAME')dnl
define(\`confSERVICE_SWITCH_FILE', \`$SM_DIR/service.switch')dnl
define(\`confHOSTS_FILE', \`$SM_DIR/hosts')dnl
define(\`MSP_QUEUE_DIR', \`$SM_DIR/clientmqueue')dnl
define(\`confRUN_AS_USER', \`nobody:nogroup')dnl
define(\`confDONT_BLAME_SENDMAIL', \`TrustStickyBit')dnl
define(\`RELAY_MAILER_ARGS', \`TCP \$h $E2E_SMTP_PORT')dnl
dnl No DNS here: ours.example does not resolve.
FEATURE(\`accept_unresolvable_domains')dnl
FEATURE(\`msp', \`[127.0.0.1]')dnl
EOF
}

sendmail_build_cf() {
    local n
    snippet_lines >"$SM_DIR/snippet.mc"
    # The substitutions must have hit the documented lines: one milter, two maps.
    n=$(grep -c "^INPUT_MAIL_FILTER(.*S=inet:$E2E_MILTER_PORT@127\.0\.0\.1," "$SM_DIR/snippet.mc")
    if [ "$n" -ne 1 ]; then
        e2e_log "$MC_SNIPPET: want one INPUT_MAIL_FILTER line with S=inet:8891@127.0.0.1"
        return 1
    fi
    n=$(grep -cE "^K(reverse|forward) socket .*inet:$E2E_SOCKETMAP_PORT@127\.0\.0\.1\$" \
        "$SM_DIR/snippet.mc")
    if [ "$n" -ne 2 ]; then
        e2e_log "$MC_SNIPPET: want Kreverse and Kforward socket lines on inet:8893@127.0.0.1"
        return 1
    fi
    sendmail_write_mc
    sendmail_write_submit_mc
    sendmail_m4 "$SM_DIR/sendmail" && sendmail_m4 "$SM_DIR/submit" || return 1
    grep -q "^X.*S=inet:$E2E_MILTER_PORT@127.0.0.1" "$SM_DIR/sendmail.cf" || {
        e2e_log "sendmail.cf has no milter line for port $E2E_MILTER_PORT"
        return 1
    }
    [ "$(grep -c "^K[a-z]* socket .*inet:$E2E_SOCKETMAP_PORT@" "$SM_DIR/sendmail.cf")" -eq 2 ] || {
        e2e_log "sendmail.cf has no socket maps on port $E2E_SOCKETMAP_PORT"
        return 1
    }
}

sendmail_start() {
    SM_DIR=$E2E_DIR/sendmail
    mkdir -p "$SM_DIR/mqueue" "$SM_DIR/clientmqueue"
    chmod 700 "$SM_DIR/mqueue"
    chown nobody:nogroup "$SM_DIR/clientmqueue"
    chmod 770 "$SM_DIR/clientmqueue"
    printf 'hosts files\naliases files\n' >"$SM_DIR/service.switch"
    printf '127.0.0.1 localhost %s mta\n' "$MTA_NAME" >"$SM_DIR/hosts"
    printf 'postmaster: root\nbsfwd: %s\nbsfwd2: %s\n' "$FORWARD_TARGET" "$FORWARD_TARGET2" \
        >"$SM_DIR/aliases"
    # shellcheck disable=SC2016  # expanded by the inner sh
    unshare --uts true 2>/dev/null &&
        SM_PREFIX=(unshare --uts sh -c 'hostname "$0" && exec "$@"' "$MTA_NAME")
    sendmail_build_cf || return 1
    if ! sm_run -C "$SM_DIR/sendmail.cf" -bi >"$SM_DIR/newaliases.out" 2>&1; then
        e2e_log "newaliases failed:"
        cat "$SM_DIR/newaliases.out" >&2
        return 1
    fi
    local wait=20
    if [ ${#SM_PREFIX[@]} -eq 0 ]; then
        e2e_log "note: unshare --uts refused: Sendmail may sleep 60 s to qualify $(hostname)"
        wait=90
    fi
    # setsid: the daemon leads a process group, so that cleanup ends its children too.
    setsid "${SM_PREFIX[@]}" "$SENDMAIL_BIN" -C "$SM_DIR/sendmail.cf" -bD -q30s ${SM_DEBUG:+-D "$SM_DIR/debug" -d$SM_DEBUG} \
        -X "$SM_DIR/trace" >"$SM_DIR/daemon.out" 2>&1 9>&- &
    SM_PID=$!
    if ! wait_until "$wait" port_open 127.0.0.1 "$E2E_SMTP_PORT"; then
        e2e_log "Sendmail did not listen on $E2E_SMTP_PORT:"
        cat "$SM_DIR/daemon.out" >&2
        return 1
    fi
}

sendmail_stop() {
    [ -n "$SM_PID" ] || return 0
    kill -TERM -- "-$SM_PID" 2>/dev/null
    if ! wait_until 10 port_closed 127.0.0.1 "$E2E_SMTP_PORT"; then
        kill -KILL -- "-$SM_PID" 2>/dev/null
    fi
    wait "$SM_PID" 2>/dev/null
    SM_PID=
    # The test account's mailbox holds only test mail.
    [ "${E2E_KEEP:-0}" = 1 ] || rm -f "$MAILBOX"
}

# The milter config of lib.sh, plus the socket map that conf/sendmail.mc's K lines ask.
eval "lib_write_config() $(declare -f e2e_write_config | tail -n +2)"
e2e_write_config() {
    lib_write_config "$@" || return
    sed -i "1i socketmap = inet:$E2E_SOCKETMAP_PORT@127.0.0.1" "$E2E_DIR/milter.conf"
}

# The socket map listens too (e2e_start_milter waits for the milter port only).
socketmap_up() { wait_until 15 port_open 127.0.0.1 "$E2E_SOCKETMAP_PORT"; }

# restart_milter 1|0: backstop-milter started again, with its socket map or without.
restart_milter() {
    e2e_stop_milter
    if [ "$1" = 1 ]; then e2e_write_config; else lib_write_config; fi
    e2e_start_milter || return
    [ "$1" = 0 ] || socketmap_up
}

# --- Looking at the queue and the mailbox ----------------------------------------------

# Nothing of ours left in Sendmail's queue: every message delivered or bounced.
queue_empty() { ! compgen -G "$SM_DIR/mqueue/qf*" >/dev/null; }

# mailbox_count MARK: messages in the local mailbox carrying the header X-E2E-Case: MARK.
mailbox_count() {
    if [ -f "$MAILBOX" ]; then grep -c "^X-E2E-Case: $1\$" "$MAILBOX"; else echo 0; fi
}

# mailbox_header MARK NAME: header NAME of the message marked MARK in the mailbox.
mailbox_header() {
    python3 - "$MAILBOX" "$1" "$2" <<'EOF'
import mailbox, sys
path, mark, name = sys.argv[1:]
for msg in mailbox.mbox(path, create=False):
    if msg.get("X-E2E-Case") == mark:
        print(msg.get(name, ""))
EOF
}

# wait_delivered: Sendmail's queue has drained (deliveries are over, so a count taken
# now is final).
wait_delivered() { wait_until "$E2E_DELIVERY" queue_empty; }

# send_case MARK FROM_IP SENDER RCPT: smtp_send with the header X-E2E-Case: MARK.
send_case() {
    local mark=$1
    shift
    SWAKS_ARGS=(--add-header "X-E2E-Case: $mark")
    smtp_send "$@"
    local rc=$?
    SWAKS_ARGS=()
    return $rc
}

# check_mailbox_once NAME MARK: after the queue drains, exactly one message with MARK.
check_mailbox_once() {
    local n
    wait_delivered || { e2e_fail "$1" "Sendmail's queue did not drain"; return 1; }
    n=$(mailbox_count "$2")
    if [ "$n" -eq 1 ]; then
        e2e_pass "$1"
    else
        e2e_fail "$1" "$n messages marked $2 in $MAILBOX (want 1)"
        return 1
    fi
}

# check_sink_once NAME RCPT [SENDER]: after the queue drains, exactly one message to
# RCPT reached the sink, to RCPT alone, and (if given) from SENDER ("" the null sender).
check_sink_once() {
    local name=$1 rcpt=$2 file rcpts sender n
    wait_for_sink "$E2E_DELIVERY" "<$rcpt>" && wait_delivered
    n=$(sink_count "<$rcpt>")
    if [ "$n" -ne 1 ]; then
        e2e_fail "$name" "$n messages to <$rcpt> reached the sink (want 1)"
        return 1
    fi
    file=$(sink_file_for "<$rcpt>")
    rcpts=$(sink_field "$file" X-Rcpt-Args | angle_addr | tr '\n' ' ')
    sender=$(sink_field "$file" X-Mail-Args | angle_addr)
    if [ "$rcpts" != "$rcpt " ]; then
        e2e_fail "$name" "recipients on the wire: $rcpts(want only $rcpt)"
    elif [ $# -ge 3 ] && [ "$sender" != "$3" ]; then
        e2e_fail "$name" "sender on the wire <$sender> (want <$3>)"
    else
        e2e_pass "$name"
        return 0
    fi
    return 1
}

if [ $# -ne 2 ]; then
    echo "usage: $0 BACKSTOP_MILTER BACKSTOP_CLI" >&2
    exit 2
fi
e2e_require swaks smtp-sink python3 unshare setsid useradd
sendmail_require
E2E_MTA_STOP=sendmail_stop
E2E_MTA_LOG=sendmail_log
E2E_SMTP_PORT=$(free_port)
E2E_SINK_PORT=$(free_port)
E2E_SOCKETMAP_PORT=$(free_port)
R=$E2E_RUN
FORWARD_TARGET=dave-g.$R@remote.example
FORWARD_TARGET2=dave-m.$R@remote.example
if ! sendmail_make_user || ! e2e_start_common "$1" "$2" || ! socketmap_up ||
    ! sendmail_start; then
    e2e_fail setup "could not start smtp-sink, backstop-milter or Sendmail"
    e2e_summary
    exit 1
fi

# (a) A local sender from an internal client leaves with a BATV-signed sender, and the
# milter logs Sendmail's queue ID (macro i, asked for with smfi_setsymlist).
case_a() {
    local rcpt="bob-a.$R@remote.example" qid
    check_sent_signed "a outbound-batv" "alice-a.$R@ours.example" "$rcpt" \
        "alice-a.$R@ours.example" || return
    qid=$(sed -n 's/^ *<- *250 2\.0\.0 \([A-Za-z0-9]*\) Message accepted.*/\1/p' "$E2E_DIR/swaks.out")
    if [ -n "$qid" ] && grep -q "^backstop-milter: $qid: direction=outbound" "$E2E_DIR/milter.log"; then
        e2e_pass "a queue-id-logged"
    else
        e2e_fail "a queue-id-logged" "no milter log line for Sendmail queue ID '$qid'"
    fi
}

# (b) Local submissions: sendmail -t and sendmail -bs, through the MSP to the MTA, leave
# signed like mail from an internal client.
case_b() {
    local rcpt="bob-b.$R@remote.example" rcpt2="bob-b2.$R@remote.example"
    local sender="$LOCAL_USER@ours.example"
    if printf 'From: %s\nTo: %s\nSubject: backstop e2e %s\n\nLocal submission.\n' \
        "$sender" "$rcpt" "$R" |
        sm_run -C "$SM_DIR/submit.cf" -f "$sender" -t >"$E2E_DIR/submit.out" 2>&1; then
        check_prvs_sender "b sendmail-t-signed" "$rcpt" "$sender"
    else
        e2e_fail "b sendmail-t-signed" "sendmail -t: $(tail -n 2 "$E2E_DIR/submit.out")"
    fi
    # sendmail -bs refuses commands sent before its greeting: swaks talks to it in turn.
    if ! swaks --pipe "$(printf '%q ' "${SM_PREFIX[@]}" "$SENDMAIL_BIN" -C "$SM_DIR/submit.cf" -bs)" \
        --from "$sender" --to "$rcpt2" --helo localhost --header "Subject: backstop e2e $R" \
        >"$E2E_DIR/submit.out" 2>&1; then
        e2e_fail "b sendmail-bs-signed" "sendmail -bs: $(tail -n 4 "$E2E_DIR/submit.out" | tr '\n' ' ')"
        return
    fi
    check_prvs_sender "b sendmail-bs-signed" "$rcpt2" "$sender"
}

# (c) Bounces from outside to our addresses that are not validly signed are refused at
# RCPT and reach nobody: unsigned (the milter: 550 5.7.1), a forged BATV tag and a
# forged SRS address (no map answer, so Sendmail's own check: 550 5.1.1 User unknown).
case_c() {
    local forged_srs
    send_case "$R-c1" 127.0.0.2 "" "$LOCAL_USER@ours.example"
    expect_rcpt_reply "c unsigned-bounce" '^ *<\*\* 550 5\.7\.1 '
    send_case "$R-c2" 127.0.0.2 "" "prvs=1999000000=$LOCAL_USER@ours.example"
    expect_rcpt_reply "c forged-tag-bounce" '^ *<\*\* 550 5\.1\.1 '
    forged_srs="SRS0=AAAA=AA=foreign.example=carol-c.$R@fwd.ours.example"
    send_case "$R-c3" 127.0.0.2 "" "$forged_srs"
    expect_rcpt_reply "c forged-srs-bounce" '^ *<\*\* 550 5\.1\.1 '
    wait_delivered
    if [ "$(mailbox_count "$R-c1")$(mailbox_count "$R-c2")$(mailbox_count "$R-c3")" = 000 ] &&
        [ "$(sink_count "carol-c.$R@")" -eq 0 ]; then
        e2e_pass "c refused-not-delivered"
    else
        e2e_fail "c refused-not-delivered" "a refused bounce was delivered"
    fi
}

# (d) A bounce from outside to a genuine BATV tag reaches the real mailbox exactly once:
# the reverse map makes Sendmail accept the tag as the local user, the milter's own
# rewrite (DELRCPT tag, ADDRCPT user) adds no second copy.
case_d() {
    local tag
    tag=$("$E2E_CLI" batv sign --keys "$E2E_DIR/batv.keys" "$LOCAL_USER@ours.example")
    if ! send_case "$R-d" 127.0.0.2 "" "$tag"; then
        e2e_fail "d bounce-to-tag" "refused: $(swaks_tail)"
        return
    fi
    check_mailbox_once "d bounce-to-tag-once" "$R-d"
    # The tag of a +detail address: Sendmail's ruleset 5 resolves the mapped address to
    # the mailbox with the detail apart ($h), which the milter's rewrite must not lose.
    tag=$("$E2E_CLI" batv sign --keys "$E2E_DIR/batv.keys" "$LOCAL_USER+d2.$R@ours.example")
    if ! send_case "$R-d2" 127.0.0.2 "" "$tag"; then
        e2e_fail "d bounce-to-detail-tag" "refused: $(swaks_tail)"
        return
    fi
    check_mailbox_once "d bounce-to-detail-tag-once" "$R-d2"
}

# (e) A bounce from outside to a genuine SRS address at our SRS domain reaches the
# original sender exactly once, with its null sender.
case_e() {
    local orig="carol-e.$R@foreign.example" srs
    srs=$("$E2E_CLI" srs forward --secrets "$E2E_DIR/srs.secrets" \
        --srs-domain fwd.ours.example "$orig")
    if ! send_case "$R-e" 127.0.0.2 "" "$srs"; then
        e2e_fail "e bounce-to-srs" "refused: $(swaks_tail)"
        return
    fi
    check_sink_once "e bounce-to-srs-once" "$orig" ""
}

# (g) Mail from a foreign sender to a forwarding alias leaves with ONE SRS0 sender (the
# forward map on Sendmail's SMTP mailers; the milter sees only the local alias), which
# backstop and Mail::SRS reverse to the original sender; the bounce of it, sent back to
# that SRS address, reaches the original sender exactly once.
case_g() {
    local orig="carol-g.$R@foreign.example" file sender back
    if ! send_case "$R-g" 127.0.0.2 "$orig" "bsfwd@ours.example"; then
        e2e_fail "g alias-forwarded" "refused: $(swaks_tail)"
        return
    fi
    check_sink_once "g alias-forwarded-once" "$FORWARD_TARGET" || return
    file=$(sink_file_for "<$FORWARD_TARGET>")
    sender=$(sink_field "$file" X-Mail-Args | angle_addr)
    if ! [[ $sender =~ ^SRS0=[^=]+=[^=]+=foreign\.example=carol-g\.$R@fwd\.ours\.example$ ]]; then
        e2e_fail "g alias-forwarded-srs0" "sender on the wire <$sender> (want one SRS0 of <$orig>)"
        return
    fi
    e2e_pass "g alias-forwarded-srs0"
    back=$("$E2E_CLI" srs reverse --secrets "$E2E_DIR/srs.secrets" "$sender" 2>&1)
    if [ "$back" = "$orig" ]; then
        e2e_pass "g srs-reverse-backstop"
    else
        e2e_fail "g srs-reverse-backstop" "backstop srs reverse <$sender>: $back"
    fi
    if ! command -v srs >/dev/null; then
        e2e_fail "g srs-reverse-mailsrs" "no srs (Mail::SRS): apt-get install srs"
    else
        back=$(srs --reverse --secret="$(head -n 1 "$E2E_DIR/srs.secrets")" "$sender" 2>&1)
        if [ "$back" = "$orig" ]; then
            e2e_pass "g srs-reverse-mailsrs"
        else
            e2e_fail "g srs-reverse-mailsrs" "Mail::SRS srs --reverse <$sender>: $back"
        fi
    fi
    # The remote MX bounces it: a null sender from outside to the SRS address.
    if ! send_case "$R-g2" 127.0.0.2 "" "$sender"; then
        e2e_fail "g bounce-of-forwarded" "refused: $(swaks_tail)"
        return
    fi
    check_sink_once "g bounce-of-forwarded-once" "$orig" ""
}

# (h) Ordinary mail from outside to a local user is delivered once, and its Return-Path
# is the sender's own (the forward map applies to mail leaving by SMTP only).
case_h() {
    local orig="carol-h.$R@foreign.example" rp
    if ! send_case "$R-h" 127.0.0.2 "$orig" "$LOCAL_USER@ours.example"; then
        e2e_fail "h inbound" "refused: $(swaks_tail)"
        return
    fi
    check_mailbox_once "h inbound-once" "$R-h" || return
    rp=$(mailbox_header "$R-h" Return-Path)
    if [ "$rp" = "<$orig>" ]; then
        e2e_pass "h inbound-return-path"
    else
        e2e_fail "h inbound-return-path" "Return-Path: $rp (want <$orig>)"
    fi
}

# (i) The MX as sites run it: an unknown local user is refused by Sendmail at RCPT, and
# the outside world (127.0.0.2) may not relay.
case_i() {
    send_case "$R-i1" 127.0.0.2 "carol-i.$R@foreign.example" "nobody-i.$R@ours.example"
    expect_rcpt_reply "i unknown-user" '^ *<\*\* 550 5\.1\.1 '
    send_case "$R-i2" 127.0.0.2 "carol-i.$R@foreign.example" "bob-i.$R@remote.example"
    expect_rcpt_reply "i no-open-relay" '^ *<\*\* 550 5\.7\.1 .*[Rr]elaying denied'
}

# (l) A foreign sender relayed by an internal client to a remote recipient: the milter
# signs it with SRS at end of message, and the forward map leaves our SRS alone, so it
# leaves with one SRS0, not an SRS of an SRS.
case_l() {
    local orig="carol-l.$R@foreign.example" rcpt="bob-l.$R@remote.example" file sender back
    if ! send_case "$R-l" 127.0.0.1 "$orig" "$rcpt"; then
        e2e_fail "l relayed-srs-once" "refused: $(swaks_tail)"
        return
    fi
    check_sink_once "l relayed-once" "$rcpt" || return
    file=$(sink_file_for "<$rcpt>")
    sender=$(sink_field "$file" X-Mail-Args | angle_addr)
    back=$("$E2E_CLI" srs reverse --secrets "$E2E_DIR/srs.secrets" "$sender" 2>&1)
    if [[ $sender =~ ^SRS0=[^=]+=[^=]+=foreign\.example=carol-l\.$R@fwd\.ours\.example$ ]] &&
        [ "$back" = "$orig" ]; then
        e2e_pass "l relayed-srs-once"
    else
        e2e_fail "l relayed-srs-once" "sender on the wire <$sender>, reverses to '$back'"
    fi
}

# (o) A 94 KB folded References: header from an internal client is refused by Sendmail
# itself at the end of DATA (MaxHeadersLength, 32768 by default: all headers together),
# before the milter sees the message: nothing is queued or delivered. A 28 KB one passes
# whole, signed, exactly once.
case_o() {
    local name="o long-header-94k" rcpt="bob-o.$R@remote.example" check file
    python3 "$E2E_HERE/long_header.py" make "$E2E_DIR/long.eml" 94000 "o.$R" \
        "From: alice-o.$R@ours.example" "To: $rcpt" "Subject: backstop e2e $R o"
    SWAKS_ARGS=(--data "$E2E_DIR/long.eml")
    smtp_send 127.0.0.1 "alice-o.$R@ours.example" "$rcpt"
    SWAKS_ARGS=()
    if ! swaks_has '^ *<\*\* 552 5\.6\.0 Headers too large \(32768 max\)$'; then
        e2e_fail "$name-refused" "want 552 5.6.0 Headers too large (32768 max): $(swaks_tail)"
    elif ! wait_delivered || [ "$(sink_count "<$rcpt>")" -ne 0 ]; then
        e2e_fail "$name-refused" "queued or delivered after the 552"
    else
        e2e_pass "$name-refused"
    fi

    name="o long-header-28k" rcpt="bob-o2.$R@remote.example"
    python3 "$E2E_HERE/long_header.py" make "$E2E_DIR/long2.eml" 28000 "o2.$R" \
        "From: alice-o2.$R@ours.example" "To: $rcpt" "Subject: backstop e2e $R o2"
    SWAKS_ARGS=(--data "$E2E_DIR/long2.eml")
    if ! smtp_send 127.0.0.1 "alice-o2.$R@ours.example" "$rcpt"; then
        SWAKS_ARGS=()
        e2e_fail "$name-once" "not accepted at once: $(swaks_tail)"
        return
    fi
    SWAKS_ARGS=()
    check_sink_once "$name-once" "$rcpt" || return
    check_prvs_sender "$name-signed" "$rcpt" "alice-o2.$R@ours.example"
    file=$(sink_file_for "<$rcpt>")
    if check=$(python3 "$E2E_HERE/long_header.py" check "$E2E_DIR/long2.eml" "$file" whole); then
        e2e_pass "$name-whole"
        printf '    %s\n' "$check"
    else
        e2e_fail "$name-whole" "$check"
    fi
}

# (m) The milter up but its socket map not (not configured, or not yet listening): a
# bounce to a genuine tag gets 451 4.3.0 at RCPT, never 550 5.1.1; forwarded mail in the
# queue is deferred, never sent with its foreign sender unrewritten, and leaves with
# SRS0 once the map is back. The message is queued (sendmail -odq) in a queue of its
# own, which only this case runs (sendmail -q), so the daemon cannot deliver it early.
case_m() {
    local orig="carol-m.$R@foreign.example" q=$SM_DIR/mqueue-m tag file sender
    tag=$("$E2E_CLI" batv sign --keys "$E2E_DIR/batv.keys" "$LOCAL_USER@ours.example")
    mkdir -p "$q" && chmod 700 "$q"
    printf 'From: %s\nTo: bsfwd2@ours.example\nSubject: backstop e2e %s\n\nThis is a test mailing\n' \
        "$orig" "$R" | sm_run -C "$SM_DIR/sendmail.cf" -O "QueueDirectory=$q" -odq \
        -f "$orig" bsfwd2@ours.example >"$E2E_DIR/submit.out" 2>&1
    if ! compgen -G "$q/qf*" >/dev/null; then
        e2e_fail "m queued" "nothing queued: $(tail -n 2 "$E2E_DIR/submit.out")"
        return
    fi
    if ! restart_milter 0; then
        e2e_fail "m map-down" "the milter did not start without its socket map"
        return
    fi
    send_case "$R-m" 127.0.0.2 "" "$tag"
    expect_rcpt_reply "m map-down-bounce-tempfail" '^ *<\*\* 451 4\.3\.0 '
    sm_run -C "$SM_DIR/sendmail.cf" -O "QueueDirectory=$q" -q -v >"$E2E_DIR/queue-down.out" 2>&1
    if [ "$(sink_count "<$FORWARD_TARGET2>")" -ne 0 ]; then
        e2e_fail "m map-down-forward-deferred" "forwarded while the forward map was down"
    elif ! compgen -G "$q/qf*" >/dev/null; then
        e2e_fail "m map-down-forward-deferred" "gone from the queue: $(tail -n 3 "$E2E_DIR/queue-down.out")"
    elif ! grep -q "$FORWARD_TARGET2.*backstop forward map not answering" "$E2E_DIR/queue-down.out"; then
        e2e_fail "m map-down-forward-deferred" "deferred, but not by check_compat: $(tail -n 3 "$E2E_DIR/queue-down.out")"
    else
        e2e_pass "m map-down-forward-deferred"
    fi
    if ! restart_milter 1; then
        e2e_fail "m map-back" "the milter did not start with its socket map"
        return
    fi
    sm_run -C "$SM_DIR/sendmail.cf" -O "QueueDirectory=$q" -q >"$E2E_DIR/queue-run.out" 2>&1
    check_sink_once "m map-back-forwarded-once" "$FORWARD_TARGET2" || return
    file=$(sink_file_for "<$FORWARD_TARGET2>")
    sender=$(sink_field "$file" X-Mail-Args | angle_addr)
    if [[ $sender =~ ^SRS0=[^=]+=[^=]+=foreign\.example=carol-m\.$R@fwd\.ours\.example$ ]]; then
        e2e_pass "m map-back-forwarded-srs0"
    else
        e2e_fail "m map-back-forwarded-srs0" "sender on the wire <$sender>"
    fi
}

# smtp_send_8bit FROM_IP SENDER RCPT: MAIL FROM with BODY=8BITMIME and an 8-bit body
# (swaks cannot add MAIL parameters); the error, if any, goes to swaks.out.
smtp_send_8bit() {
    python3 - "$E2E_SMTP_PORT" "$@" >"$E2E_DIR/swaks.out" 2>&1 <<EOF
import smtplib, sys
port, ip, sender, rcpt = sys.argv[1:]
msg = ("Subject: backstop e2e $R 8bit\r\nFrom: %s\r\nMIME-Version: 1.0\r\n"
       "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
       "This is a test mailing: Gr\u00fc\u00dfe aus K\u00f6ln\r\n" % sender).encode()
with smtplib.SMTP("127.0.0.1", int(port), local_hostname="client-$R.example",
                  source_address=(ip, 0)) as s:
    s.sendmail(sender, [rcpt], msg, mail_options=["BODY=8BITMIME"])
EOF
}

# (k) CHGFROM passes no ESMTP arguments; Sendmail keeps BODY=8BITMIME anyway (it holds
# the body type apart from the sender), and the 8-bit body arrives unchanged.
case_k() {
    local name="k 8bitmime-kept" rcpt="bob-k.$R@remote.example" file
    if ! smtp_send_8bit 127.0.0.1 "alice-k.$R@ours.example" "$rcpt"; then
        e2e_fail "$name" "sending failed: $(tail -n 2 "$E2E_DIR/swaks.out" | tr '\n' ' ')"
        return
    fi
    check_prvs_sender "k 8bitmime-signed" "$rcpt" "alice-k.$R@ours.example"
    file=$(sink_file_for "<$rcpt>")
    [ -n "$file" ] || return # check_prvs_sender has reported it
    if ! sink_field "$file" X-Mail-Args | grep -q ' BODY=8BITMIME'; then
        e2e_fail "$name" "MAIL arguments on the wire: $(sink_field "$file" X-Mail-Args)"
    elif ! grep -q 'Grüße aus Köln' "$file"; then
        e2e_fail "$name" "the 8-bit body was changed on the way"
    else
        e2e_pass "$name"
    fi
}

# (f) Milter down: F=T of the documented line makes Sendmail answer 451 4.3.2, and it
# uses the milter again once it is back.
case_f() {
    local name="f milter-down" rcpt="bob-f.$R@remote.example"
    e2e_stop_milter
    if smtp_send 127.0.0.1 "alice-f.$R@ours.example" "$rcpt"; then
        e2e_fail "$name-tempfail" "accepted while the milter was down"
    elif swaks_has '^ *<\*\* 451 4\.3\.2 '; then
        e2e_pass "$name-tempfail"
    else
        e2e_fail "$name-tempfail" "no 451 4.3.2 reply: $(swaks_tail)"
    fi
    if ! e2e_start_milter || ! socketmap_up; then
        e2e_fail "$name-restart" "the milter did not come back"
        return
    fi
    if ! smtp_send 127.0.0.1 "alice-f.$R@ours.example" "$rcpt"; then
        e2e_fail "$name-retry" "retry failed: $(swaks_tail)"
        return
    fi
    check_prvs_sender "$name-retry" "$rcpt" "alice-f.$R@ours.example"
    if [ "$(sink_count "<$rcpt>")" -eq 1 ]; then
        e2e_pass "$name-exactly-once"
    else
        e2e_fail "$name-exactly-once" "$(sink_count "<$rcpt>") deliveries to <$rcpt> (want 1)"
    fi
}

# (n) kill -9 under load, nothing lost: SENDMAIL_LOAD (1000) messages over 4
# connections, nine in ten outbound from 127.0.0.1 by a local sender to remote
# recipients, one in ten a bounce from 127.0.0.2 with the null sender to a BATV tag of
# the local user. The milter, and with it the socket map, is killed with SIGKILL after
# about 300 are accepted and started again: F=T makes Sendmail answer 451 meanwhile,
# and the client (faults_smtp.py) tries again like an MTA. After the queue drains,
# every message arrived exactly once, each outbound one with a signed sender that
# verifies to the local sender. The bounces go to tags of user+detail addresses, as in
# the Postfix twin (e2e_write_load_plan). SENDMAIL_LOAD_KILL=0 leaves the milter dead
# after the kill (this is how the case is shown to be able to fail).
LOAD=${SENDMAIL_LOAD:-1000}

# check_load PLAN: tests/e2e/load_check.py on this run (the distinct outbound senders
# in $E2E_DIR/load-senders).
check_load() {
    python3 "$HERE/load_check.py" "$1" "$E2E_DIR/sink" "$MAILBOX" "$R" \
        "$E2E_DIR/load-senders" sendmail
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }
secs_since() { awk -v d=$(($(now_ms) - $1)) 'BEGIN { printf "%.1f", d / 1000 }'; }

case_n() {
    local name="n kill-9-under-load" plan=$E2E_DIR/load-plan out=$E2E_DIR/load-out
    local pid started killed_at=-1 dead_for=0 t0 sent_for total result numbers verified
    e2e_write_load_plan "$plan" "$LOAD" "$LOCAL_USER" "$R"
    started=$(now_ms)
    FAULTS_SMTP_PORT=$E2E_SMTP_PORT python3 "$HERE/faults_smtp.py" load "$plan" \
        "$E2E_DIR/load-progress" 180 4 >"$out" 2>&1 9>&- &
    pid=$!
    if wait_until 60 e2e_load_progress_at_least $((LOAD * 3 / 10)); then
        killed_at=$(e2e_load_progress)
        t0=$(now_ms)
        kill -KILL "$E2E_MILTER_PID"
        wait "$E2E_MILTER_PID" 2>/dev/null
        E2E_MILTER_PID=
        sleep 1
        if [ "${SENDMAIL_LOAD_KILL:-1}" = 0 ]; then
            e2e_log "case n: the milter is not started again (deliberate breakage)"
        elif ! e2e_start_milter || ! socketmap_up; then
            e2e_fail "$name-restart" "the milter did not come back"
        fi
        dead_for=$(secs_since "$t0")
    fi
    wait "$pid"
    sent_for=$(secs_since "$started")
    # Deferred deliveries wait for the daemon's next queue run (-q30s).
    if wait_until 90 queue_empty; then
        e2e_pass "$name-queue-drained"
    else
        e2e_fail "$name-queue-drained" "$(compgen -G "$SM_DIR/mqueue/qf*" | wc -l) messages still queued after 90 s"
    fi
    total=$(secs_since "$started")
    result=$(check_load "$plan")
    numbers=$(sed -n 's/^numbers //p' <<<"$result")
    printf '    load: %s\n' "$(tr '\n' ' ' <"$out")"
    printf '    delivered: %s\n' "$numbers"
    printf '    killed at %s accepted, milter back after %s s; sent in %s s, drained in %s s\n' \
        "$killed_at" "$dead_for" "$sent_for" "$total"
    if [ "$killed_at" -lt 0 ] || [ "$killed_at" -ge "$LOAD" ]; then
        e2e_fail "$name-kill-during-load" "the milter was not killed while the load ran"
    else
        e2e_pass "$name-kill-during-load"
    fi
    if grep -q "^accepted=$LOAD\$" "$out" && grep -q '^rejected=0 ' "$out"; then
        e2e_pass "$name-all-accepted"
    else
        e2e_fail "$name-all-accepted" "client: $(tr '\n' ' ' <"$out")"
    fi
    if grep -q '^bad ' <<<"$result" ||
        ! grep -q "delivered-ids=$LOAD missing=0 duplicated=0 " <<<"$result"; then
        e2e_fail "$name-exactly-once-signed" "$(grep '^bad ' <<<"$result" | head -n 5 | tr '\n' ';') $numbers"
    else
        e2e_pass "$name-exactly-once-signed"
    fi
    # Every distinct outbound sender is a tag that verifies to the sender used.
    verified=$("$E2E_CLI" batv verify --keys "$E2E_DIR/batv.keys" <"$E2E_DIR/load-senders" 2>&1 |
        sort -u)
    if [ "$verified" = "x.$R@ours.example" ]; then
        e2e_pass "$name-tags-verify"
    else
        e2e_fail "$name-tags-verify" "outbound senders verify to: $(tr '\n' ' ' <<<"$verified")"
    fi
}

# SENDMAIL_CASES="n" runs only those cases (while working on them).
for c in ${SENDMAIL_CASES:-a b c d e g h i l o m k f n}; do
    "case_$c"
done

e2e_summary
