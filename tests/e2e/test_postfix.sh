#!/bin/bash
# Layer 4: backstop-milter behind a real Postfix set up as an MX that also forwards.
#
# usage: test_postfix.sh BACKSTOP_MILTER BACKSTOP_CLI
#
# Postfix (lib.sh, e2e_setup) listens on 127.0.0.1:25 with the backstop lines of
# conf/postfix-main.cf as shipped: the milter on 127.0.0.1:8891, the socketmaps
# forward and reverse in its queue directory. ours.example and the SRS domain
# fwd.ours.example are local (real users bsalice, bsbob, bscarol, mail in
# /var/mail/USER, recipient validation on), virt.ours.example is a virtual-mailbox
# domain (bsvera), bsfwd@ours.example is an alias for dave@remote.example, and every
# other domain is relayed to an smtp-sink on 127.0.0.1:2526, whose dumps show the
# envelope on the wire: "X-Mail-Args: <sender> ..." and "X-Rcpt-Args: <rcpt> ...".
# 127.0.0.1 is mynetworks and internal-networks (outbound); clients bound to
# 127.0.0.2 are the outside world, or SMTP AUTH users.
# "Exactly once" is counted after Postfix has logged every queue file of the message
# (and of the copies it forwarded or the bounce it made) as removed.
# The last case applies the master.cf alternative that conf/postfix-main.cf gives in a
# comment (original Return-Path in local mailboxes) and checks it.
# Needs root; restores Postfix's files at the end and removes the run's messages
# from the test users' mailboxes.
# Prints PASS/FAIL per case and "e2e: N passed, M failed"; exits non-zero on a failure.
set -u
. "$(dirname "$(readlink -f "$0")")/lib.sh"

# Mail::SRS (libmail-srs-perl, from scripts/install-oracles) checks the SRS of forwarded
# mail: missing, the test fails rather than skips, as CI installs it.
if ! perl -MMail::SRS -e1 2>/dev/null; then
    echo "e2e: Mail::SRS is missing: scripts/install-oracles installs it" >&2
    exit 1
fi
e2e_setup_or_exit "$@"

R=$E2E_RUN
DELIVERY=$E2E_DELIVERY
KEYS=$E2E_DIR/batv.keys
SECRETS=$E2E_DIR/srs.secrets
ALICE=bsalice@ours.example
VMAILBOX=$E2E_DIR/vmail/virt.ours.example/bsvera

tag_of() { "$E2E_CLI" batv sign --keys "$KEYS" "$1"; }
srs_of() { "$E2E_CLI" srs forward --secrets "$SECRETS" --srs-domain fwd.ours.example "$1"; }

# check_once NAME MBOX TOKEN: after the last smtp_send is done with, exactly one
# message marked TOKEN is in MBOX. Prints nothing and returns 0 on success.
check_once() {
    local name=$1 mbox=$2 token=$3 n
    if ! wait_done "$(swaks_queue_id)"; then
        e2e_fail "$name" "Postfix did not finish the message (queue ID '$(swaks_queue_id)') within ${DELIVERY}s"
        return 1
    fi
    n=$(mbox_count "$mbox" "backstop e2e $R $token")
    if [ "$n" -ne 1 ]; then
        e2e_fail "$name" "$n messages marked '$token' in $mbox (want exactly 1)"
        return 1
    fi
}

# check_refused NAME REGEX: the last smtp_send failed, with a RCPT reply matching REGEX.
check_refused() {
    if ! swaks_has '^ *-> RCPT TO'; then
        e2e_fail "$1" "no RCPT was sent: $(swaks_tail)"
    elif swaks_has '^ *<- +250 .*queued as'; then
        e2e_fail "$1" "accepted: $(swaks_rcpt_reply)"
    else
        expect_rcpt_reply "$1" "$2"
    fi
}

# The replies a refused bounce gets: Postfix's recipient validation for an address the
# reverse map does not know, the milter's for an unsigned address of a real user.
USER_UNKNOWN='^ *<\*\* 550 5\.1\.1 <[^>]*>: Recipient address rejected: User unknown in (local recipient|virtual mailbox) table$'
MILTER_REFUSED='^ *<\*\* 550 5\.7\.1 '

