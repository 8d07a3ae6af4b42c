#!/bin/bash
# Layer 4: backstop on a filtering gateway in front of a customer's mail server.
#
# usage: test_gateway.sh BACKSTOP_MILTER BACKSTOP_CLI
#
# The Postfix MX of lib.sh (e2e_setup: conf/postfix-main.cf as shipped, the milter
# and the socketmap maps, outside clients on 127.0.0.2 outside mynetworks), plus the
# lines of conf/postfix-gateway.cf as shipped: relay_domains = customer.example,
# internal_mail_filter_classes = bounce, and transport_maps, pointed here at the
# run's own table that sends customer.example to the customer's server: a small
# aiosmtpd server on loopback (customer_smtp.py) that refuses nobody@ with 550 5.1.1,
# soft@ with 452 4.2.2 and policy@ with 550 5.7.1, and keeps the rest. The milter
# has [domains] relay = customer.example and [inbound] refuse-unknown-after = 1.
# Everything else (carol@foreign.example, the bounces) is relayed to the smtp-sink.
# Prints PASS/FAIL per case and "e2e: N passed, M failed"; exits non-zero on a failure.
set -u
. "$(dirname "$(readlink -f "$0")")/lib.sh"

if ! perl -MMail::SRS -e1 2>/dev/null; then
    echo "e2e: Mail::SRS is missing: scripts/install-oracles installs it" >&2
    exit 1
fi
if ! /usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null; then
    echo "e2e: python3-aiosmtpd is missing: scripts/test installs it" >&2
    exit 1
fi

R=$E2E_RUN
CUSTOMER_PORT=$(free_port)
CAROL=carol.$R@foreign.example

# After the gateway lines, before postfix start: the transport table and the server.
gateway_postfix() {
    mkdir -p "$E2E_DIR/customer"
    printf 'customer.example smtp:[127.0.0.1]:%s\n' "$CUSTOMER_PORT" >"$E2E_DIR/transport"
    postmap "hash:$E2E_DIR/transport" || return 1
    postconf -e "transport_maps = hash:$E2E_DIR/transport" || return 1
    /usr/bin/python3 "$E2E_HERE/customer_smtp.py" "$CUSTOMER_PORT" "$E2E_DIR/customer" \
        >"$E2E_DIR/customer.log" 2>&1 9>&- &
    E2E_HELPER_PIDS+=($!)
    wait_until 10 port_open 127.0.0.1 "$CUSTOMER_PORT"
}
E2E_MAIN_CF_EXTRA=$E2E_HERE/../../conf/postfix-gateway.cf
E2E_POSTFIX_HOOK=gateway_postfix
E2E_RELAY_DOMAINS=customer.example
E2E_INBOUND_EXTRA="refuse-unknown-after = 1"
e2e_setup_or_exit "$@"

# customer_file_for STRING: the customer server's file that contains STRING.
customer_file_for() { grep -lF -- "$1" "$E2E_DIR"/customer/msg.* 2>/dev/null | head -n 1; }
customer_has() { [ -n "$(customer_file_for "$1")" ]; }
bounces_list() { "$E2E_CLI" bounces list --config "$E2E_DIR/milter.conf" 2>&1; }
# Delivery attempts to the customer's server for one address, in the Postfix log.
customer_attempts() { e2e_maillog | grep -c "to=<$1>, relay=127.0.0.1\[127.0.0.1\]:$CUSTOMER_PORT"; }

# send_carol NAME TOKEN RCPT: carol's message to RCPT, from outside, accepted; a
# failure is reported as NAME's.
send_carol() {
    send_marked "$2" 127.0.0.2 "$CAROL" "$3" && return
    e2e_fail "$1" "swaks failed: $(swaks_rcpt_reply) $(swaks_tail)"
    return 1
}

# send_finished NAME TOKEN RCPT: send_carol, and Postfix done with the message and
# with the bounce it made.
send_finished() {
    local qid
    send_carol "$@" || return 1
    qid=$(swaks_queue_id)
    if ! wait_done "$qid"; then
        e2e_fail "$1" "Postfix did not finish $qid and its bounce within ${E2E_DELIVERY}s"
        return 1
    fi
}

# (a) Foreign sender to a customer: the customer's server sees an SRS0 sender at the
# SRS domain that Mail::SRS reverses to the original.
case_srs() {
    local name="a relay-srs0" file sender
    send_carol "$name" a alice@customer.example || return
    if ! wait_until "$E2E_DELIVERY" customer_has "backstop e2e $R a"; then
        e2e_fail "$name" "nothing reached the customer's server within ${E2E_DELIVERY}s"
        return
    fi
    file=$(customer_file_for "backstop e2e $R a")
    sender=$(sed -n 's/^MAIL FROM:<\(.*\)>$/\1/p' "$file")
    if ! [[ $sender =~ ^SRS0=[^=]{4}=[A-Z2-7]{2}=foreign\.example=carol\.$R@fwd\.ours\.example$ ]]; then
        e2e_fail "$name" "sender at the customer's server is <$sender>"
    elif [ "$(mailsrs_reverse "$sender")" != "$CAROL" ]; then
        e2e_fail "$name" "Mail::SRS reverses <$sender> to '$(mailsrs_reverse "$sender")'"
    elif ! grep -q "from=<$CAROL> new-from=<$sender>.*srs=srs0" "$E2E_DIR/milter.log"; then
        e2e_fail "$name" "the milter did not log the same SRS0 sender: $(grep -F "$CAROL" "$E2E_DIR/milter.log" | tail -n 2)"
    else
        e2e_pass "$name"
    fi
}

