"""A real SMTP server for nurture's tests (aiosmtpd): keeps every message it accepts as
<n>.eml in a directory; refuses recipients whose address starts with "hard-bounce" (550) or
"soft-bounce" (451), as a mail server would. Prints "ready <port>" when it listens.

    python3 smtp_peer.py <port> <directory>
"""
import asyncio
import itertools
import pathlib
import sys

from aiosmtpd.controller import Controller


class Keep:
    def __init__(self, directory):
        self.directory = pathlib.Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.counter = itertools.count(1)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("hard-bounce"):
            return "550 5.1.1 <%s>: recipient address rejected: no such user" % address
        if address.startswith("soft-bounce"):
            return "451 4.3.0 <%s>: temporarily unavailable, try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        n = next(self.counter)
        tmp = self.directory / ("%06d.tmp" % n)
        tmp.write_bytes(envelope.original_content or envelope.content)
        tmp.rename(self.directory / ("%06d.eml" % n))
        return "250 Message accepted for delivery"


def main():
    port, directory = int(sys.argv[1]), sys.argv[2]
    controller = Controller(Keep(directory), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready %d" % port, flush=True)
    try:
        asyncio.get_event_loop().run_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