# --- Outbound ---------------------------------------------------------------------------

# (a) A local sender from mynetworks (and internal-networks) leaves BATV-signed.
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

# (a3) An SMTP AUTH client from outside (127.0.0.2) may relay, and its mail leaves
# signed; without AUTH the same client may not relay.
case_a3() {
    local name="a3 outbound-auth" rcpt="bob-a3.$R@remote.example"
    SWAKS_ARGS=(--auth PLAIN --auth-user "$E2E_SASL_USER" --auth-password "$E2E_SASL_PASSWORD")
    smtp_send 127.0.0.2 "$ALICE" "$rcpt"
    local rc=$?
    SWAKS_ARGS=()
    if [ $rc -ne 0 ]; then
        e2e_fail "$name" "swaks failed: $(swaks_tail)"
    elif ! swaks_has '^ *<- +235 '; then
        e2e_fail "$name" "no 235 for AUTH: $(swaks_tail)"
    else
        check_prvs_sender "$name" "$rcpt" "$ALICE"
    fi

    rcpt="bob-a3n.$R@remote.example"
    smtp_send 127.0.0.2 "$ALICE" "$rcpt"
    check_refused "a3 no-auth-no-relay" '^ *<\*\* 554 5\.7\.1 <[^>]*>: Relay access denied$'
}

# (b) A foreign sender relayed by an internal client to a foreign recipient leaves
# with the milter's SRS0 sender.
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
    reversed=$("$E2E_CLI" srs reverse --secrets "$SECRETS" "$sender" 2>&1)
    if [ "$reversed" != "carol-b.$R@foreign.example" ]; then
        e2e_fail "$name" "<$sender> reverses to '$reversed'"
        return
    fi
    e2e_pass "$name"
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

# --- Bounces ----------------------------------------------------------------------------

# (c) A bounce from outside to a real user's unsigned address: the milter's 550 5.7.1.
# To an address that does not exist: Postfix's 550 5.1.1, before the milter.
case_c() {
    send_marked c 127.0.0.2 "" "$ALICE"
    check_refused "c unsigned-bounce" "$MILTER_REFUSED"
    send_marked c 127.0.0.2 "" "nobody-c.$R@ours.example"
    check_refused "c unsigned-bounce-unknown-user" "$USER_UNKNOWN"
    if [ "$(mbox_count "$(mailbox_of bsalice)" "backstop e2e $R c")" -ne 0 ]; then
        e2e_fail "c unsigned-bounce-not-delivered" "a refused bounce reached bsalice's mailbox"
    else
        e2e_pass "c unsigned-bounce-not-delivered"
    fi
}

# (d) A bounce to a valid tag of a real user reaches the mailbox exactly once, with
# its null sender: the reverse map makes Postfix accept the tag, and the rewrite by
# the map and the milter's own rewrite add up to one delivery.
case_d() {
    local name="d bounce-to-tag" mbox msg
    mbox=$(mailbox_of bsalice)
    if ! send_marked d 127.0.0.2 "" "$(tag_of "$ALICE")"; then
        e2e_fail "$name" "swaks failed: $(swaks_rcpt_reply) $(swaks_tail)"
        return
    fi
    check_once "$name" "$mbox" d || return
    msg=$(mbox_message "$mbox" "backstop e2e $R d")
    if ! grep -qx 'Return-Path: <>' <<<"$msg"; then
        e2e_fail "$name" "the bounce lost its null sender: $(grep -m1 '^Return-Path:' <<<"$msg")"
    elif ! grep -qx "Delivered-To: $ALICE" <<<"$msg"; then
        e2e_fail "$name" "delivered as $(grep -m1 '^Delivered-To:' <<<"$msg"), want $ALICE"
    else
        e2e_pass "$name"
    fi
}

