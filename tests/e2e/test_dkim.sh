#!/bin/bash
# The DKIM chain: Postfix, then backstop-milter, then the real OpenDKIM, as
# conf/opendkim.conf sets them up.
#
# usage: test_dkim.sh BACKSTOP_MILTER BACKSTOP_CLI
#
# OpenDKIM runs in the foreground on a port of its own, never as the system's
# service (/etc/opendkim.conf is only read), with a config made of Debian's stock
# /etc/opendkim.conf (when it is as shipped: what an admin appends to), then conf/opendkim.conf's lines
# verbatim except the values the file marks as the site's (Domain, Selector,
# KeyFile, Socket's port), then this run's PidFile; Postfix gets the milter lines
# of the file's comment block, with this run's ports. The key comes from
# opendkim-genkey; the verifier (python3-dkim) gets its public key from the
# record opendkim-genkey wrote, never from DNS.
#
# For mail from an internal client and for a sendmail(1) submission, the copy at
# the sink has: the BATV-tagged envelope sender; backstop's watermark header, one,
# and genuine; a DKIM-Signature whose h= names the watermark header; the signature
# verifies; with one character of the watermark changed it does not (and with one
# of an unsigned header changed, it still does).
# Needs root; stops Postfix and OpenDKIM and restores main.cf at the end.
set -u
HERE=$(dirname "$(readlink -f "$0")")
. "$HERE/lib.sh"
SAMPLE=$HERE/../../conf/opendkim.conf
CHECK=$HERE/dkim_check.py
PY=/usr/bin/python3 # Debian's python, which has python3-dkim (not a python earlier on PATH)

e2e_require opendkim opendkim-genkey
"$PY" -c 'import dkim' 2>/dev/null || { echo "e2e: python3-dkim not installed for $PY" >&2; exit 77; }
[ -f "$SAMPLE" ] || { echo "e2e: no $SAMPLE" >&2; exit 2; }

DKIM_DIR=
DKIM_PID=
DKIM_PORT=
DKIM_DOMAIN=ours.example
DKIM_SELECTOR=e2e
WM_HEADER=X-Backstop-Watermark
WM_LIFETIME_DAYS=14 # backstop's default [watermark] lifetime

# Stops OpenDKIM after the MTA (e2e_cleanup runs E2E_MTA_STOP first).
dkim_stop() {
    e2e_stop_daemon "$DKIM_PID" "$DKIM_PORT"
    DKIM_PID=
}
dkim_stop_after_mta() {
    "$DKIM_MTA_STOP"
    dkim_stop
    [ -n "$DKIM_DIR" ] || return 0
    if [ "${E2E_KEEP:-0}" = 1 ]; then
        e2e_log "e2e: kept $DKIM_DIR"
    else
        rm -rf "$DKIM_DIR"
    fi
}

# Debian's /etc/opendkim.conf when it is the file the package shipped (its
# md5sum is the conffile's); nothing when an admin has changed it.
debian_stock_conf() {
    local want have
    want=$(dpkg-query -W -f='${Conffiles}\n' opendkim 2>/dev/null |
        awk '$1 == "/etc/opendkim.conf" { print $2 }')
    have=$(md5sum </etc/opendkim.conf 2>/dev/null | cut -d' ' -f1)
    if [ -n "$want" ] && [ "$want" = "$have" ]; then
        cat /etc/opendkim.conf
    else
        e2e_log "e2e: /etc/opendkim.conf is not as shipped; using conf/opendkim.conf alone"
    fi
}

# conf/opendkim.conf with this run's values in the site's lines; fails unless
# each of them is there exactly once.
sample_conf_for_run() {
    awk -v domain="$DKIM_DOMAIN" -v selector="$DKIM_SELECTOR" \
        -v keyfile="$DKIM_DIR/$DKIM_SELECTOR.private" -v port="$DKIM_PORT" '
        $1 == "Domain" { print "Domain\t\t\t" domain; n["Domain"]++; next }
        $1 == "Selector" { print "Selector\t\t" selector; n["Selector"]++; next }
        $1 == "KeyFile" { print "KeyFile\t\t\t" keyfile; n["KeyFile"]++; next }
        $1 == "Socket" && $2 == "inet:8892@localhost" {
            print "Socket\t\t\tinet:" port "@localhost"; n["Socket"]++; next
        }
        { print }
        END {
            split("Domain Selector KeyFile Socket", keys, " ")
            for (i in keys) if (n[keys[i]] != 1) {
                print "conf/opendkim.conf: " n[keys[i]] + 0 " " keys[i] " lines, expected 1" > "/dev/stderr"
                bad = 1
            }
            exit bad
        }' "$SAMPLE"
}

# OpenDKIM listens, or has exited (a config it refuses): no point waiting longer.
dkim_listening_or_gone() { port_open 127.0.0.1 "$DKIM_PORT" || ! kill -0 "$DKIM_PID" 2>/dev/null; }

