#!/usr/bin/python3
"""The customer's mail server behind the gateway in tests/e2e/test_gateway.sh.

  customer_smtp.py PORT DIR
      Listens on 127.0.0.1:PORT. Refuses at RCPT, as a real server would:
        nobody@customer.example  550 5.1.1 (the mailbox does not exist: hard)
        soft@customer.example    452 4.2.2 (mailbox full: soft)
        policy@customer.example  550 5.7.1 (a policy refusal: not about the mailbox)
      accepts every other recipient, and writes each message it accepts to DIR as
      one file: "MAIL FROM:<sender>", one "RCPT TO:<rcpt>" line each, a blank line,
      then the message. Runs until killed.
"""

import asyncio
import os
import sys

from aiosmtpd.controller import Controller

REFUSALS = {
    "nobody@customer.example": "550 5.1.1 <nobody@customer.example>: Recipient address "
    "rejected: User unknown in local recipient table",
    "soft@customer.example": "452 4.2.2 <soft@customer.example>: Mailbox full",
    "policy@customer.example": "550 5.7.1 <policy@customer.example>: Recipient address "
    "rejected: policy",
}


class Customer:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        refusal = REFUSALS.get(address.lower())
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        lines = [f"MAIL FROM:<{envelope.mail_from}>"]
        lines += [f"RCPT TO:<{r}>" for r in envelope.rcpt_tos]
        data = envelope.original_content or b""
        tmp = os.path.join(self.out_dir, f".{os.getpid()}.{self.count}")
        with open(tmp, "wb") as f:
            f.write(("\n".join(lines) + "\n\n").encode() + data)
        # Complete files only: the test reads whatever it finds.
        os.rename(tmp, os.path.join(self.out_dir, f"msg.{os.getpid()}.{self.count}"))
        return "250 2.0.0 Ok: queued"


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: customer_smtp.py PORT DIR")
    port, out_dir = int(sys.argv[1]), sys.argv[2]
    controller = Controller(Customer(out_dir), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        asyncio.new_event_loop().run_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