# (d2) A bounce to a valid SRS address at fwd.ours.example reaches the original,
# foreign sender through the sink exactly once, with its null sender.
case_d2() {
    local name="d2 bounce-to-srs" orig="carol-d2.$R@foreign.example" file
    if ! smtp_send 127.0.0.2 "" "$(srs_of "$orig")"; then
        e2e_fail "$name" "swaks failed: $(swaks_rcpt_reply) $(swaks_tail)"
        return
    fi
    if ! wait_done "$(swaks_queue_id)"; then
        e2e_fail "$name" "Postfix did not finish the message within ${DELIVERY}s"
        return
    fi
    file=$(sink_file_for "X-Rcpt-Args: <$orig>")
    if [ "$(sink_count "<$orig>")" -ne 1 ]; then
        e2e_fail "$name" "$(sink_count "<$orig>") deliveries to <$orig> (want exactly 1)"
    elif [ "$(sink_field "$file" X-Rcpt-Args | angle_addr)" != "$orig" ]; then
        e2e_fail "$name" "recipients on the wire: $(sink_field "$file" X-Rcpt-Args | tr '\n' ' ')"
    elif [ -n "$(sink_field "$file" X-Mail-Args | angle_addr)" ]; then
        e2e_fail "$name" "the bounce lost its null sender: $(sink_field "$file" X-Mail-Args)"
    else
        e2e_pass "$name"
    fi
}

# (e) Expired and forged tags, and a forged SRS address, are unknown to the reverse
# map: Postfix's recipient validation refuses them with 550 5.1.1, and nothing
# reaches the SRS address's embedded target.
case_e() {
    local expired good forged srs
    expired=$("$E2E_CLI" batv sign --keys "$KEYS" --time $(($(date +%s) - 30 * 86400)) "$ALICE")
    smtp_send 127.0.0.2 "" "$expired"
    check_refused "e expired-tag" "$USER_UNKNOWN"
    good=$(tag_of "$ALICE")
    # Change the last signature digit: prvs=KDDDSSSSS?=user
    local sig=${good:5:10} last=${good:14:1}
    [ "$last" = 0 ] && last=1 || last=0
    forged="prvs=${sig:0:9}$last=$ALICE"
    smtp_send 127.0.0.2 "" "$forged"
    check_refused "e forged-tag" "$USER_UNKNOWN"
    srs=$(srs_of "victim-e.$R@foreign.example")
    # Another hash: SRS hashes compare without case (Postfix lowercases the key too),
    # so the first character becomes one that differs from it in any case.
    srs="SRS0=$([[ ${srs:5:1} == [aA] ]] && echo B || echo A)${srs:6}"
    smtp_send 127.0.0.2 "" "$srs"
    check_refused "e forged-srs" "$USER_UNKNOWN"
    if sink_has "victim-e.$R@foreign.example"; then
        e2e_fail "e forged-srs-not-relayed" "the forged SRS address was relayed"
    else
        e2e_pass "e forged-srs-not-relayed"
    fi
}

# (k) A hard bounce (RFC 3464, 5.1.1) of our mail to a valid tag is delivered, and
# recorded in the state store, where `backstop bounces show` reads it.
case_k() {
    local name="k hard-bounce-recorded" gone="gone-k.$R@remote.example" tag line
    tag=$(tag_of "$ALICE")
    cat >"$E2E_DIR/dsn.eml" <<EOF
From: Mail Delivery System <MAILER-DAEMON@mx.remote.example>
To: <$tag>
Subject: (replaced by send_marked)
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

From: <$ALICE>
To: <$gone>
Subject: hello
Message-ID: <orig-k.$R@ours.example>

--B-$R--
EOF
    SWAKS_ARGS=(--data "$E2E_DIR/dsn.eml")
    if ! send_marked k 127.0.0.2 "" "$tag"; then
        e2e_fail "$name" "swaks failed: $(swaks_tail)"
        return
    fi
    check_once "$name" "$(mailbox_of bsalice)" k || return
    line=$("$E2E_CLI" bounces show --state "sqlite:$E2E_DIR/state.db" "$gone" 2>&1)
    if [[ $line == "$gone"$'\t1\t5.1.1\tuserunknown\t'* ]] &&
        "$E2E_CLI" bounces list --config "$E2E_DIR/milter.conf" | grep -qF "$gone"; then
        e2e_pass "$name"
    else
        e2e_fail "$name" "bounces show said: $line"
    fi
}

