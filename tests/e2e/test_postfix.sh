#!/bin/bash
# Layer 4: backstop-milter behind a real Postfix on loopback (DESIGN §8).
#
# usage: test_postfix.sh BACKSTOP_MILTER BACKSTOP_CLI
#
# Postfix listens on 127.0.0.1:25 and relays everything (ours.example included) to an
# smtp-sink on 127.0.0.1:2526, whose dumps show the envelope after the milter:
# "X-Mail-Args: <sender> ..." and "X-Rcpt-Args: <rcpt> ...". Clients from
# 127.0.0.1 are internal (outbound), clients bound to 127.0.0.2 are external (inbound).
# Needs root; stops Postfix and restores main.cf/master.cf at the end.
# Prints PASS/FAIL per case and "e2e: N passed, M failed"; exits non-zero on a failure.
set -u
. "$(dirname "$(readlink -f "$0")")/lib.sh"

e2e_setup_or_exit "$@"

R=$E2E_RUN
DELIVERY=$E2E_DELIVERY

# (a) A local sender from an internal client leaves with a BATV-signed sender.
case_a() {
    check_sent_signed "a outbound-batv" "alice-a.$R@ours.example" "bob-a.$R@remote.example" \
        "alice-a.$R@ours.example"
}

# (a2) The same with a trailing dot after the domain, which Postfix accepts and queues
# without the dot: the sender on the wire is signed for the plain address.
case_a2() {
    check_sent_signed "a2 outbound-batv-trailing-dot" "alice-a2.$R@ours.example." \
        "bob-a2.$R@remote.example" "alice-a2.$R@ours.example"
}

# (b) A foreign sender forwarded to a foreign recipient leaves with an SRS0 sender.
case_b() {
    local name="b forward-srs0" rcpt="dave-b.$R@elsewhere.example" file sender reversed
    if ! smtp_send 127.0.0.1 "carol-b.$R@foreign.example" "$rcpt"; then
        e2e_fail "$name" "swaks failed: $(swaks_tail)"
        return
    fi
    if ! wait_for_sink "$DELIVERY" "<$rcpt>"; then
        e2e_fail "$name" "no delivery to $rcpt"
        return
    fi
    file=$(sink_file_for "<$rcpt>")
    sender=$(sink_field "$file" X-Mail-Args | angle_addr)
    if ! [[ $sender =~ ^SRS0=[^=]{4}=[A-Z2-7]{2}=foreign\.example=carol-b\.$R@fwd\.ours\.example$ ]]; then
        e2e_fail "$name" "sender on the wire is <$sender>, expected SRS0=HHHH=TT=foreign.example=carol-b.$R@fwd.ours.example"
        return
    fi
    reversed=$("$E2E_CLI" srs reverse --secrets "$E2E_DIR/srs.secrets" "$sender" 2>&1)
    if [ "$reversed" != "carol-b.$R@foreign.example" ]; then
        e2e_fail "$name" "<$sender> reverses to '$reversed'"
        return
    fi
    e2e_pass "$name"
}

# (c) A bounce from outside to an unsigned local address is refused at RCPT.
case_c() {
    check_unsigned_bounce_refused "c unsigned-bounce" "alice-c.$R@ours.example"
}

