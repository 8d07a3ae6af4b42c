#!/usr/bin/env python3
"""Per-message latency through an SMTP server, one message at a time.

usage: smtp_latency.py LABEL HOST PORT SENDER RECIPIENT COUNT

Each message is a whole session (connect, EHLO, MAIL, RCPT, DATA, QUIT), the way a
remote MTA delivers one message; the time is from connect to the server's answer
to the end of DATA. Prints the label, the count, and p50/p90/p99/max in ms.
Sequential on purpose: this measures what one message waits, not throughput.
"""
import smtplib
import sys
import time


def main():
    label, host, port, sender, rcpt, count = sys.argv[1:7]
    body = ("Subject: latency probe\r\nFrom: <%s>\r\nTo: <%s>\r\n\r\n" % (sender, rcpt)
            + "x" * 70 + "\r\n") * 1
    times = []
    failures = 0
    for _ in range(int(count)):
        t0 = time.perf_counter()
        try:
            with smtplib.SMTP(host, int(port), local_hostname="probe.example") as s:
                s.sendmail(sender, [rcpt], body)
                times.append(time.perf_counter() - t0)
        except smtplib.SMTPException:
            failures += 1
    times.sort()

    def pct(p):
        return 1000 * times[min(len(times) - 1, int(p / 100 * len(times)))] if times else float("nan")

    print("%-48s n=%-5d p50 %6.2f ms  p90 %6.2f ms  p99 %6.2f ms  max %6.2f ms  failed %d"
          % (label, len(times), pct(50), pct(90), pct(99), 1000 * times[-1] if times else float("nan"),
             failures))


if __name__ == "__main__":
    main()
