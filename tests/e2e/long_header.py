#!/usr/bin/env python3
"""A message with one long folded References: header, and what became of that header.

  long_header.py make OUT SIZE TOKEN [HEADER...]
      writes a message (CRLF lines) whose References: header, folded into lines of
      message IDs, is about SIZE bytes; HEADER lines ("Name: value") come first.
  long_header.py check SENT DELIVERED EXPECT
      compares the References: header of the delivered message (an smtp-sink dump or
      an mbox message) with the one sent. EXPECT is "whole" (delivered unchanged) or a
      byte limit L: cut, as Postfix's cleanup cuts a header longer than
      header_size_limit, after the last whole line that ends within L bytes (lines
      joined by one newline, name included). Prints "ok ..." or "bad ...".
"""
import sys


def header_lines(text, name="references"):
    """The lines of the first header NAME in text (header section only), no line ends."""
    out = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if line == "" and not out:
            break  # end of the header section
        if out:
            if line[:1] in (" ", "\t"):
                out.append(line)
                continue
            break
        if line.lower().startswith(name + ":"):
            out.append(line)
    return out


def size(lines):
    return len("\n".join(lines))


def make(path, want, token, headers):
    ids, total, i = [], 0, 0
    while total < want:
        msgid = "<%s.%06d@long.example>" % (token, i)
        ids.append(msgid)
        total += len(msgid) + 2
        i += 1
    lines = list(headers) + ["References: " + ids[0]] + [" " + m for m in ids[1:]]
    lines += ["", "This is a test mailing", ""]
    with open(path, "w", newline="") as f:
        f.write("\r\n".join(lines))


def check(sent_path, delivered_path, expect):
    sent = header_lines(open(sent_path, encoding="latin-1").read())
    got = header_lines(open(delivered_path, encoding="latin-1").read())
    if expect == "whole":
        want = sent
    else:
        limit = int(expect)
        want = []
        for line in sent:
            if size(want + [line]) > limit:
                break
            want.append(line)
    facts = "sent %d lines/%d bytes, delivered %d lines/%d bytes, expected %d lines/%d bytes" % (
        len(sent), size(sent), len(got), size(got), len(want), size(want))
    print(("ok " if got == want else "bad ") + facts)
    return 0 if got == want else 1


if __name__ == "__main__":
    if len(sys.argv) >= 5 and sys.argv[1] == "make":
        make(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5:])
    elif len(sys.argv) == 5 and sys.argv[1] == "check":
        sys.exit(check(sys.argv[2], sys.argv[3], sys.argv[4]))
    else:
        sys.exit(__doc__)
