# Shared helpers for the end-to-end tests: a real MTA on loopback (DESIGN §8),
# an smtp-sink as the next hop, and backstop-milter between them.
# Sourced by tests/e2e/test_*.sh; needs root, swaks and smtp-sink (from postfix).
# e2e_setup brings up Postfix as an MX; a test for another MTA calls e2e_start_common
# and starts its MTA itself (test_sendmail.sh).
#
# Postfix is set up as a mail administrator runs an MX that also forwards:
#   mydestination = localhost, ours.example, fwd.ours.example (the SRS domain), real
#     local users (bsalice, bsbob, bscarol; created once and left), delivery to
#     /var/mail/USER, Postfix's default recipient validation (local_recipient_maps);
#   the alias bsfwd: dave@remote.example, in an alias file of the run;
#   the virtual-mailbox domain virt.ours.example (bsvera, mailboxes under the run);
#   mynetworks = 127.0.0.1/32; outside clients connect from 127.0.0.2; SMTP AUTH
#     (Cyrus SASL, sasldb2 inside the chroot) for bsalice@ours.example;
#   everything else relayed to the smtp-sink (relayhost);
#   the backstop lines of conf/postfix-main.cf, applied as shipped: the milter on
#     127.0.0.1:8891 and the socketmap backstop/socketmap in Postfix's queue directory.
# Each changed file is backed up and restored by e2e_cleanup; the run's messages are
# removed from the test users' mailboxes at the end (never other mail).
#
# Layout of one run (all under $E2E_DIR, removed at the end unless E2E_KEEP=1):
#   sink/        smtp-sink dumps, one file per delivered message
#   milter.conf  backstop config; milter.log its stderr; *.keys / *.secrets 0600
#   postfix/     backups of main.cf, master.cf and sasl/smtpd.conf
#   aliases, vmailbox, vmail/   the alias file, virtual mailbox map and mailboxes

E2E_HERE=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
E2E_SINK_PORT=${E2E_SINK_PORT:-2526}
E2E_SMTP_PORT=25 # where smtp_send connects: the MTA under test
E2E_MILTER_PORT=${E2E_MILTER_PORT:-} # empty: a free port (e2e_setup: 8891, as conf/postfix-main.cf)
E2E_DELIVERY=30  # seconds to wait for a message to reach the sink or a mailbox
E2E_MAILLOG=/var/log/backstop-e2e.log # maillog_file must lie under /var
E2E_MAILLOG_START=0                   # its size when this run started
E2E_RUN=r$$x$(date +%s)               # in every message: tells our mail from any other
E2E_DIR=
E2E_PASSED=0
E2E_FAILED=0
E2E_MILTER_PID=
E2E_SINK_PID=
E2E_POSTFIX_STARTED=0
E2E_POSTFIX_CHANGED=0 # main.cf & co. backed up: e2e_stop_postfix restores them
E2E_POSTFIX_WAS_RUNNING=0
E2E_MTA_STOP=          # function that stops the MTA under test; run first by e2e_cleanup
E2E_MTA_LOG=e2e_postfix_log # function printing the MTA log lines of this run
E2E_LOCAL_DOMAINS="ours.example"
E2E_SOCKETMAP= # the milter's socketmap listener (e2e_setup: inside Postfix's chroot)
E2E_RELAY_DOMAINS=   # the milter's [domains] relay (test_gateway.sh)
E2E_INBOUND_EXTRA=   # more [inbound] lines of the milter config, one per line
E2E_HELPER_PIDS=()   # more daemons of the run (a test's own servers): killed at cleanup