dkim_start() {
    # Not under /tmp: OpenDKIM refuses a config or key file in a directory that
    # others can write to.
    DKIM_DIR=$(mktemp -d /run/backstop-e2e-dkim.XXXXXX) || return 1
    chmod 755 "$DKIM_DIR"
    DKIM_PORT=$(free_port)
    opendkim-genkey -D "$DKIM_DIR" -d "$DKIM_DOMAIN" -s "$DKIM_SELECTOR" || return 1
    # As conf/opendkim.conf says: the key belongs to the user OpenDKIM runs as.
    chown opendkim:opendkim "$DKIM_DIR/$DKIM_SELECTOR.private" || return 1
    {
        debian_stock_conf
        sample_conf_for_run || return 1
        echo "PidFile $DKIM_DIR/opendkim.pid"
    } >"$DKIM_DIR/opendkim.conf" || return 1
    opendkim -f -x "$DKIM_DIR/opendkim.conf" >>"$DKIM_DIR/opendkim.log" 2>&1 9>&- &
    DKIM_PID=$!
    wait_until 15 dkim_listening_or_gone
    if ! port_open 127.0.0.1 "$DKIM_PORT"; then
        e2e_log "opendkim did not listen on $DKIM_PORT:"
        cat "$DKIM_DIR/opendkim.log" >&2
        return 1
    fi
}

# backstop with the watermark on: its own keys, the milter restarted.
watermark_on() {
    if grep -q '^\[watermark\]' "$E2E_DIR/milter.conf"; then
        e2e_log "milter.conf already has a [watermark] section"
        return 1
    fi
    (umask 077 && "$E2E_CLI" keygen >"$E2E_DIR/watermark.keys") || return 1
    printf '[watermark]\nenable = true\nkeys = %s\n' "$E2E_DIR/watermark.keys" \
        >>"$E2E_DIR/milter.conf"
    e2e_stop_milter
    e2e_start_milter
}

# The Postfix lines in conf/opendkim.conf's comment block, with this run's ports
# for 8891 (backstop) and 8892 (OpenDKIM); fails unless there are both.
sample_postfix_lines() {
    local lines
    lines=$(sed -n 's/^#   \(\(non_\)\{0,1\}smtpd_milters = .*\)$/\1/p' "$SAMPLE")
    if [ "$(grep -c . <<<"$lines")" -ne 2 ]; then
        e2e_log "conf/opendkim.conf: expected an smtpd_milters and a non_smtpd_milters line"
        return 1
    fi
    sed -e "s/inet:127\.0\.0\.1:8891/inet:127.0.0.1:$E2E_MILTER_PORT/" \
        -e "s/inet:127\.0\.0\.1:8892/inet:127.0.0.1:$DKIM_PORT/" <<<"$lines"
}

# Postfix restarted with those lines: backstop first, then OpenDKIM, for SMTP and
# sendmail(1). (e2e_stop_postfix restores the saved main.cf at the end.)
milters_chain() {
    local lines line want
    lines=$(sample_postfix_lines) || return 1
    postfix stop >/dev/null 2>&1
    wait_until 20 port_closed 127.0.0.1 25 || return 1
    while IFS= read -r line; do
        postconf -e "$line" || return 1
    done <<<"$lines"
    want="inet:127.0.0.1:$E2E_MILTER_PORT, inet:127.0.0.1:$DKIM_PORT"
    if [ "$(postconf -xh smtpd_milters)" != "$want" ] ||
        [ "$(postconf -xh non_smtpd_milters)" != "$want" ]; then
        e2e_log "the milter lists are not '$want': $(postconf -x smtpd_milters non_smtpd_milters)"
        return 1
    fi
    postfix start >/dev/null 2>&1 9>&-
    wait_until 30 port_open 127.0.0.1 25
}

e2e_setup_or_exit "$@"
DKIM_MTA_STOP=$E2E_MTA_STOP
E2E_MTA_STOP=dkim_stop_after_mta
if ! watermark_on || ! dkim_start || ! milters_chain; then
    e2e_fail setup "could not start the watermark, OpenDKIM or the milter chain"
    e2e_summary
    exit 1
fi

R=$E2E_RUN

# The watermark header's value in FILE (empty when there is not exactly one).
watermark_of() {
    local n
    n=$(grep -ci "^$WM_HEADER:" "$1")
    [ "$n" -eq 1 ] && grep -i "^$WM_HEADER:" "$1" | sed 's/^[^:]*: *//'
}