# (d) A bounce to a valid BATV tag, and to a valid SRS address, reaches the real address.
case_d() {
    local user="alice-d.$R@ours.example" tag file
    tag=$("$E2E_CLI" batv sign --keys "$E2E_DIR/batv.keys" "$user")
    if ! smtp_send 127.0.0.2 "" "$tag"; then
        e2e_fail "d bounce-to-tag" "swaks failed: $(swaks_tail)"
    elif ! wait_for_sink "$DELIVERY" "<$user>"; then
        e2e_fail "d bounce-to-tag" "nothing delivered to <$user> (sent to <$tag>)"
    else
        file=$(sink_file_for "<$user>")
        if sink_field "$file" X-Rcpt-Args | angle_addr | grep -q 'prvs='; then
            e2e_fail "d bounce-to-tag" "the tagged recipient was delivered too: $(grep X-Rcpt-Args "$file")"
        elif [ "$(sink_field "$file" X-Mail-Args | angle_addr)" != "" ]; then
            e2e_fail "d bounce-to-tag" "the bounce lost its null sender: $(sink_field "$file" X-Mail-Args)"
        else
            e2e_pass "d bounce-to-tag"
        fi
    fi

    local orig="carol-d.$R@foreign.example" srs
    srs=$("$E2E_CLI" srs forward --secrets "$E2E_DIR/srs.secrets" --srs-domain fwd.ours.example "$orig")
    if ! smtp_send 127.0.0.2 "" "$srs"; then
        e2e_fail "d bounce-to-srs" "swaks failed: $(swaks_tail)"
    elif ! wait_for_sink "$DELIVERY" "<$orig>"; then
        e2e_fail "d bounce-to-srs" "nothing delivered to <$orig> (sent to <$srs>)"
    elif sink_field "$(sink_file_for "<$orig>")" X-Rcpt-Args | angle_addr | grep -q 'SRS0='; then
        e2e_fail "d bounce-to-srs" "the SRS recipient was delivered too"
    else
        e2e_pass "d bounce-to-srs"
    fi
}

# (k) A hard bounce (RFC 3464, 5.1.1) of our mail to a valid tag is recorded in the
# state store, and `backstop bounces show` reads it there.
dsn_delivered() {
    local file
    file=$(sink_file_for "X-Rcpt-Args: <$1>")
    [ -n "$file" ] && grep -qF -- "--B-$R--" "$file"
}
case_k() {
    local user="alice-k.$R@ours.example" gone="gone-k.$R@remote.example" tag line
    tag=$("$E2E_CLI" batv sign --keys "$E2E_DIR/batv.keys" "$user")
    cat >"$E2E_DIR/dsn.eml" <<EOF
From: Mail Delivery System <MAILER-DAEMON@mx.remote.example>
To: <$tag>
Subject: Undelivered Mail Returned to Sender ($R)
Message-ID: <dsn-k.$R@mx.remote.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B-$R"

--B-$R
Content-Type: text/plain

Your message could not be delivered to <$gone>: user unknown.

--B-$R
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.remote.example

Final-Recipient: rfc822; $gone
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <$gone>: Recipient address rejected: User unknown

--B-$R
Content-Type: text/rfc822-headers

From: <$user>
To: <$gone>
Subject: hello
Message-ID: <orig-k.$R@ours.example>

--B-$R--
EOF
    SWAKS_ARGS=(--data "$E2E_DIR/dsn.eml")
    smtp_send 127.0.0.2 "" "$tag"
    local rc=$?
    SWAKS_ARGS=()
    if [ $rc -ne 0 ]; then
        e2e_fail "k hard-bounce-recorded" "swaks failed: $(swaks_tail)"
    elif ! wait_until "$DELIVERY" dsn_delivered "$user"; then
        e2e_fail "k hard-bounce-recorded" "the bounce was not delivered to <$user>"
    else
        line=$("$E2E_CLI" bounces show --state "sqlite:$E2E_DIR/state.db" "$gone" 2>&1)
        if [[ $line == "$gone"$'\t1\t5.1.1\tuserunknown\t'* ]] &&
            "$E2E_CLI" bounces list --config "$E2E_DIR/milter.conf" | grep -qF "$gone"; then
            e2e_pass "k hard-bounce-recorded"
        else
            e2e_fail "k hard-bounce-recorded" "bounces show said: $line"
        fi
    fi
}

# (e) Expired and forged tags are refused at RCPT.
case_e() {
    local user="alice-e.$R@ours.example" expired good forged
    expired=$("$E2E_CLI" batv sign --keys "$E2E_DIR/batv.keys" --time $(($(date +%s) - 30 * 86400)) "$user")
    if smtp_send 127.0.0.2 "" "$expired"; then
        e2e_fail "e expired-tag" "accepted <$expired>"
    else
        expect_rcpt_reply "e expired-tag" '^ *<\*\* 550 5\.7\.1 '
    fi
    good=$("$E2E_CLI" batv sign --keys "$E2E_DIR/batv.keys" "$user")
    # Change the last signature digit: prvs=KDDDSSSSS?=user
    local sig=${good:5:10} last=${good:14:1}
    [ "$last" = 0 ] && last=1 || last=0
    forged="prvs=${sig:0:9}$last=$user"
    if smtp_send 127.0.0.2 "" "$forged"; then
        e2e_fail "e forged-tag" "accepted <$forged>"
    else
        expect_rcpt_reply "e forged-tag" '^ *<\*\* 550 5\.7\.1 '
    fi
}