# The Postfix MX (e2e_setup).
E2E_MAIN_CF=${E2E_MAIN_CF:-$E2E_HERE/../../conf/postfix-main.cf}
E2E_MAIN_CF_EXTRA=  # a second main.cf fragment applied after it (conf/postfix-gateway.cf)
E2E_POSTFIX_HOOK=   # function run after both are applied, before postfix start
E2E_SPOOL=/var/spool/postfix # queue_directory, and the chroot of smtpd and cleanup
E2E_SOCKETMAP_DIR=$E2E_SPOOL/backstop
E2E_SASL_CONF=/etc/postfix/sasl/smtpd.conf
E2E_SASLDB=/etc/backstop-e2e.sasldb2 # as smtpd sees it, inside the chroot
E2E_SASL_USER=bsalice@ours.example
E2E_SASL_PASSWORD=e2e-secret
E2E_USERS=(bsalice bsbob bscarol bsvmail) # bsvmail owns the virtual mailboxes
E2E_VUSER=bsvera@virt.ours.example
E2E_SOCKETMAP_DIR_MADE=0

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

# The Postfix log of this run (maillog_file), and its last lines for a failure report.
e2e_maillog() { [ -f "$E2E_MAILLOG" ] && tail -c +$((E2E_MAILLOG_START + 1)) "$E2E_MAILLOG"; }
e2e_postfix_log() { e2e_maillog | sed 's/^/    postfix| /' | tail -n 8; }

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
    {
        cat <<EOF
socket = inet:$E2E_MILTER_PORT@127.0.0.1
engine = ${E2E_ENGINE:-native}
foreground = true
log-level = debug
allow-root = true
state = sqlite:$E2E_DIR/state.db
EOF
        if [ -n "$E2E_SOCKETMAP" ]; then
            # Postfix's smtpd and cleanup run as postfix; the socket gets the group of
            # its set-group-ID directory (e2e_make_socketmap_dir), and the group may
            # connect: as with the package's directory, socket-mode is all it needs.
            printf 'socketmap = %s\nsocket-mode = 0660\n' "$E2E_SOCKETMAP"
        fi
        cat <<EOF
[domains]
local = $E2E_LOCAL_DOMAINS
${E2E_RELAY_DOMAINS:+relay = $E2E_RELAY_DOMAINS}
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
$E2E_INBOUND_EXTRA
EOF
    } >"$E2E_DIR/milter.conf"
}

e2e_make_keys() {
    (
        umask 077
        "$E2E_CLI" keygen >"$E2E_DIR/srs.secrets"
        "$E2E_CLI" keygen --batv-key 1 >"$E2E_DIR/batv.keys"
    )
}

# The milter is up: its milter port listens, and its socketmap socket, if any, exists.
milter_listening() {
    port_open 127.0.0.1 "$E2E_MILTER_PORT" &&
        { [ -z "$E2E_SOCKETMAP" ] || [ -S "${E2E_SOCKETMAP#unix:}" ]; }
}

e2e_start_milter() {
    # 9>&-: daemons must not inherit the run lock.
    "$E2E_MILTER_BIN" --config "$E2E_DIR/milter.conf" --foreground >>"$E2E_DIR/milter.log" 2>&1 9>&- &
    E2E_MILTER_PID=$!
    if ! wait_until 15 milter_listening; then
        e2e_log "backstop-milter did not listen on $E2E_MILTER_PORT${E2E_SOCKETMAP:+ and $E2E_SOCKETMAP}:"
        tail -n 20 "$E2E_DIR/milter.log" >&2
        return 1
    fi
}

# e2e_stop_daemon PID PORT: SIGTERM, SIGKILL when PORT on loopback still listens
# after 10 s, then reaped. Nothing when PID is empty.
e2e_stop_daemon() {
    [ -n "$1" ] || return 0
    kill -TERM "$1" 2>/dev/null
    if ! wait_until 10 port_closed 127.0.0.1 "$2"; then
        kill -KILL "$1" 2>/dev/null
    fi
    wait "$1" 2>/dev/null
}

e2e_stop_milter() {
    e2e_stop_daemon "$E2E_MILTER_PID" "$E2E_MILTER_PORT"
    E2E_MILTER_PID=
}

# --- smtp-sink ------------------------------------------------------------------------

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

# --- Postfix as an MX -------------------------------------------------------------------

