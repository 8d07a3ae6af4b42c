#!/usr/bin/env python3
"""Checks a kill-9-under-load run against its plan (e2e_write_load_plan in lib.sh).

usage: load_check.py PLAN SINK MAILBOX RUN SENDERS_OUT MTA

Counts the plan's Message-IDs (those of RUN) in the dumps at SINK and in the mbox
MAILBOX: every message delivered exactly once; outbound ones (from 127.0.0.1) at the
sink with a BATV-signed sender of the planned local sender and the planned recipient;
bounces (from 127.0.0.2) in the mailbox. MTA postfix also checks the envelope that
local(8) writes (Return-Path <>, Delivered-To the user). The distinct outbound senders
go to SENDERS_OUT, one per line. Prints "bad ..." lines (at most 10) and one
"numbers ..." line.
"""
import collections
import mailbox
import os
import re
import sys

plan_path, sink, mbox, run, senders_path, mta = sys.argv[1:]
plan = {}
for line in open(plan_path):
    mid, ip, sender, rcpt = line.rstrip("\n").split("\t")
    plan[mid] = (ip, sender, rcpt)
seen = collections.Counter()
bad = []
senders = set()
outbound = inbound = 0
mid_re = re.compile(r"^Message-ID: <(L\d{5}\.[^@>]+)@load\.example>", re.M | re.I)


def heads():
    """(where, head) of every dump at the sink, then of every message in the mailbox."""
    for name in os.listdir(sink):
        yield "sink", open(os.path.join(sink, name), "rb").read(8192).decode("latin-1")
    if os.path.exists(mbox):
        box = mailbox.mbox(mbox, create=False)
        for key in box.keys():
            yield "mailbox", box.get_bytes(key)[:8192].decode("latin-1")


for where, head in heads():
    m = mid_re.search(head)
    if not m or not m.group(1).endswith("." + run):  # the mailbox may hold other runs'
        continue
    mid = m.group(1)
    seen[mid] += 1
    if mid not in plan:
        bad.append(f"{mid}: not in the plan")
        continue
    ip, sender, rcpt = plan[mid]
    if ip == "127.0.0.1":
        outbound += 1
        frm = re.search(r"^X-Mail-Args: <([^>]*)>", head, re.M)
        frm = frm.group(1) if frm else "?"
        to = re.findall(r"^X-Rcpt-Args: <([^>]*)>", head, re.M)
        senders.add(frm)
        if where != "sink":
            bad.append(f"{mid}: outbound message in the mailbox")
        if not re.fullmatch(r"prvs=\d\d{3}[0-9a-f]{6}=" + re.escape(sender), frm):
            bad.append(f"{mid}: outbound sender <{frm}> is not signed")
        if to != [rcpt]:
            bad.append(f"{mid}: recipients {to}, want [{rcpt}]")
    else:
        inbound += 1
        if where != "mailbox":
            bad.append(f"{mid}: bounce to {rcpt} left for the sink")
        if mta == "postfix":
            # local(8) writes the envelope as Return-Path and Delivered-To.
            user = rcpt.split("=", 2)[2]
            frm = re.findall(r"^Return-Path: <([^>]*)>", head, re.M)
            to = re.findall(r"^Delivered-To: (\S+)", head, re.M)
            if frm != [""]:
                bad.append(f"{mid}: bounce delivered with Return-Path {frm}")
            if to != [user]:
                bad.append(f"{mid}: bounce delivered to {to}, want [{user}] (sent to {rcpt})")
missing = [m for m in plan if seen[m] == 0]
dups = [m for m in plan if seen[m] > 1]
bad += [f"{m}: never delivered" for m in missing[:5]]
bad += [f"{m}: delivered {seen[m]} times" for m in dups[:5]]
with open(senders_path, "w") as f:
    f.write("".join(s + "\n" for s in sorted(senders)))
for b in bad[:10]:
    print("bad", b)
print(f"numbers planned={len(plan)} delivered-ids={sum(1 for m in plan if seen[m])} "
      f"missing={len(missing)} duplicated={len(dups)} outbound={outbound} bounces={inbound} "
      f"bad={len(bad)}")
