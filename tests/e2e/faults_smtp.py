#!/usr/bin/env python3
"""SMTP client and message generators for tests/e2e/test_faults.sh.

  faults_smtp.py load PLAN PROGRESS DEADLINE CONNS
      Sends every message of PLAN (lines "id<TAB>client-ip<TAB>sender<TAB>rcpt",
      sender "" for the null sender) to 127.0.0.1:25 (the port in the environment
      variable FAULTS_SMTP_PORT when it is set) over CONNS concurrent
      connections, like a sending MTA: a 4xx reply or a dropped connection closes
      the connection and the message is tried again later, until it is accepted or
      DEADLINE seconds have passed. Writes the number accepted so far to PROGRESS
      and prints a summary as "key=value" lines.
  faults_smtp.py send IP SENDER RCPT FILE
      One message (FILE, "-" for stdin) in one transaction; prints each reply.
  faults_smtp.py raw IP SENDER RCPT
      One transaction with the sender and recipient bytes sent as given (Python
      escapes such as \\r, \\x00 and \\xff are decoded first), nothing sanitized.
  faults_smtp.py nested DEPTH TOKEN / dsn BLOCKS TAG USER TOKEN / big MB TAG TOKEN
      Print a hostile message on stdout.
"""

import collections
import os
import random
import re
import smtplib
import socket
import sys
import threading
import time

# test_faults.sh talks to Postfix on 25; test_sendmail.sh to its Sendmail's own port.
SERVER = ("127.0.0.1", int(os.environ.get("FAULTS_SMTP_PORT", "25")))


def message_for(mid, sender, rcpt):
    frm = sender or "MAILER-DAEMON@remote.example"
    return (
        f"From: <{frm}>\r\nTo: <{rcpt}>\r\nSubject: faults {mid}\r\n"
        f"Message-ID: <{mid}@load.example>\r\n\r\nLoad message {mid}.\r\n"
    ).encode()