# (p) A bounce Postfix makes itself, for a signed local submission it cannot deliver,
# goes to the tagged sender; the reverse map brings it to the mailbox exactly once
# (no milter sees it: internal_mail_filter_classes stays empty).
case_p() {
    local name="p postfix-bounce-to-tag" sender=bsalice+p.$R@ours.example qid
    printf 'Subject: backstop e2e %s p\nFrom: %s\n\nTo nobody.\n' "$R" "$sender" |
        sendmail -f "$sender" "nobody-p.$R@ours.example"
    if ! wait_until "$DELIVERY" pickup_has "$sender"; then
        e2e_fail "$name" "pickup did not take the submission"
        return
    fi
    qid=$(pickup_queue_id "$sender")
    if ! wait_done "$qid"; then
        e2e_fail "$name" "Postfix did not finish $qid and its bounce within ${DELIVERY}s"
        return
    fi
    if ! e2e_maillog | grep -q " $qid: to=<nobody-p.$R@ours.example>.* status=bounced"; then
        e2e_fail "$name" "the submission did not bounce: $(e2e_maillog | grep " $qid: to=" | tail -n 1)"
        return
    fi
    if ! e2e_maillog | grep -qE " $qid: from=<prvs=[0-9]{4}[0-9a-f]{6}=bsalice\+p\.$R@ours\.example>"; then
        e2e_log "    note: the submission was not signed, its bounce went to the plain address"
    fi
    local n
    n=$(mbox_count "$(mailbox_of bsalice)" "nobody-p.$R@ours.example")
    if [ "$n" -eq 1 ]; then
        e2e_pass "$name"
    else
        e2e_fail "$name" "$n bounces for nobody-p.$R in bsalice's mailbox (want exactly 1)"
    fi
}
pickup_has() { [ -n "$(pickup_queue_id "$1")" ]; }

# (v) The virtual-mailbox domain: a bounce to a valid tag of bsvera reaches her
# mailbox exactly once; unsigned, the milter refuses it; forged, Postfix does.
case_v() {
    local name="v virtual-bounce-to-tag" good sig last
    good=$(tag_of "$E2E_VUSER")
    if ! send_marked v 127.0.0.2 "" "$good"; then
        e2e_fail "$name" "swaks failed: $(swaks_rcpt_reply) $(swaks_tail)"
    elif check_once "$name" "$VMAILBOX" v; then
        if mbox_message "$VMAILBOX" "backstop e2e $R v" | grep -qx 'Return-Path: <>'; then
            e2e_pass "$name"
        else
            e2e_fail "$name" "the bounce lost its null sender"
        fi
    fi
    send_marked v-unsigned 127.0.0.2 "" "$E2E_VUSER"
    check_refused "v virtual-unsigned-bounce" "$MILTER_REFUSED"
    sig=${good:5:10} last=${good:14:1}
    [ "$last" = 0 ] && last=1 || last=0
    smtp_send 127.0.0.2 "" "prvs=${sig:0:9}$last=$E2E_VUSER"
    check_refused "v virtual-forged-tag" "$USER_UNKNOWN"
}

# --- Inbound mail and forwarding ---------------------------------------------------------

# (n) Ordinary mail from outside to a local user is delivered exactly once. Its
# Return-Path is the SRS address of its sender: the forward map rewrites every
# foreign sender, as conf/postfix-main.cf says.
case_n() {
    local name="n inbound-delivered" sender="someone-n.$R@remote.example" mbox rp
    mbox=$(mailbox_of bsbob)
    if ! send_marked n 127.0.0.2 "$sender" bsbob@ours.example; then
        e2e_fail "$name" "swaks failed: $(swaks_rcpt_reply) $(swaks_tail)"
        return
    fi
    check_once "$name" "$mbox" n || return
    e2e_pass "$name"
    rp=$(mbox_message "$mbox" "backstop e2e $R n" | sed -n '1s/^Return-Path: <\(.*\)>$/\1/p')
    if [[ $rp == SRS0=* ]] &&
        [ "$("$E2E_CLI" srs reverse --secrets "$SECRETS" "$rp" 2>&1)" = "$sender" ]; then
        e2e_pass "n inbound-return-path-srs"
    else
        e2e_fail "n inbound-return-path-srs" "Return-Path <$rp>, want the SRS0 address of $sender"
    fi
}