# check_watermark NAME FILE USER: one watermark, and it is the one backstop's key
# gives for USER and the message's Message-ID at its expiry time.
check_watermark() {
    local name=$1 file=$2 user=$3 value expiry mid expected
    value=$(watermark_of "$file")
    if ! [[ $value =~ ^v=1\;\ e=([0-9]+)\;\ s=[A-Za-z0-9_-]{22}$ ]]; then
        e2e_fail "$name" "$(grep -ci "^$WM_HEADER:" "$file") $WM_HEADER headers, value '$value'"
        return
    fi
    expiry=${BASH_REMATCH[1]}
    mid=$(grep -i '^Message-ID:' "$file" | head -n 1 | sed 's/^[^:]*: *//')
    expected=$("$E2E_CLI" watermark sign --keys "$E2E_DIR/watermark.keys" --sender "$user" \
        --message-id "$mid" --time $((expiry - WM_LIFETIME_DAYS * 86400)) 2>&1)
    if [ "$value" = "$expected" ]; then
        e2e_pass "$name"
    else
        e2e_fail "$name" "'$value' is not backstop's mark for <$user> and $mid ('$expected')"
    fi
}

# check_signature PREFIX FILE: the DKIM-Signature names the watermark header in h=
# (any case), verifies with the run's key, and fails with the watermark changed.
check_signature() {
    local p=$1 file=$2 tags
    # The changed copies go next to sink/: in it they would count as deliveries.
    local changed=$E2E_DIR/${file##*/}
    tags=$("$PY" "$CHECK" tags "$file" 2>&1)
    if ! grep -qx "d=$DKIM_DOMAIN" <<<"$tags" || ! grep -qx "s=$DKIM_SELECTOR" <<<"$tags"; then
        e2e_fail "$p dkim-signed" "no signature by $DKIM_SELECTOR._domainkey.$DKIM_DOMAIN: $(tr '\n' ' ' <<<"$tags")"
        return
    fi
    e2e_pass "$p dkim-signed"
    if grep -qx "h=${WM_HEADER,,}" <<<"$tags"; then
        e2e_pass "$p dkim-h-covers-watermark"
    else
        e2e_fail "$p dkim-h-covers-watermark" "h= is $(grep '^h=' <<<"$tags" | cut -c3- | paste -sd:)"
    fi
    verifies_as "$p dkim-verifies" "$file" 0
    tampered_verifies_as "$p dkim-tampered-watermark-fails" "$file" "$WM_HEADER" \
        "$changed.tampered" 1
    # The control: the same change to a header the signature does not cover (one
    # smtp-sink adds) leaves it valid, so the failure above is the watermark's.
    tampered_verifies_as "$p dkim-unsigned-header-change-verifies" "$file" X-Rcpt-Args \
        "$changed.control" 0
}

# verifies_as NAME FILE WANT: the DKIM check of FILE with the run's key exits WANT
# (0: verified, 1: not verified).
verifies_as() {
    local name=$1 file=$2 want=$3 out rc
    out=$("$PY" "$CHECK" verify "$file" "$DKIM_DIR/$DKIM_SELECTOR.txt" "$DKIM_DOMAIN" 2>&1)
    rc=$?
    if [ "$rc" -eq "$want" ]; then
        e2e_pass "$name"
    else
        e2e_fail "$name" "exit $rc (want $want): $out"
    fi
}

# tampered_verifies_as NAME FILE HEADER COPY WANT: FILE with HEADER changed, written
# to COPY, checks as verifies_as NAME COPY WANT.
tampered_verifies_as() {
    local name=$1 file=$2 header=$3 copy=$4 want=$5 out
    if ! out=$("$PY" "$CHECK" tamper "$file" "$header" "$copy" 2>&1); then
        e2e_fail "$name" "could not change $header: $out"
        return
    fi
    verifies_as "$name" "$copy" "$want"
}

# check_chain PREFIX RCPT USER: every check on the copy of the message for RCPT,
# sent by USER.
check_chain() {
    local p=$1 rcpt=$2 user=$3 file
    check_prvs_sender "$p batv-sender" "$rcpt" "$user"
    file=$(sink_file_for "<$rcpt>")
    if [ -z "$file" ] || ! sink_complete "<$rcpt>"; then
        e2e_fail "$p dkim" "no delivery to $rcpt: watermark and signature not checked"
        return
    fi
    check_watermark "$p watermark" "$file" "$user"
    check_signature "$p" "$file"
}

# (a) Mail from an internal client for a local sender.
case_smtp() {
    local user="alice-s.$R@ours.example" rcpt="bob-s.$R@remote.example"
    if ! smtp_send 127.0.0.1 "$user" "$rcpt"; then
        e2e_fail "smtp" "swaks failed: $(swaks_tail)"
        return
    fi
    check_chain smtp "$rcpt" "$user"
}

# (b) The same submitted with sendmail(1): non_smtpd_milters = $smtpd_milters.
case_sendmail() {
    local user="alice-l.$R@ours.example" rcpt="bob-l.$R@remote.example"
    if ! local_send "$user" "$rcpt"; then
        e2e_fail "sendmail" "sendmail failed"
        return
    fi
    check_chain sendmail "$rcpt" "$user"
}

case_smtp
case_sendmail

e2e_summary
