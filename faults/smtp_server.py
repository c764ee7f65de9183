"""The suite's SMTP server, in its own process like a real mail server.

    python -m faults.smtp_server PORT LEDGER [--delay-file PATH]

Accepts every message and appends one line per (message, recipient) to LEDGER
*before* answering 250: ``time <TAB> Message-ID <TAB> recipient``. The file is
line-buffered, so each line reaches the kernel at once and survives a
``kill -9`` of this process — what the client was told "accepted" is exactly
what the ledger holds (the client may still lose the 250 answer: that window
is what a crash-safe sender must handle by resending with the same Message-ID).

A message fully received is accepted even when the client disconnects while it
waits for the answer, as a real MTA does once it has the final ".".

``--delay-file`` holds a number of seconds, re-read for every message: each DATA
is held that long before it is accepted. A slow mail server keeps a fan-out in
flight long enough to inject faults into it, and the harness can change the
pace without restarting the server (a restart would itself be a fault).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import threading
import time

from aiosmtpd.controller import Controller

_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(.*?)\r?$", re.IGNORECASE | re.MULTILINE)


def message_id(content: bytes) -> str:
    """The Message-ID header (from the header block only), or '-' when there is none."""
    head = content.split(b"\r\n\r\n", 1)[0]
    found = _MESSAGE_ID.search(head)
    return found.group(1).strip().decode(errors="replace") if found else "-"


class Ledger:
    def __init__(self, path: str, delay_file: str | None) -> None:
        self.file = open(path, "a", buffering=1)
        self.delay_file = delay_file

    def delay(self) -> float:
        if not self.delay_file:
            return 0.0
        try:
            with open(self.delay_file) as f:
                return float(f.read().strip() or 0)
        except (OSError, ValueError):
            return 0.0

    async def handle_DATA(self, server, session, envelope):
        # Shielded: aiosmtpd cancels the handler when the client disconnects, but a real MTA
        # that has the whole message (the client sent the final ".") delivers it even if the
        # client is gone before reading the 250 — the window a crash-safe sender must cover.
        await asyncio.shield(asyncio.ensure_future(self._accept(envelope)))
        return "250 OK"

    async def _accept(self, envelope) -> None:
        if (delay := self.delay()) > 0:
            await asyncio.sleep(delay)
        mid = message_id(envelope.content)
        now = time.time()
        for rcpt in envelope.rcpt_tos:
            self.file.write(f"{now:.6f}\t{mid}\t{rcpt}\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("ledger")
    parser.add_argument("--delay-file")
    args = parser.parse_args()
    controller = Controller(
        Ledger(args.ledger, args.delay_file), hostname="127.0.0.1", port=args.port, data_size_limit=64 * 1024 * 1024
    )
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("ready", flush=True)
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
