"""An SMTP sink in its own process, as a real mail server would be: accepts everything,
appends one line per message (wall-clock receipt time, X-Notiflow-Issue header) to a file.

    python -m bench.smtp_sink PORT LOGFILE
"""

from __future__ import annotations

import signal
import sys
import threading
import time

from aiosmtpd.controller import Controller

MARKER = b"X-Notiflow-Issue: "


class Recorder:
    def __init__(self, path: str):
        self.log = open(path, "a", buffering=1)

    async def handle_DATA(self, server, session, envelope):
        content = envelope.content
        start = content.find(MARKER)
        issue = content[start + len(MARKER) : content.find(b"\r\n", start)].decode() if start >= 0 else "-"
        self.log.write(f"{time.time()}\t{issue}\n")
        return "250 OK"


def main() -> None:
    port, path = int(sys.argv[1]), sys.argv[2]
    controller = Controller(Recorder(path), hostname="127.0.0.1", port=port)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("ready", flush=True)
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