class Load:
    def __init__(self, plan, progress, deadline, conns):
        self.fresh = collections.deque(plan)
        self.pending = []  # deferred: (not before, message)
        self.lock = threading.Lock()
        self.progress = progress
        self.deadline = time.monotonic() + deadline
        self.conns = conns
        self.accepted = 0
        self.retries = 0
        self.drops = 0
        self.rejected = []
        self.inflight = 0
        self.retried = set()  # ids deferred at least once
        self.codes = collections.Counter()  # replies that deferred a message

    def take(self):
        """The next message due, or None when there is nothing left to do."""
        while True:
            with self.lock:
                if time.monotonic() > self.deadline:
                    return None
                now = time.monotonic()
                for i, (due, m) in enumerate(self.pending):
                    if due <= now:
                        del self.pending[i]
                        self.inflight += 1
                        return m
                if self.fresh:
                    self.inflight += 1
                    return self.fresh.popleft()
                if not self.pending and self.inflight == 0:
                    return None
            time.sleep(0.05)

    def done(self, m, outcome, code=None):
        with self.lock:
            self.inflight -= 1
            if outcome == "ok":
                self.accepted += 1
                if self.accepted % 25 == 0:
                    with open(self.progress, "w") as f:
                        f.write(f"{self.accepted}\n")
            elif outcome == "rejected":
                self.rejected.append(m[0])
            else:
                # Deferred, as an MTA would: again after a short, jittered pause.
                self.retries += 1
                self.retried.add(m[0])
                self.codes[code or "dropped"] += 1
                if outcome == "dropped":
                    self.drops += 1
                self.pending.append((time.monotonic() + random.uniform(0.3, 1.0), m))

    def worker(self):
        conns = {}  # client IP -> open smtplib.SMTP
        sent_on = {}
        while True:
            m = self.take()
            if m is None:
                break
            mid, ip, sender, rcpt = m
            code = None
            try:
                s = conns.get(ip)
                if s is None or sent_on[ip] >= 20:  # a new connection now and then
                    if s is not None:
                        close(s)
                    s = smtplib.SMTP(timeout=60, source_address=(ip, 0))
                    s.connect(*SERVER)
                    s.ehlo(f"load-{ip}.example")
                    conns[ip], sent_on[ip] = s, 0
                sent_on[ip] += 1
                s.sendmail(sender, [rcpt], message_for(mid, sender, rcpt))
                outcome = "ok"
            except smtplib.SMTPRecipientsRefused as e:
                code = list(e.recipients.values())[0][0]
                outcome = "rejected" if code >= 500 else "deferred"
            except smtplib.SMTPResponseException as e:
                code = e.smtp_code
                outcome = "rejected" if code >= 500 else "deferred"
            except (OSError, smtplib.SMTPException):
                outcome = "dropped"
            if outcome != "ok" and ip in conns:
                close(conns.pop(ip))  # after a 4xx an MTA closes and retries later
            self.done(m, outcome, code)
        for s in conns.values():
            close(s)

    def run(self):
        start = time.monotonic()
        threads = [threading.Thread(target=self.worker) for _ in range(self.conns)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.monotonic() - start
        with open(self.progress, "w") as f:
            f.write(f"{self.accepted}\n")
        print(f"accepted={self.accepted}")
        print(f"retries={self.retries}")
        print(f"retried_messages={len(self.retried)}")
        print(f"dropped={self.drops}")
        print("deferred_by=" + ",".join(f"{c}x{n}" for c, n in sorted(self.codes.items(), key=str)))
        print(f"rejected={len(self.rejected)} {' '.join(self.rejected[:5])}")
        print(f"unsent={len(self.pending) + len(self.fresh)}")
        print(f"seconds={took:.1f}")
        print(f"per_second={self.accepted / took:.0f}")


def close(s):
    try:
        s.quit()
    except (OSError, smtplib.SMTPException):
        s.close()


def load(argv):
    plan = []
    with open(argv[0]) as f:
        for line in f:
            mid, ip, sender, rcpt = line.rstrip("\n").split("\t")
            plan.append((mid, ip, sender, rcpt))
    Load(plan, argv[1], float(argv[2]), int(argv[3])).run()


def send(argv):
    ip, sender, rcpt, path = argv
    data = sys.stdin.buffer.read() if path == "-" else open(path, "rb").read()
    s = smtplib.SMTP(timeout=300, source_address=(ip, 0))
    s.connect(*SERVER)
    s.ehlo("faults.example")
    print("MAIL", *s.mail(sender))
    code, text = s.rcpt(rcpt)
    print("RCPT", code, text)
    if code < 300:
        print("DATA", *s.data(data))
    close(s)


def unescape(text):
    return text.encode("latin-1").decode("unicode_escape").encode("latin-1")


def raw(argv):
    """Replies come back as "STEP CODE text" lines, with control bytes shown as
    Python escapes so that the shell can look at them safely; the last line counts
    control bytes inside replies and reply lines without a reply code."""
    ip, sender, rcpt = argv
    sock = socket.create_connection(SERVER, timeout=30, source_address=(ip, 0))
    f = sock.makefile("rb")
    bad = {"control": 0, "malformed": 0}

    def show(step, line):
        line = line.rstrip(b"\r\n")
        bad["control"] += sum(1 for b in line if b < 0x20 or b == 0x7F)
        if not re.match(rb"\d{3}([ -]|$)", line):
            bad["malformed"] += 1
        print(step, line.decode("latin-1").encode("unicode_escape").decode())

    def reply(step):
        while True:
            line = f.readline()
            if not line:
                print(step, "(connection closed)")
                return b"000"
            show(step, line)
            if line[3:4] != b"-":
                return line[:3]

    def cmd(step, data):
        sock.sendall(data + b"\r\n")
        return reply(step)

    try:
        reply("BANNER")
        cmd("EHLO", b"EHLO raw.example")
        if cmd("MAIL", b"MAIL FROM:<" + unescape(sender) + b">")[:1] == b"2":
            if cmd("RCPT", b"RCPT TO:<" + unescape(rcpt) + b">")[:1] == b"2":
                if cmd("DATA", b"DATA")[:1] == b"3":
                    cmd("DOT", b"Subject: raw\r\n\r\nraw test\r\n.")
        # Replies to whatever a CR/LF split off the commands come before QUIT's.
        sock.sendall(b"QUIT\r\n")
        while True:
            line = f.readline()
            if not line:
                break
            show("QUIT", line)
    except OSError as e:
        print("ERROR", e)
    sock.close()
    print(f"replies control={bad['control']} malformed={bad['malformed']}")


def nested(argv):
    depth, token = int(argv[0]), argv[1]
    out = [
        f"From: <auto-{token}@remote.example>",
        f"Subject: nested {token}",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
    ]
    for i in range(depth):
        out += [f'Content-Type: multipart/mixed; boundary="b{i}"', "", f"--b{i}"]
    out += ["Content-Type: text/plain", "", "I am out of the office.", ""]
    for i in reversed(range(depth)):
        out += [f"--b{i}--", ""]
    sys.stdout.write("\r\n".join(out) + "\r\n")


def dsn(argv):
    blocks, tag, user, token = int(argv[0]), argv[1], argv[2], argv[3]
    w = sys.stdout.write
    w(f"From: Mail Delivery System <MAILER-DAEMON@mx.remote.example>\r\nTo: <{tag}>\r\n"
      f"Subject: Undelivered Mail ({token})\r\nMIME-Version: 1.0\r\n"
      f'Content-Type: multipart/report; report-type=delivery-status; boundary="R-{token}"\r\n\r\n'
      f"--R-{token}\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n\r\n"
      f"--R-{token}\r\nContent-Type: message/delivery-status\r\n\r\n"
      "Reporting-MTA: dns; mx.remote.example\r\n\r\n")
    for i in range(blocks):
        w(f"Final-Recipient: rfc822; u{i}-{token}@remote.example\r\nAction: failed\r\n"
          "Status: 5.1.1\r\n\r\n")
    w(f"--R-{token}\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: <{user}>\r\n"
      f"Subject: hello\r\n\r\n--R-{token}--\r\n")


def big(argv):
    mb, tag, token = int(argv[0]), argv[1], argv[2]
    w = sys.stdout.write
    w(f"From: <MAILER-DAEMON@remote.example>\r\nTo: <{tag}>\r\nSubject: big {token}\r\n\r\n")
    line = "x" * 998 + "\r\n"
    for _ in range(mb * 1024 * 1024 // len(line)):
        w(line)
    w(f"end of big {token}\r\n")


if __name__ == "__main__":
    commands = {"load": load, "send": send, "raw": raw, "nested": nested, "dsn": dsn, "big": big}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]](sys.argv[2:])