# (g) sendmail(1) submissions go through non_smtpd_milters and are signed too.
case_g() {
    local rcpt="bob-g.$R@remote.example"
    if ! local_send "alice-g.$R@ours.example" "$rcpt"; then
        e2e_fail "g sendmail-signed" "sendmail failed"
        return
    fi
    check_prvs_sender "g sendmail-signed" "$rcpt" "alice-g.$R@ours.example"
}

# (i) A forged X-Backstop-Result header from outside does not reach the mailbox.
case_i() {
    local name="i forged-header-removed" rcpt="alice-i.$R@ours.example" file
    SWAKS_ARGS=(--add-header "X-Backstop-Result: pass (forged $R)")
    smtp_send 127.0.0.2 "someone-i.$R@remote.example" "$rcpt"
    local rc=$?
    SWAKS_ARGS=()
    if [ $rc -ne 0 ]; then
        e2e_fail "$name" "swaks failed: $(swaks_tail)"
    elif ! wait_for_sink "$DELIVERY" "<$rcpt>"; then
        e2e_fail "$name" "no delivery to $rcpt"
    else
        file=$(sink_file_for "<$rcpt>")
        if grep -qi "^X-Backstop-Result: pass (forged" "$file"; then
            e2e_fail "$name" "the forged header was delivered"
        else
            e2e_pass "$name"
        fi
    fi
}

# (h) SIGUSR1 with a broken config: logged, and the old config keeps serving.
case_h() {
    local name="h reload-broken-config"
    cp "$E2E_DIR/milter.conf" "$E2E_DIR/milter.conf.good"
    e2e_write_config sometimes # not an action: the new config must be refused
    local before
    before=$(stat -c %s "$E2E_DIR/milter.log")
    kill -USR1 "$E2E_MILTER_PID"
    # Only what the milter logged after the signal counts.
    new_log_names_key() { tail -c +$((before + 1)) "$E2E_DIR/milter.log" | grep -q unsigned-bounce; }
    if ! wait_until 10 new_log_names_key; then
        e2e_fail "$name-logged" "no log line naming unsigned-bounce after SIGUSR1"
    fi
    if ! kill -0 "$E2E_MILTER_PID" 2>/dev/null; then
        e2e_fail "$name" "the milter exited on SIGUSR1"
        E2E_MILTER_PID=
        cp "$E2E_DIR/milter.conf.good" "$E2E_DIR/milter.conf"
        e2e_start_milter
        return
    fi
    local rcpt="bob-h.$R@remote.example"
    if ! smtp_send 127.0.0.1 "alice-h.$R@ours.example" "$rcpt"; then
        e2e_fail "$name" "swaks failed after reload: $(swaks_tail)"
    else
        check_prvs_sender "$name" "$rcpt" "alice-h.$R@ours.example"
    fi
    if smtp_send 127.0.0.2 "" "alice-h.$R@ours.example"; then
        e2e_fail "$name-still-rejects" "bounce accepted after the broken reload"
    else
        expect_rcpt_reply "$name-still-rejects" '^ *<\*\* 550 5\.7\.1 '
    fi
    cp "$E2E_DIR/milter.conf.good" "$E2E_DIR/milter.conf"
    kill -USR1 "$E2E_MILTER_PID"
}

# bounce_until_reply REGEX RCPT: sends a bounce from outside to RCPT until the RCPT
# reply matches (a reload is asynchronous); false after 10 s.
bounce_until_reply() {
    bounce_reply_matches() {
        smtp_send 127.0.0.2 "" "$2"
        [[ $(swaks_rcpt_reply) =~ $1 ]]
    }
    wait_until 10 bounce_reply_matches "$1" "$2"
}