# e2e_main_cf_lines FILE: the parameters of a main.cf fragment, one "name = value" per
# line, read as Postfix reads main.cf: "#" lines and blank lines are ignored, a line
# starting with white space continues the one before. A "#" inside a value is an
# error: main.cf has no trailing comments, Postfix would take it as part of the value.
e2e_main_cf_lines() {
    python3 - "$1" <<'EOF'
import re, sys
path = sys.argv[1]
params, errors = [], []
for n, line in enumerate(open(path, encoding="utf-8"), 1):
    line = line.rstrip("\n")
    if not line.strip() or line.lstrip().startswith("#"):
        continue
    if line[0] in " \t":
        if params:
            params[-1][1] += " " + line.strip()
        else:
            errors.append(f"{path}:{n}: a continuation line before any parameter")
        continue
    m = re.fullmatch(r"([A-Za-z0-9_]+)\s*=\s*(.*?)\s*", line)
    if m:
        params.append([m.group(1), m.group(2), n])
    else:
        errors.append(f"{path}:{n}: not 'name = value': {line}")
for name, value, n in params:
    if "#" in value:
        errors.append(f"{path}:{n}: '#' in the value of {name}: main.cf has no trailing comments")
if not params:
    errors.append(f"{path}: no parameters")
if errors:
    sys.exit("\n".join(errors))
for name, value, _ in params:
    print(f"{name} = {value}")
EOF
}

# e2e_make_users: the local users of the MX, created once and left (no home, no shell).
e2e_make_users() {
    local u
    for u in "${E2E_USERS[@]}"; do
        id -u "$u" >/dev/null 2>&1 && continue
        useradd --no-create-home --user-group --shell /usr/sbin/nologin \
            --comment "backstop end-to-end tests" "$u" || return 1
    done
}

# e2e_make_maps: the run's alias file and the virtual-mailbox domain's map and base.
e2e_make_maps() {
    printf 'bsfwd: dave@remote.example\n' >"$E2E_DIR/aliases"
    postalias "hash:$E2E_DIR/aliases" || return 1
    printf '%s virt.ours.example/bsvera\n' "$E2E_VUSER" >"$E2E_DIR/vmailbox"
    postmap "hash:$E2E_DIR/vmailbox" || return 1
    mkdir -p "$E2E_DIR/vmail/virt.ours.example"
    chown -R bsvmail:bsvmail "$E2E_DIR/vmail"
    # Postfix needs /etc/aliases.db for alias_maps = hash:/etc/aliases.
    [ -f /etc/aliases.db ] || postalias hash:/etc/aliases
}

# e2e_make_sasl: Cyrus SASL with sasldb2 for smtpd. smtpd reads smtpd.conf before it
# enters its chroot (/var/spool/postfix) and the database after, so the database
# lies inside the chroot, under a name of its own that no site uses.
e2e_make_sasl() {
    mkdir -p "$(dirname "$E2E_SASL_CONF")"
    cat >"$E2E_SASL_CONF" <<EOF
pwcheck_method: auxprop
auxprop_plugin: sasldb
mech_list: PLAIN LOGIN
sasldb_path: $E2E_SASLDB
EOF
    local db=$E2E_SPOOL$E2E_SASLDB
    rm -f "$db"
    printf '%s' "$E2E_SASL_PASSWORD" |
        saslpasswd2 -p -c -f "$db" -u "${E2E_SASL_USER#*@}" "${E2E_SASL_USER%@*}" || return 1
    chown root:postfix "$db"
    chmod 640 "$db"
}

# e2e_make_socketmap_dir: where the milter's socketmap socket lives, inside the chroot;
# made when missing (and then removed at the end). A socket there that answers belongs
# to a backstop-milter of this machine: the run does not take it over.
e2e_make_socketmap_dir() {
    local sock=${E2E_SOCKETMAP#unix:}
    if [ -S "$sock" ] && python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])' "$sock" 2>/dev/null; then
        e2e_log "e2e: $sock, where the run's socketmap must listen, is in use: stop that milter first"
        return 1
    fi
    if [ ! -d "$E2E_SOCKETMAP_DIR" ]; then
        # As the package makes it (owner: the milter's user, root here).
        install -d -m 2750 -g postfix "$E2E_SOCKETMAP_DIR" || return 1
        E2E_SOCKETMAP_DIR_MADE=1
    fi
}