# (b) The customer's server refuses nobody@: Postfix's own bounce goes back to the SRS
# address, reaches carol (reversed by the map), and the milter records the hard bounce.
case_learn() {
    local name="b bounce-recorded" file
    send_finished "$name" b nobody@customer.example || return
    if ! wait_for_sink "$E2E_DELIVERY" "backstop e2e $R b"; then
        e2e_fail "$name" "the bounce did not reach the sink"
        return
    fi
    file=$(sink_file_for "backstop e2e $R b")
    if [ "$(sink_field "$file" X-Rcpt-Args | angle_addr)" != "$CAROL" ] ||
        [ -n "$(sink_field "$file" X-Mail-Args | angle_addr)" ]; then
        e2e_fail "$name" "the bounce went from <$(sink_field "$file" X-Mail-Args | angle_addr)> to <$(sink_field "$file" X-Rcpt-Args | angle_addr)>, want <> to <$CAROL>"
    elif ! grep -q "^From: Mail Delivery System <MAILER-DAEMON@" "$file"; then
        e2e_fail "$name" "what reached carol is not Postfix's bounce"
    elif ! bounces_list | grep -q "^nobody@customer.example	1	5.1.1	"; then
        e2e_fail "$name" "backstop bounces list: $(bounces_list | tr '\n' ' ')"
    elif ! grep -q "client=local from=<> .*reason=bounce" "$E2E_DIR/milter.log"; then
        e2e_fail "$name" "no inbound bounce line for Postfix's own bounce in the milter log"
    else
        e2e_pass "$name"
    fi
}

# (c) The next mail to nobody@ is refused at RCPT and never reaches the customer's
# server; after `backstop bounces forget` it is accepted again.
case_refuse() {
    local name="c refused-at-rcpt" before reply
    before=$(customer_attempts nobody@customer.example)
    send_marked c 127.0.0.2 "$CAROL" nobody@customer.example
    reply=$(swaks_rcpt_reply)
    if [[ $reply != *"550 5.1.1 <nobody@customer.example>: this address was reported as non-existent by its own mail server"* ]]; then
        e2e_fail "$name" "RCPT reply: $reply"
    elif ! grep -q "rcpt=<nobody@customer.example> verdict=reject check=unknown-recipient" "$E2E_DIR/milter.log"; then
        e2e_fail "$name" "no check=unknown-recipient line in the milter log"
    elif [ "$(customer_attempts nobody@customer.example)" != "$before" ]; then
        e2e_fail "$name" "Postfix tried the customer's server again"
    else
        e2e_pass "$name"
    fi

    name="c forget-lifts"
    if ! "$E2E_CLI" bounces forget --config "$E2E_DIR/milter.conf" nobody@customer.example >/dev/null; then
        e2e_fail "$name" "backstop bounces forget failed"
        return
    fi
    send_marked c2 127.0.0.2 "$CAROL" nobody@customer.example
    reply=$(swaks_rcpt_reply)
    if [[ $reply == *"<-"*" 250 "* ]]; then
        e2e_pass "$name"
    else
        e2e_fail "$name" "RCPT reply after forget: $reply"
    fi
}

# (d) Soft refusals (452; 550 5.7.1 for policy) record nothing that refuses.
case_soft() {
    local name="d soft-not-recorded" reply rcpt
    send_finished "$name" d policy@customer.example || return
    send_carol "$name" d2 soft@customer.example || return
    # The 452 defers: wait for Postfix's attempt, not for a bounce that never comes.
    if ! wait_until "$E2E_DELIVERY" eval '[ "$(customer_attempts soft@customer.example)" -ge 1 ]'; then
        e2e_fail "$name" "Postfix did not try soft@ at the customer's server"
        return
    fi
    if ! wait_for_sink "$E2E_DELIVERY" "backstop e2e $R d"; then
        e2e_fail "$name" "the policy refusal's bounce did not reach the sink"
        return
    fi
    if bounces_list | grep -Eq '^(policy|soft)@customer\.example'; then
        e2e_fail "$name" "recorded: $(bounces_list | tr '\n' ' ')"
        return
    fi
    for rcpt in policy@customer.example soft@customer.example; do
        send_marked d3 127.0.0.2 "$CAROL" "$rcpt"
        reply=$(swaks_rcpt_reply)
        if [[ $reply != *"<-"*" 250 "* ]]; then
            e2e_fail "$name" "RCPT to $rcpt: $reply"
            return
        fi
    done
    e2e_pass "$name"
}

case_srs
case_learn
case_refuse
case_soft
e2e_summary
