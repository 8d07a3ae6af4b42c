#!/bin/bash
# Layer 4: backstop-milter behind a real Sendmail 8.17 on loopback.
#
# usage: test_sendmail.sh BACKSTOP_MILTER BACKSTOP_CLI
#
# Sendmail is Debian 12's sendmail-bin, unpacked by scripts/install-oracles into
# /opt/backstop-oracles/sendmail (BACKSTOP_SENDMAIL_DIR): the package conflicts with
# postfix, which stays installed. Its sendmail.cf is built with m4 from a minimal .mc
# and the INPUT_MAIL_FILTER line of conf/sendmail.mc, port changed, so the documented
# line is the one tested. Sendmail listens on a free loopback port and relays all mail
# (ours.example too) to an smtp-sink on another; as in test_postfix.sh, 127.0.0.1 is an
# internal client and 127.0.0.2 an external one.
# Needs root (skipped otherwise); fails when the unpacked Sendmail or m4 is missing.
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
SM_DIR=  # $E2E_DIR/sendmail: .mc, .cf, queue, pid file, -X trace
SM_PID=  # the daemon; also its process group, so its children go with it

# Sendmail's traffic trace (-X) stands in for its syslog in failure reports.
sendmail_log() {
    [ -n "$SM_DIR" ] || return 0
    sed 's/^/    sendmail| /' "$SM_DIR/daemon.out" 2>/dev/null | tail -n 4
    tail -n 8 "$SM_DIR/trace" 2>/dev/null | sed 's/^/    sendmail| /'
}

sendmail_require() {
    local missing=
    [ -x "$SENDMAIL_BIN" ] || missing=" $SENDMAIL_BIN"
    [ -f "$SENDMAIL_CF/m4/cf.m4" ] || missing="$missing $SENDMAIL_CF/m4/cf.m4"
    command -v m4 >/dev/null || missing="$missing m4"
    if [ -n "$missing" ]; then
        # Not a skip: scripts/test installs them for CI, so their absence is a failure.
        echo "e2e: the Sendmail test needs:$missing" >&2
        echo "e2e: apt-get install m4; scripts/install-oracles unpacks Sendmail" >&2
        exit 1
    fi
}

# The INPUT_MAIL_FILTER line of conf/sendmail.mc with this run's milter port.
milter_line() {
    sed -n "s/^\(INPUT_MAIL_FILTER(.*S=inet:\)[0-9]*\(@127\.0\.0\.1,.*\)\$/\1$E2E_MILTER_PORT\2/p" \
        "$MC_SNIPPET"
}