e2e_start_postfix() {
    local settings= f
    for f in "$E2E_MAIN_CF" ${E2E_MAIN_CF_EXTRA:+"$E2E_MAIN_CF_EXTRA"}; do
        if ! settings+=$(e2e_main_cf_lines "$f")$'\n'; then
            e2e_log "cannot use $f"
            return 1
        fi
    done
    mkdir -p "$E2E_DIR/postfix"
    cp -p /etc/postfix/main.cf /etc/postfix/master.cf "$E2E_DIR/postfix/"
    [ -f "$E2E_SASL_CONF" ] && cp -p "$E2E_SASL_CONF" "$E2E_DIR/postfix/smtpd.conf"
    E2E_POSTFIX_CHANGED=1
    if postfix status >/dev/null 2>&1; then
        E2E_POSTFIX_WAS_RUNNING=1
        postfix stop >/dev/null 2>&1
        wait_until 20 port_closed 127.0.0.1 25
    fi
    E2E_MAILLOG_START=$(stat -c %s "$E2E_MAILLOG" 2>/dev/null || echo 0)
    e2e_make_users && e2e_make_maps && e2e_make_sasl || return 1
    local uid gid
    uid=$(id -u bsvmail) gid=$(id -g bsvmail)
    # The MX (see the top of this file). Parameters set to nothing or removed (-X)
    # undo whatever the machine had that would change the topology.
    # shellcheck disable=SC2016 # $mydomain is Postfix's
    postconf -e inet_interfaces=loopback-only \
        myhostname=mx.ours.example mydomain=ours.example 'myorigin=$mydomain' \
        'mydestination=localhost, ours.example, fwd.ours.example' \
        'mynetworks=127.0.0.1/32' \
        'smtpd_relay_restrictions=permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination' \
        smtpd_recipient_restrictions= relay_domains= \
        "relayhost=[127.0.0.1]:$E2E_SINK_PORT" default_transport=smtp relay_transport=smtp \
        "alias_maps=hash:/etc/aliases, hash:$E2E_DIR/aliases" \
        recipient_delimiter=+ mailbox_command= home_mailbox= mailbox_transport= \
        fallback_transport= luser_relay= \
        virtual_mailbox_domains=virt.ours.example \
        "virtual_mailbox_maps=hash:$E2E_DIR/vmailbox" \
        "virtual_mailbox_base=$E2E_DIR/vmail" \
        "virtual_uid_maps=static:$uid" "virtual_gid_maps=static:$gid" \
        smtpd_sasl_auth_enable=yes smtpd_sasl_type=cyrus smtpd_sasl_path=smtpd \
        smtpd_tls_auth_only=no \
        "maillog_file=$E2E_MAILLOG" \
        smtp_connect_timeout=5s \
        content_filter= transport_maps= relay_recipient_maps= || return 1
    postconf -X local_recipient_maps smtpd_reject_unlisted_recipient virtual_alias_maps \
        canonical_maps mail_spool_directory local_transport virtual_transport \
        cyrus_sasl_config_path internal_mail_filter_classes
    # The backstop lines, exactly as conf/postfix-main.cf (and E2E_MAIN_CF_EXTRA) ship them.
    local line
    while IFS= read -r line; do
        [ -n "$line" ] || continue
        postconf -e "$line" || { e2e_log "postconf refused: $line"; return 1; }
    done <<<"$settings"
    if [ -n "$E2E_POSTFIX_HOOK" ]; then
        "$E2E_POSTFIX_HOOK" || return 1
    fi
    E2E_POSTFIX_STARTED=1
    # postfix start runs postfix check first: its warnings are shown.
    postfix start >"$E2E_DIR/postfix/start.out" 2>&1 9>&-
    if grep -v 'starting the Postfix mail system' "$E2E_DIR/postfix/start.out" | grep -q .; then
        e2e_log "postfix start:"
        cat "$E2E_DIR/postfix/start.out" >&2
    fi
    wait_until 30 port_open 127.0.0.1 25
}

