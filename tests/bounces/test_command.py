"""`notiflow bounces` as a person runs it: refuses to start without a bounce address; otherwise serves until Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import aiosmtplib
from sqlalchemy import select

from notiflow.models import BounceReportRow
from programs.dev.ports import free_port

COMMAND = [sys.executable, "-c", "from programs.cli import app; app()", "bounces"]


def _env(**extra: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFLOW_", "SMTP_"))} | extra


def test_without_a_bounce_address_it_says_what_to_set():
    result = subprocess.run(COMMAND, capture_output=True, text=True, timeout=60, env=_env())
    assert result.returncode == 2 and "NOTIFLOW_BOUNCE_ADDRESS is not set" in result.stderr


async def test_it_serves_the_bounce_address_and_stops_on_ctrl_c(database_url, db):
    port = free_port()
    process = subprocess.Popen(
        [*COMMAND, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(NOTIFLOW_DATABASE_URL=database_url, NOTIFLOW_BOUNCE_ADDRESS="bounces@notiflow.test"),
    )
    try:
        line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 60)
        assert f"smtp://127.0.0.1:{port} for bounces@notiflow.test" in line, line
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port) as client:
            await client.sendmail("", ["bounces@notiflow.test"], b"Subject: hello\r\n\r\nnot a report")
        async with db() as session:
            (report,) = (await session.scalars(select(BounceReportRow))).all()
        assert report.kind == "UNKNOWN" and report.unmatched_reason
        process.send_signal(signal.SIGINT)
        assert await asyncio.to_thread(process.wait, 30) == 0
    finally:
        if process.poll() is None:
            process.kill()