# (i) A forged X-Backstop-Result header from outside does not reach the mailbox.
case_i() {
    local name="i forged-header-removed" mbox
    mbox=$(mailbox_of bsbob)
    SWAKS_ARGS=(--add-header "X-Backstop-Result: pass (forged $R)")
    send_marked i 127.0.0.2 "someone-i.$R@remote.example" bsbob@ours.example
    local rc=$?
    if [ $rc -ne 0 ]; then
        e2e_fail "$name" "swaks failed: $(swaks_tail)"
    elif check_once "$name" "$mbox" i; then
        if mbox_message "$mbox" "backstop e2e $R i" | grep -qi "^X-Backstop-Result: pass (forged"; then
            e2e_fail "$name" "the forged header was delivered"
        else
            e2e_pass "$name"
        fi
    fi
}

# (w) Mail from outside to the alias bsfwd leaves for dave@remote.example exactly
# once, with an SRS0 sender that Mail::SRS and `backstop srs reverse` reverse; the
# bounce of it, sent back to that SRS0 address, reaches the original sender once.
case_w() {
    local name="w alias-forward-srs0" orig="carol-w.$R@foreign.example" file sender
    if ! send_marked w 127.0.0.2 "$orig" bsfwd@ours.example; then
        e2e_fail "$name" "swaks failed: $(swaks_rcpt_reply) $(swaks_tail)"
        return
    fi
    if ! wait_done "$(swaks_queue_id)"; then
        e2e_fail "$name" "Postfix did not finish the message and its forwarded copy within ${DELIVERY}s"
        return
    fi
    file=$(sink_file_for "backstop e2e $R w")
    if [ "$(sink_count "backstop e2e $R w")" -ne 1 ]; then
        e2e_fail "$name" "$(sink_count "backstop e2e $R w") copies reached the sink (want exactly 1)"
        return
    fi
    sender=$(sink_field "$file" X-Mail-Args | angle_addr)
    if [ "$(sink_field "$file" X-Rcpt-Args | angle_addr)" != dave@remote.example ]; then
        e2e_fail "$name" "recipients on the wire: $(sink_field "$file" X-Rcpt-Args | tr '\n' ' ')"
    elif ! [[ $sender =~ ^SRS0=[^=]{4}=[A-Z2-7]{2}=foreign\.example=carol-w\.$R@fwd\.ours\.example$ ]]; then
        e2e_fail "$name" "sender on the wire is <$sender>, want SRS0=HHHH=TT=foreign.example=carol-w.$R@fwd.ours.example"
    elif [ "$(mailsrs_reverse "$sender")" != "$orig" ]; then
        e2e_fail "$name" "Mail::SRS reverses <$sender> to '$(mailsrs_reverse "$sender")'"
    elif [ "$("$E2E_CLI" srs reverse --secrets "$SECRETS" "$sender" 2>&1)" != "$orig" ]; then
        e2e_fail "$name" "backstop srs reverse of <$sender>: $("$E2E_CLI" srs reverse --secrets "$SECRETS" "$sender" 2>&1)"
    else
        e2e_pass "$name"
    fi
    [[ $sender == SRS0=* ]] || return

    name="w alias-forward-bounce"
    if ! send_marked w-bounce 127.0.0.2 "" "$sender"; then
        e2e_fail "$name" "bounce to <$sender> refused: $(swaks_rcpt_reply)"
    elif ! wait_done "$(swaks_queue_id)"; then
        e2e_fail "$name" "Postfix did not finish the bounce within ${DELIVERY}s"
    elif [ "$(sink_count "X-Rcpt-Args: <$orig>")" -ne 1 ]; then
        e2e_fail "$name" "$(sink_count "X-Rcpt-Args: <$orig>") deliveries to <$orig> (want exactly 1)"
    elif [ -n "$(sink_field "$(sink_file_for "X-Rcpt-Args: <$orig>")" X-Mail-Args | angle_addr)" ]; then
        e2e_fail "$name" "the bounce lost its null sender"
    else
        e2e_pass "$name"
    fi
}