# Queue IDs that cleanup gave out during this run.
e2e_run_queue_ids() {
    e2e_maillog | sed -n 's/.* postfix\/cleanup\[[0-9]*\]: \([0-9A-Za-z]*\): message-id=.*/\1/p'
}

# Removes this run's messages from the queue (never anybody else's).
e2e_delete_our_queue() {
    postqueue -j 2>/dev/null |
        python3 -c 'import json,sys
ours = set(open(sys.argv[1]).read().split())
for l in sys.stdin:
    q = json.loads(l)["queue_id"]
    if q in ours: print(q)' <(e2e_run_queue_ids) |
        postsuper -d - >/dev/null 2>&1
}

# e2e_prune_mailboxes: removes this run's messages from the test users' mailboxes, under
# the mbox locks local(8) uses (a dot lock and fcntl), and never touches other mail.
e2e_prune_mailboxes() {
    local u files=()
    for u in "${E2E_USERS[@]}"; do
        [ -f "/var/mail/$u" ] && files+=("/var/mail/$u")
    done
    [ ${#files[@]} -gt 0 ] || return 0
    python3 - "$E2E_RUN" "${files[@]}" <<'EOF'
import mailbox, os, sys, time
run = sys.argv[1].encode()
for path in sys.argv[2:]:
    owner = os.stat(path)
    box = mailbox.mbox(path, create=False)
    for attempt in range(50):  # a delivery may hold the lock for a moment
        try:
            box.lock()
            break
        except mailbox.ExternalClashError:
            time.sleep(0.2)
    else:
        print(f"e2e: {path} stays locked: this run's messages are left in it", file=sys.stderr)
        continue
    try:
        ours = [key for key in box.keys() if run in box.get_bytes(key)]
        for key in ours:
            box.remove(key)
        box.flush()  # writes a new file: give it back to the mailbox's owner
        os.chown(path, owner.st_uid, owner.st_gid)
        os.chmod(path, owner.st_mode & 0o7777)
    finally:
        box.unlock()
        box.close()
    left = mailbox.mbox(path, create=False)
    if any(run in left.get_bytes(key) for key in left.keys()):
        print(f"e2e: {path} still holds messages of this run", file=sys.stderr)
EOF
}

# Stops our Postfix, restores its files and the Postfix that was running.
e2e_stop_postfix() {
    if [ "$E2E_POSTFIX_STARTED" = 1 ]; then
        e2e_delete_our_queue
        postfix stop >/dev/null 2>&1
        wait_until 20 port_closed 127.0.0.1 25
    fi
    [ "$E2E_POSTFIX_CHANGED" = 1 ] || return 0
    cp -p "$E2E_DIR/postfix/main.cf" "$E2E_DIR/postfix/master.cf" /etc/postfix/
    if [ -f "$E2E_DIR/postfix/smtpd.conf" ]; then
        cp -p "$E2E_DIR/postfix/smtpd.conf" "$E2E_SASL_CONF"
    else
        rm -f "$E2E_SASL_CONF"
    fi
    rm -f "$E2E_SPOOL$E2E_SASLDB"
    [ "${E2E_KEEP:-0}" = 1 ] || e2e_prune_mailboxes
    [ "$E2E_POSTFIX_WAS_RUNNING" = 1 ] && postfix start >/dev/null 2>&1 9>&-
}

e2e_cleanup() {
    set +e
    [ -n "$E2E_MTA_STOP" ] && "$E2E_MTA_STOP"
    e2e_stop_milter
    local pid
    for pid in "${E2E_HELPER_PIDS[@]}"; do
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    if [ "$E2E_SOCKETMAP_DIR_MADE" = 1 ]; then
        rm -f "${E2E_SOCKETMAP#unix:}"
        rmdir "$E2E_SOCKETMAP_DIR"
    fi
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
    [ -n "$E2E_MILTER_PORT" ] || E2E_MILTER_PORT=$(free_port)
    if port_open 127.0.0.1 "$E2E_MILTER_PORT"; then
        e2e_log "e2e: 127.0.0.1:$E2E_MILTER_PORT, where backstop-milter must listen, is taken" \
            "(a milter of scripts/run?): stop that first"
        return 1
    fi
    if [ -n "$E2E_SOCKETMAP" ]; then
        e2e_make_socketmap_dir || return 1
    fi
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

# e2e_setup MILTER CLI: everything up, Postfix in front; cleanup is trapped. The milter
# listens where conf/postfix-main.cf expects it: 127.0.0.1:8891 and the socketmap.
e2e_setup() {
    e2e_require postfix postconf postqueue postsuper postalias postmap swaks smtp-sink \
        python3 useradd saslpasswd2
    E2E_MTA_STOP=e2e_stop_postfix
    E2E_MILTER_PORT=8891
    E2E_SOCKETMAP=unix:$E2E_SOCKETMAP_DIR/socketmap
    E2E_LOCAL_DOMAINS="ours.example, virt.ours.example"
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

# send_marked TOKEN IP SENDER RCPT: smtp_send with the subject "backstop e2e RUN TOKEN",
# by which a mailbox tells this message from any other.
send_marked() {
    local token=$1
    shift
    SWAKS_ARGS+=(--header "Subject: backstop e2e $E2E_RUN $token")
    smtp_send "$@"
    local rc=$?
    SWAKS_ARGS=()
    return $rc
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

# mailsrs_reverse ADDRESS: Mail::SRS's reverse with the run's secrets (first signs).
mailsrs_reverse() {
    perl -MMail::SRS -e '
        open(my $f, "<", $ARGV[0]) or die "$ARGV[0]: $!\n";
        chomp(my @secrets = grep { /\S/ } <$f>);
        my $srs = Mail::SRS->new(Secret => \@secrets);
        $SIG{__WARN__} = sub {};
        print $srs->reverse($ARGV[1]) // "", "\n";' "$E2E_DIR/srs.secrets" "$1" 2>&1
}

# --- Mailboxes and Postfix's queue -------------------------------------------------------

mailbox_of() { echo "/var/mail/$1"; }

# mbox_count FILE STRING: the messages in the mbox FILE that contain the fixed STRING.
mbox_count() {
    python3 - "$1" "$2" <<'EOF'
import mailbox, os, sys
path, needle = sys.argv[1], sys.argv[2].encode()
box = mailbox.mbox(path, create=False) if os.path.exists(path) else {}
print(sum(1 for key in box.keys() if needle in box.get_bytes(key)))
EOF
}

# mbox_message FILE STRING: the last message of FILE that contains STRING, with the
# Return-Path that local(8) and virtual(8) write first.
mbox_message() {
    python3 - "$1" "$2" <<'EOF'
import mailbox, os, sys
path, needle = sys.argv[1], sys.argv[2].encode()
box = mailbox.mbox(path, create=False) if os.path.exists(path) else {}
found = [box.get_bytes(key) for key in box.keys() if needle in box.get_bytes(key)]
sys.stdout.write(found[-1].decode("latin-1") if found else "")
EOF
}

# mbox_has FILE STRING: at least one message of FILE contains STRING.
mbox_has() { [ "$(mbox_count "$1" "$2")" -gt 0 ]; }

# The queue ID Postfix gave the message of the last smtp_send ("queued as ...").
swaks_queue_id() { sed -n 's/^ *<- *250 .*queued as \([0-9A-Za-z]*\).*/\1/p' "$E2E_DIR/swaks.out" | tail -n 1; }

# pickup_queue_id SENDER: the queue ID of a sendmail(1) submission from SENDER.
pickup_queue_id() {
    e2e_maillog | sed -n "s/.* postfix\/pickup\[[0-9]*\]: \([0-9A-Za-z]*\): uid=[0-9]* from=<$1>.*/\1/p" | tail -n 1
}

queue_id_removed() { e2e_maillog | grep -q " $1: removed\$"; }

# The queue files a message begot: copies local(8) forwarded through an alias, and
# the bounce Postfix sent.
queue_id_children() {
    e2e_maillog | sed -n -e "s/.* $1: to=.*(forwarded as \([0-9A-Za-z]*\)).*/\1/p" \
        -e "s/.* $1: sender non-delivery notification: \([0-9A-Za-z]*\)\$/\1/p"
}

# wait_done QID: waits until Postfix is done with QID and with each message it begot
# (each logged "removed"): every copy has been delivered by then, so a count that
# follows is final. False after E2E_DELIVERY seconds for one of them.
wait_done() {
    [ -n "$1" ] || return 1
    wait_until "$E2E_DELIVERY" queue_id_removed "$1" || return 1
    local child
    for child in $(queue_id_children "$1"); do
        wait_done "$child" || return 1
    done
}

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

# check_unsigned_bounce_refused NAME RCPT [MBOX]: a bounce from outside to the unsigned
# local address RCPT gets 550 5.7.1 at RCPT and reaches nobody: not the sink, not the
# mailbox MBOX.
check_unsigned_bounce_refused() {
    local name=$1 rcpt=$2 mbox=${3:-}
    if smtp_send 127.0.0.2 "" "$rcpt"; then
        e2e_fail "$name" "swaks succeeded: the bounce was accepted"
        return
    fi
    expect_rcpt_reply "$name" '^ *<\*\* 550 5\.7\.1 '
    if [ "$(sink_count "<$rcpt>")" -ne 0 ]; then
        e2e_fail "$name-not-delivered" "a rejected bounce reached the sink"
    elif [ -n "$mbox" ] && [ "$(mbox_count "$mbox" "$rcpt")" -ne 0 ]; then
        e2e_fail "$name-not-delivered" "a rejected bounce reached $mbox"
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

# e2e_write_load_plan PLAN N USER RUN: the kill-9-under-load plan of N messages, one line
# each, "id<TAB>client-ip<TAB>sender<TAB>rcpt". One in ten is a bounce from outside
# (127.0.0.2) to a BATV tag of its own address USER+bNNNNN.RUN@ours.example (the storm
# limit counts per address; the MTA delivers them all to USER); the rest is outbound
# from x.RUN@ours.example (127.0.0.1) to o-ID@remote.example.
e2e_write_load_plan() {
    local plan=$1 n=$2 user=$3 run=$4 users=$E2E_DIR/load-users tags=$E2E_DIR/load-tags
    seq 0 $((n - 1)) | awk -v r="$run" -v u="$user" '$1 % 10 == 3 { printf "%s+b%05d.%s@ours.example\n", u, $1, r }' >"$users"
    # shellcheck disable=SC2094 # $users is only read, twice
    "$E2E_CLI" batv sign --keys "$E2E_DIR/batv.keys" <"$users" | paste "$users" - >"$tags"
    seq 0 $((n - 1)) | awk -v r="$run" -v u="$user" -v tags="$tags" '
        BEGIN { while ((getline line < tags) > 0) { split(line, f, "\t"); tag[f[1]] = f[2] } }
        {
            id = sprintf("L%05d.%s", $1, r)
            if ($1 % 10 == 3) {
                user = sprintf("%s+b%05d.%s@ours.example", u, $1, r)
                printf "%s\t127.0.0.2\t\t%s\n", id, tag[user]
            } else {
                printf "%s\t127.0.0.1\tx.%s@ours.example\to-%s@remote.example\n", id, r, id
            }
        }' >"$plan"
}

# The count the load client (faults_smtp.py load) wrote last; 0 before it wrote one.
e2e_load_progress() {
    local n
    n=$(cat "$E2E_DIR/load-progress" 2>/dev/null)
    echo "${n:-0}"
}
e2e_load_progress_at_least() { [ "$(e2e_load_progress)" -ge "$1" ]; }