# (j) SIGUSR1 with a good config takes effect: action tempfail gives 451 through
# Postfix, action tag delivers the bounce with an X-Backstop-Result header.
case_j() {
    local rcpt="alice-j.$R@ours.example" file
    e2e_write_config tempfail
    kill -USR1 "$E2E_MILTER_PID"
    if bounce_until_reply '^ *<\*\* 451 4\.7\.1 ' "$rcpt"; then
        e2e_pass "j reload-tempfail-451"
    else
        e2e_fail "j reload-tempfail-451" "RCPT reply '$(swaks_rcpt_reply)', expected 451 4.7.1"
    fi

    e2e_write_config tag
    kill -USR1 "$E2E_MILTER_PID"
    if ! bounce_until_reply '^ *<- +250 ' "$rcpt"; then
        e2e_fail "j reload-tag-header" "bounce not accepted with action tag: $(swaks_rcpt_reply)"
    elif ! wait_for_sink "$DELIVERY" "<$rcpt>"; then
        e2e_fail "j reload-tag-header" "the tagged bounce was not delivered"
    else
        file=$(sink_file_for "<$rcpt>")
        if grep -q '^X-Backstop-Result: .' "$file"; then
            e2e_pass "j reload-tag-header"
        else
            e2e_fail "j reload-tag-header" "no X-Backstop-Result header in the delivered bounce"
        fi
    fi

    e2e_write_config reject
    kill -USR1 "$E2E_MILTER_PID"
    if bounce_until_reply '^ *<\*\* 550 5\.7\.1 ' "other-j.$R@ours.example"; then
        e2e_pass "j reload-back-to-reject"
    else
        e2e_fail "j reload-back-to-reject" "RCPT reply '$(swaks_rcpt_reply)'"
    fi
}

# (f) Milter down: Postfix tempfails (milter_default_action=tempfail), nothing is
# lost, and after a restart the mail is delivered exactly once.
case_f() {
    local name="f milter-down" rcpt="bob-f.$R@remote.example" lrcpt="bob-f2.$R@remote.example"
    e2e_stop_milter
    if smtp_send 127.0.0.1 "alice-f.$R@ours.example" "$rcpt"; then
        e2e_fail "$name-tempfail" "accepted while the milter was down"
    elif swaks_has '^ *<\*\* 4[0-9][0-9] '; then
        e2e_pass "$name-tempfail"
    else
        e2e_fail "$name-tempfail" "no 4xx reply: $(swaks_tail)"
    fi
    # A local submission while the milter is down must wait in the queue.
    local_send "alice-f2.$R@ours.example" "$lrcpt" ||
        e2e_fail "$name-queued" "sendmail failed while the milter was down"

    if ! e2e_start_milter; then
        e2e_fail "$name-restart" "the milter did not come back"
        return
    fi
    # The SMTP client retries; the queued submission is retried by Postfix.
    if ! smtp_send 127.0.0.1 "alice-f.$R@ours.example" "$rcpt"; then
        e2e_fail "$name-retry" "retry failed: $(swaks_tail)"
    else
        check_prvs_sender "$name-retry" "$rcpt" "alice-f.$R@ours.example"
    fi
    postqueue -f >/dev/null 2>&1
    postkick public pickup W >/dev/null 2>&1 # wake pickup for the maildrop
    check_prvs_sender "$name-queued-delivered" "$lrcpt" "alice-f2.$R@ours.example"
    # Exactly once: give a duplicate the chance to show up, then count.
    postqueue -f >/dev/null 2>&1
    wait_until 3 false
    local n1 n2
    n1=$(sink_count "<$rcpt>")
    n2=$(sink_count "<$lrcpt>")
    if [ "$n1" -eq 1 ] && [ "$n2" -eq 1 ]; then
        e2e_pass "$name-exactly-once"
    else
        e2e_fail "$name-exactly-once" "deliveries: smtp $n1, sendmail $n2 (want 1 and 1)"
    fi
}

case_a
case_a2
case_b
case_c
case_d
case_k
case_e
case_g
case_i
case_h
case_j
case_f

e2e_summary