# sendmail_write_mc MILTER_LINE: a minimal relay-only configuration. Everything it reads
# or writes is under $SM_DIR, so it touches neither /etc/mail nor /var/spool.
sendmail_write_mc() {
    # Quoted m4 strings: `...' pairs; $h stays for Sendmail.
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
define(\`ALIAS_FILE', \`')dnl
define(\`QUEUE_DIR', \`$SM_DIR/mqueue')dnl
define(\`confPID_FILE', \`$SM_DIR/sendmail.pid')dnl
define(\`STATUS_FILE', \`$SM_DIR/sendmail.st')dnl
dnl The run directory lies under /tmp: a world-writable directory with the sticky bit.
define(\`confDONT_BLAME_SENDMAIL', \`TrustStickyBit')dnl
define(\`confDONT_PROBE_INTERFACES', \`True')dnl
define(\`confDELIVERY_MODE', \`background')dnl
dnl Everything goes to the smtp-sink; ours.example is relayed for outside clients.
define(\`SMART_HOST', \`esmtp:[127.0.0.1]')dnl
define(\`ESMTP_MAILER_ARGS', \`TCP \$h $E2E_SINK_PORT')dnl
RELAY_DOMAIN(\`ours.example fwd.ours.example')dnl
FEATURE(\`nocanonify')dnl
FEATURE(\`accept_unresolvable_domains')dnl
FEATURE(\`no_default_msa')dnl
DAEMON_OPTIONS(\`Family=inet, Name=MTA, Port=$E2E_SMTP_PORT, Addr=127.0.0.1')dnl
$1
MAILER(\`smtp')dnl
EOF
}

sendmail_build_cf() {
    local line
    line=$(milter_line)
    if [ "$(printf '%s\n' "$line" | grep -c '^INPUT_MAIL_FILTER(')" -ne 1 ]; then
        e2e_log "no single INPUT_MAIL_FILTER line with S=inet:PORT@127.0.0.1 in $MC_SNIPPET"
        return 1
    fi
    sendmail_write_mc "$line"
    m4 -D_CF_DIR_="$SENDMAIL_CF/" "$SENDMAIL_CF/m4/cf.m4" "$SM_DIR/sendmail.mc" \
        >"$SM_DIR/sendmail.cf" || return 1
    grep -q "^X.*S=inet:$E2E_MILTER_PORT@127.0.0.1" "$SM_DIR/sendmail.cf" || {
        e2e_log "sendmail.cf has no milter line for port $E2E_MILTER_PORT"
        return 1
    }
}

sendmail_start() {
    SM_DIR=$E2E_DIR/sendmail
    mkdir -p "$SM_DIR/mqueue"
    chmod 700 "$SM_DIR/mqueue"
    printf 'hosts files\naliases files\n' >"$SM_DIR/service.switch"
    printf '127.0.0.1 localhost %s mta\n' "$MTA_NAME" >"$SM_DIR/hosts"
    sendmail_build_cf || return 1
    local cmd=("$SENDMAIL_BIN" -C "$SM_DIR/sendmail.cf" -bD -q30s -X "$SM_DIR/trace") wait=20
    # Sendmail qualifies the host name before it reads sendmail.cf and sleeps 60 s when
    # it cannot (a dotless name without a dotted alias in /etc/hosts, as on most test
    # machines). In a UTS namespace of its own it gets a dotted name instead.
    # setsid: the daemon leads a process group, so that cleanup ends its children too.
    if unshare --uts true 2>/dev/null; then
        # shellcheck disable=SC2016  # expanded by the inner sh
        setsid unshare --uts sh -c 'hostname "$0" && exec "$@"' "$MTA_NAME" "${cmd[@]}" \
            >"$SM_DIR/daemon.out" 2>&1 9>&- &
    else
        e2e_log "note: unshare --uts refused: Sendmail may sleep 60 s to qualify $(hostname)"
        setsid "${cmd[@]}" >"$SM_DIR/daemon.out" 2>&1 9>&- &
        wait=90
    fi
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
}

if [ $# -ne 2 ]; then
    echo "usage: $0 BACKSTOP_MILTER BACKSTOP_CLI" >&2
    exit 2
fi
e2e_require swaks smtp-sink python3 unshare setsid
sendmail_require
E2E_MTA_STOP=sendmail_stop
E2E_MTA_LOG=sendmail_log
E2E_SMTP_PORT=$(free_port)
E2E_SINK_PORT=$(free_port)
if ! e2e_start_common "$1" "$2" || ! sendmail_start; then
    e2e_fail setup "could not start smtp-sink, backstop-milter or Sendmail"
    e2e_summary
    exit 1
fi

R=$E2E_RUN

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

# (c) A bounce from outside to an unsigned local address is refused at RCPT.
case_c() {
    check_unsigned_bounce_refused "c unsigned-bounce" "alice-c.$R@ours.example"
}

# (d) A bounce to a valid BATV tag is delivered to the plain mailbox only: Sendmail
# applies the milter's DELRCPT and ADDRCPT, and keeps the null sender.
case_d() {
    local name="d bounce-to-tag" user="alice-d.$R@ours.example" tag file rcpts
    tag=$("$E2E_CLI" batv sign --keys "$E2E_DIR/batv.keys" "$user")
    if ! smtp_send 127.0.0.2 "" "$tag"; then
        e2e_fail "$name" "swaks failed: $(swaks_tail)"
    elif ! wait_for_sink "$E2E_DELIVERY" "<$user>"; then
        e2e_fail "$name" "nothing delivered to <$user> (sent to <$tag>)"
    else
        file=$(sink_file_for "<$user>")
        rcpts=$(sink_field "$file" X-Rcpt-Args | angle_addr | tr '\n' ' ')
        if [ "$rcpts" != "$user " ]; then
            e2e_fail "$name" "recipients on the wire: $rcpts(want only $user)"
        elif [ "$(sink_field "$file" X-Mail-Args | angle_addr)" != "" ]; then
            e2e_fail "$name" "the bounce lost its null sender: $(sink_field "$file" X-Mail-Args)"
        else
            e2e_pass "$name"
        fi
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
    if ! e2e_start_milter; then
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

case_a
case_c
case_d
case_k
case_f

e2e_summary