# (w2) The same forwarding for a 98-octet sender, too long to embed in SRS0 (over
# 64 octets of local part): with the sqlite state, original-envelope is auto, so it
# leaves as the SRS0 of its postsrsd 2 alias (base32hex of its SHA-1, "@1"), and the
# bounce of it from outside reaches the 98-octet sender once, through the store.
case_w2() {
    local name="w2 long-sender-alias" domain=subdomain.of.a.long.example-domain.org orig local
    local alias file sender
    local="long-w2.$R."
    while [ $((${#local} + 1 + ${#domain})) -lt 98 ]; do local+=x; done
    orig="$local@$domain"
    alias=$(python3 -c 'import base64, hashlib, sys
print(base64.b32hexencode(hashlib.sha1(sys.argv[1].encode()).digest()).decode() + "@1")' "$orig")
    if ! send_marked w2 127.0.0.2 "$orig" bsfwd@ours.example; then
        e2e_fail "$name" "swaks failed: $(swaks_rcpt_reply) $(swaks_tail)"
        return
    fi
    if ! wait_done "$(swaks_queue_id)"; then
        e2e_fail "$name" "Postfix did not finish the message and its forwarded copy within ${DELIVERY}s"
        return
    fi
    file=$(sink_file_for "backstop e2e $R w2")
    sender=$(sink_field "$file" X-Mail-Args | angle_addr)
    if [ "${#orig}" -ne 98 ]; then
        e2e_fail "$name" "the test's sender has ${#orig} octets, not 98"
    elif [ "$(sink_count "backstop e2e $R w2")" -ne 1 ]; then
        e2e_fail "$name" "$(sink_count "backstop e2e $R w2") copies reached the sink (want exactly 1)"
    elif [ "$sender" != "$(srs_of "$alias")" ]; then
        e2e_fail "$name" "sender on the wire is <$sender>, want <$(srs_of "$alias")>, the SRS0 of $alias"
    else
        e2e_pass "$name"
    fi
    [[ $sender == SRS0=*=1=* ]] || return

    name="w2 long-sender-alias-bounce"
    if ! send_marked w2-bounce 127.0.0.2 "" "$sender"; then
        e2e_fail "$name" "bounce to <$sender> refused: $(swaks_rcpt_reply)"
    elif ! wait_done "$(swaks_queue_id)"; then
        e2e_fail "$name" "Postfix did not finish the bounce within ${DELIVERY}s"
    elif [ "$(sink_count "X-Rcpt-Args: <$orig>")" -ne 1 ]; then
        e2e_fail "$name" "$(sink_count "X-Rcpt-Args: <$orig>") deliveries to <$orig> (want exactly 1)"
    else
        e2e_pass "$name"
    fi
}

# --- Reloads and a stopped milter --------------------------------------------------------

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
    smtp_send 127.0.0.2 "" bscarol@ours.example
    check_refused "$name-still-rejects" "$MILTER_REFUSED"
    cp "$E2E_DIR/milter.conf.good" "$E2E_DIR/milter.conf"
    kill -USR1 "$E2E_MILTER_PID"
}

# bounce_until_reply REGEX RCPT [TOKEN]: sends a bounce from outside to RCPT until the
# RCPT reply matches (a reload is asynchronous); false after 10 s.
bounce_until_reply() {
    bounce_reply_matches() {
        send_marked "${3:-j}" 127.0.0.2 "" "$2"
        [[ $(swaks_rcpt_reply) =~ $1 ]]
    }
    wait_until 10 bounce_reply_matches "$@"
}

# (j) SIGUSR1 with a good config takes effect: action tempfail gives 451 through
# Postfix, action tag delivers the bounce with an X-Backstop-Result header.
case_j() {
    local mbox
    mbox=$(mailbox_of bscarol)
    e2e_write_config tempfail
    kill -USR1 "$E2E_MILTER_PID"
    if bounce_until_reply '^ *<\*\* 451 4\.7\.1 ' bscarol@ours.example; then
        e2e_pass "j reload-tempfail-451"
    else
        e2e_fail "j reload-tempfail-451" "RCPT reply '$(swaks_rcpt_reply)', expected 451 4.7.1"
    fi

    e2e_write_config tag
    kill -USR1 "$E2E_MILTER_PID"
    if ! bounce_until_reply '^ *<- +250 ' bscarol@ours.example j-tag; then
        e2e_fail "j reload-tag-header" "bounce not accepted with action tag: $(swaks_rcpt_reply)"
    elif check_once "j reload-tag-header" "$mbox" j-tag; then
        if mbox_message "$mbox" "backstop e2e $R j-tag" | grep -q '^X-Backstop-Result: .'; then
            e2e_pass "j reload-tag-header"
        else
            e2e_fail "j reload-tag-header" "no X-Backstop-Result header in the delivered bounce"
        fi
    fi

    e2e_write_config reject
    kill -USR1 "$E2E_MILTER_PID"
    if bounce_until_reply "$MILTER_REFUSED" bscarol@ours.example; then
        e2e_pass "j reload-back-to-reject"
    else
        e2e_fail "j reload-back-to-reject" "RCPT reply '$(swaks_rcpt_reply)'"
    fi
}

# (f) Milter (and with it the socketmap) down: Postfix tempfails mail from outside
# and from inside, a bounce to a valid tag too (never a 5xx), nothing is lost, and
# after a restart the mail is delivered exactly once.
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
    # Postfix may refuse it at any stage, for the milter or for the map; only with 4xx.
    send_marked f 127.0.0.2 "" "$(tag_of "$ALICE")"
    if swaks_has '^ *<- +250 .*queued as'; then
        e2e_fail "$name-bounce-tempfail" "accepted while the milter was down"
    elif swaks_has '^ *<\*\* 5[0-9][0-9] ' || ! swaks_has '^ *<\*\* 4[0-9][0-9] '; then
        e2e_fail "$name-bounce-tempfail" "not a 4xx: $(swaks_tail)"
    else
        e2e_pass "$name-bounce-tempfail"
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
    # Exactly once: wait until Postfix is done with both, then count.
    wait_done "$(swaks_queue_id)"
    wait_done "$(pickup_queue_id "alice-f2.$R@ours.example")"
    local n1 n2
    n1=$(sink_count "<$rcpt>")
    n2=$(sink_count "<$lrcpt>")
    if [ "$n1" -eq 1 ] && [ "$n2" -eq 1 ]; then
        e2e_pass "$name-exactly-once"
    else
        e2e_fail "$name-exactly-once" "deliveries: smtp $n1, sendmail $n2 (want 1 and 1)"
    fi
}

# --- The alternative without SRS in local mailboxes -------------------------------------

# master_cf_alternative: the master.cf lines that conf/postfix-main.cf gives in its
# comment (the block of "#   " lines after the line naming master.cf), applied with
# postconf -M (services) and -P (their -o options), so the comment is what is tested.
master_cf_alternative() {
    python3 - "$E2E_MAIN_CF" <<'EOF' | while IFS= read -r arg; do postconf "${arg%% *}" "${arg#* }" || return 1; done
import sys
lines = open(sys.argv[1]).read().splitlines()
start = next(i for i, l in enumerate(lines) if "master.cf:" in l) + 1
service = None
for line in lines[start:]:
    if not line.startswith("#   "):
        break
    text = line[4:]
    if text.startswith(" "):
        opt = text.split()
        assert opt[0] == "-o" and service, line
        print(f"-P {service}/{opt[1]}")
    else:
        f = text.split()
        service = f"{f[0]}/{f[1]}"
        print(f"-M {service}={' '.join(f)}")
EOF
}

# (l) A 94 KB folded References: header (under header_size_limit, 102400) from an
# internal client: accepted at once, delivered exactly once, never deferred, signed;
# the header arrives cut after its last whole line within 60,000 bytes. That cut is
# Postfix's own: with any milter configured, cleanup_message() lowers header_size_limit
# to 60000 (KLUDGE_HEADER_LIMIT, for libmilter's 64 KiB packet limit) and
# cleanup_out_header() cuts the header there, logging nothing.
case_l() {
    local name="l long-header" rcpt="bob-l.$R@remote.example" qid file check
    python3 "$E2E_HERE/long_header.py" make "$E2E_DIR/long.eml" 94000 "l.$R" \
        "From: alice-l.$R@ours.example" "To: $rcpt" "Subject: backstop e2e $R l"
    SWAKS_ARGS=(--data "$E2E_DIR/long.eml")
    smtp_send 127.0.0.1 "alice-l.$R@ours.example" "$rcpt"
    local rc=$?
    SWAKS_ARGS=()
    qid=$(swaks_queue_id)
    if [ $rc -ne 0 ] || [ -z "$qid" ]; then
        e2e_fail "$name" "not accepted at once: $(swaks_tail)"
        return
    fi
    if ! wait_done "$qid"; then
        e2e_fail "$name" "Postfix did not finish $qid within ${DELIVERY}s"
        return
    fi
    if e2e_maillog | grep -q " $qid: .*status=deferred"; then
        e2e_fail "$name" "deferred: $(e2e_maillog | grep " $qid: .*status=deferred" | head -n 1)"
    elif [ "$(sink_count "<$rcpt>")" -ne 1 ]; then
        e2e_fail "$name" "$(sink_count "<$rcpt>") deliveries to <$rcpt> (want exactly 1)"
    else
        e2e_pass "$name-once"
    fi
    check_prvs_sender "$name-signed" "$rcpt" "alice-l.$R@ours.example"
    file=$(sink_file_for "<$rcpt>")
    if check=$(python3 "$E2E_HERE/long_header.py" check "$E2E_DIR/long.eml" "$file" 60000); then
        e2e_pass "$name-cut-at-60000"
        printf '    %s\n' "$check"
    else
        e2e_fail "$name-cut-at-60000" "$check"
    fi
}

# (r) With those lines, inbound mail keeps its original Return-Path in the mailbox,
# and mail forwarded through the alias still leaves with SRS0. Last: it changes
# master.cf (restored at the end) for every later message.
case_r() {
    local name="r alternative-return-path" sender="someone-r.$R@remote.example" rp file
    if ! master_cf_alternative || ! postfix reload >/dev/null 2>&1 9>&-; then
        e2e_fail "$name" "could not apply the master.cf lines of $E2E_MAIN_CF"
        return
    fi
    postconf -M smtp/inet cleanup-nosrs/unix | sed 's/^/    /'
    postconf -P | grep -E '^(smtp/inet|cleanup-nosrs/unix)/' | sed 's/^/    /'
    if ! send_marked r 127.0.0.2 "$sender" bsbob@ours.example; then
        e2e_fail "$name" "swaks failed: $(swaks_rcpt_reply) $(swaks_tail)"
    elif check_once "$name" "$(mailbox_of bsbob)" r; then
        rp=$(mbox_message "$(mailbox_of bsbob)" "backstop e2e $R r" | sed -n '1s/^Return-Path: <\(.*\)>$/\1/p')
        if [ "$rp" = "$sender" ]; then
            e2e_pass "$name"
        else
            e2e_fail "$name" "Return-Path <$rp>, want <$sender>"
        fi
    fi
    name="r alternative-alias-forward-srs0"
    if ! send_marked r-fwd 127.0.0.2 "carol-r.$R@foreign.example" bsfwd@ours.example; then
        e2e_fail "$name" "swaks failed: $(swaks_rcpt_reply) $(swaks_tail)"
    elif ! wait_done "$(swaks_queue_id)"; then
        e2e_fail "$name" "Postfix did not finish the message within ${DELIVERY}s"
    else
        file=$(sink_file_for "backstop e2e $R r-fwd")
        if [[ $(sink_field "$file" X-Mail-Args | angle_addr) =~ ^SRS0=[^=]{4}=[A-Z2-7]{2}=foreign\.example=carol-r\.$R@fwd\.ours\.example$ ]]; then
            e2e_pass "$name"
        else
            e2e_fail "$name" "sender on the wire: $(sink_field "$file" X-Mail-Args)"
        fi
    fi
}

STARTED=$(date +%s)
# POSTFIX_CASES="l" runs only those cases (while working on them).
for c in ${POSTFIX_CASES:-a a2 a3 b g c d d2 e k p v n i w w2 h j f l r}; do
    "case_$c"
done
printf '    %d s\n' $(($(date +%s) - STARTED))

e2e_summary
