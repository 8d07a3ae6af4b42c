#!/usr/bin/python3
"""DKIM checks on an smtp-sink dump, for test_dkim.sh (python3-dkim, no DNS).

  dkim_check.py tags DUMP                     the topmost DKIM-Signature's d=, s=, h=
                                              as "d=...", "s=...", one "h=NAME" per
                                              signed header (lower case)
  dkim_check.py verify DUMP TXT DOMAIN        verify it; the only key is the record
                                              opendkim-genkey wrote to TXT, served
                                              for SELECTOR._domainkey.DOMAIN
  dkim_check.py tamper DUMP HEADER OUT        copy DUMP to OUT with one character of
                                              HEADER's value changed

Exit status: 0 done (verify: the signature verifies), 1 verify: it does not,
2 usage or bad input (no signature, no such header, unreadable key record).
"""
import re
import sys

import dkim


def die(why):
    print(f"dkim_check: {why}", file=sys.stderr)
    sys.exit(2)


def read_message(path):
    # smtp-sink writes LF line ends; DKIM is computed over the CRLF wire form.
    with open(path, "rb") as f:
        data = f.read()
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def split_headers(msg):
    """The header block as a list of (name, raw field incl. folds), and the rest."""
    end = msg.find(b"\r\n\r\n")
    if end < 0:
        die("no end of headers")
    fields = []
    for line in msg[: end + 2].split(b"\r\n")[:-1]:
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1][1] += b"\r\n" + line
        else:
            fields.append([line.split(b":", 1)[0].strip().lower(), line])
    return fields, msg[end + 2 :]


def signature_tags(msg):
    fields, _ = split_headers(msg)
    sigs = [raw for name, raw in fields if name == b"dkim-signature"]
    if not sigs:
        die("no DKIM-Signature header")
    value = re.sub(rb"\s+", b"", sigs[0].split(b":", 1)[1]).decode("ascii", "replace")
    tags = {}
    for part in value.split(";"):
        if "=" in part:
            k, v = part.split("=", 1)
            tags[k] = v
    return tags


def key_record(path):
    # 'SEL._domainkey IN TXT ( "v=DKIM1; ..." "p=..." "..." ) ; comment'
    with open(path) as f:
        text = f.read()
    name = text.split(None, 1)[0] if text.strip() else ""
    # The quoted strings inside the parentheses, joined; the comment follows them.
    record = "".join(re.findall(r'"([^"]*)"', text.split(")", 1)[0]))
    if not name.endswith("._domainkey") or "p=" not in record:
        die(f"{path}: not an opendkim-genkey TXT record")
    return name, record.encode("ascii")


def cmd_tags(dump):
    tags = signature_tags(read_message(dump))
    print(f"d={tags.get('d', '')}")
    print(f"s={tags.get('s', '')}")
    for h in tags.get("h", "").split(":"):
        if h:
            print(f"h={h.lower()}")
    return 0


def cmd_verify(dump, txt, domain):
    name, record = key_record(txt)
    want = f"{name}.{domain}.".lower().encode("ascii")
    asked = []

    def dnsfunc(qname, timeout=5):
        asked.append(qname)
        return record if qname.lower() == want else None

    msg = read_message(dump)
    signature_tags(msg)  # a message without a signature is bad input, not a failure
    ok = dkim.verify(msg, dnsfunc=dnsfunc)
    if not asked:
        die("the verifier looked up no key")
    print("verified" if ok else f"verification failed (key asked for: {asked[0].decode()})")
    return 0 if ok else 1


def cmd_tamper(dump, header, out):
    msg = read_message(dump)
    fields, body = split_headers(msg)
    hits = [f for f in fields if f[0] == header.lower().encode("ascii")]
    if len(hits) != 1:
        die(f"{len(hits)} {header} headers, expected 1")
    raw = hits[0][1]
    # Change the last character of the value: a letter or digit in every value
    # backstop writes, so the change stays a valid header.
    last = raw[-1:]
    raw_new = raw[:-1] + (b"0" if last != b"0" else b"1")
    hits[0][1] = raw_new
    with open(out, "wb") as f:
        f.write(b"".join(r + b"\r\n" for _, r in fields) + body)
    return 0


def main(argv):
    if len(argv) == 3 and argv[1] == "tags":
        return cmd_tags(argv[2])
    if len(argv) == 5 and argv[1] == "verify":
        return cmd_verify(argv[2], argv[3], argv[4])
    if len(argv) == 5 and argv[1] == "tamper":
        return cmd_tamper(argv[2], argv[3], argv[4])
    die("usage: dkim_check.py tags DUMP | verify DUMP TXT DOMAIN | tamper DUMP HEADER OUT")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
