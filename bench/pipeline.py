"""Pipeline benchmarks, printed as ratios against the bare engine and a raw SMTP blast (DESIGN §9).

    python -m bench.pipeline [--events 200] [--fanout 1000] [--rate 5] [--seconds 10]

Everything runs on this machine in one go: a Temporal dev server (in memory), a
fresh PostgreSQL database, an aiosmtpd sink. Not part of CI's pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import uvloop
from rich.console import Console
from rich.table import Table
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from notiflow.client import NotificationClient
from notiflow.contracts import User
from notiflow.db import make_engine, make_sessionmaker
from notiflow.directory import upsert_users
from notiflow.templates.store import seed_templates
from notiflow.settings import Settings
from notiflow.dev.binaries import find_binary
from notiflow.temporal import DATA_CONVERTER, SEARCH_ATTRIBUTES
from tests.factories import event, issue_dict, ref
from notiflow.dev.ports import free_port
from tests.services import migrated_database
from bench.bare import BareActivities, BareEventWorkflow, BareTimerWorkflow
from workers.main import build_worker

console = Console()


class SinkProcess:
    """bench.smtp_sink in a subprocess; ``received()`` reads what it has accepted so far."""

    def __init__(self) -> None:
        self.port = free_port()
        self.log = Path(tempfile.mkstemp(prefix="notiflow-sink-", suffix=".log")[1])

    def __enter__(self) -> "SinkProcess":
        self.process = subprocess.Popen([sys.executable, "-m", "bench.smtp_sink", str(self.port), str(self.log)],
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline().strip() == "ready"
        return self

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait(10)
        self.log.unlink()

    def received(self) -> list[tuple[float, str]]:
        lines = self.log.read_text().splitlines()
        return [(float(at), issue) for at, issue in (line.split("\t") for line in lines)]

    async def wait_for(self, count: int, timeout: float = 60) -> list[tuple[float, str]]:
        deadline = time.monotonic() + timeout
        while len(got := self.received()) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"sink received {len(got)} of {count}")
            await asyncio.sleep(0.05)
        return got


async def _concurrently(count: int, make) -> float:
    started = time.perf_counter()
    await asyncio.gather(*(make(i) for i in range(count)))
    return time.perf_counter() - started


async def run_all(args, url: str, smtp: SinkProcess):
    engine = make_engine(url, pool_size=5)
    sessions = make_sessionmaker(engine)
    await seed_templates(sessions)
    async with sessions.begin() as session:
        await upsert_users(session, [User(id="u-bench", name="Bench", email="bench@example.mg"),
                                     User(id="u-actor", name="Actor", email="actor@example.mg")])
    settings = Settings(database_url=url, task_queue=f"bench-{uuid.uuid4().hex[:6]}", smtp_host="127.0.0.1",
                        smtp_port=smtp.port, retry_initial_seconds=0.5, max_per_hour=1_000_000)
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=find_binary("temporal"),
                                                data_converter=DATA_CONVERTER, search_attributes=SEARCH_ATTRIBUTES)
    async with env:
        console.log(f"bare engine, same shape: {args.events} events")
        bare = await bare_engine(env.client, args.events)
        async with build_worker(env.client, settings):
            nc = NotificationClient(env.client, settings)
            await pipeline(nc, smtp, 10)  # warm-up: imports, pools, template cache
            console.log(f"pipeline: {args.events} events")
            ours = await pipeline(nc, smtp, args.events)
            console.log(f"raw SMTP blast: {args.fanout} messages over 10 connections")
            blast = await raw_smtp_blast(smtp.port, args.fanout)
            console.log(f"fan-out: one event to {args.fanout} recipients")
            fan = await fanout(nc, smtp, sessions, args.fanout)
            console.log(f"latency: {args.rate}/s for {args.seconds} s")
            delays = await latency(nc, smtp, args.rate, args.seconds)
    await engine.dispose()
    return bare, ours, blast, fan, delays


async def bare_engine(client, count: int) -> float:
    queue = f"bench-bare-{uuid.uuid4().hex[:6]}"
    activities = BareActivities(client, queue)
    async with Worker(client, task_queue=queue, workflows=[BareEventWorkflow, BareTimerWorkflow],
                      activities=activities.all(), max_concurrent_activities=50):
        elapsed = await _concurrently(count, lambda i: client.execute_workflow(
            BareEventWorkflow.run, f"{queue}-{i}", id=f"bare-{queue}-{i}", task_queue=queue))
    return count / elapsed


async def pipeline(nc: NotificationClient, smtp: SinkProcess, count: int) -> float:
    recipient = User(id="u-bench", name="Bench", email="bench@example.mg", locale="en")
    actor = User(id="u-actor", name="Actor", email="actor@example.mg")
    events = [event("ISSUE_ASSIGNED", issue=issue_dict(assignee=ref(recipient), priority="LOW"), actor=actor)
              for _ in range(count)]
    before = len(smtp.received())

    async def one(i: int):
        handle = nc.temporal.get_workflow_handle(await nc.publish(events[i]))
        await handle.result()

    elapsed = await _concurrently(count, one)
    await smtp.wait_for(before + count)
    return count / elapsed


async def raw_smtp_blast(port: int, count: int, connections: int = 10) -> float:
    async def sender(share: int) -> None:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port) as smtp:
            for i in range(share):
                message = EmailMessage()
                message["From"], message["To"], message["Subject"] = "a@example.mg", f"r{i}@example.mg", "blast"
                message.set_content("hello")
                await smtp.send_message(message)

    started = time.perf_counter()
    await asyncio.gather(*(sender(count // connections) for _ in range(connections)))
    return count / (time.perf_counter() - started)


async def fanout(nc: NotificationClient, smtp: SinkProcess, sessions, recipients: int) -> float:
    admins = [User(id=f"u-fan-{i}", name=f"Admin {i}", email=f"admin{i}@example.mg", roles=["admin"])
              for i in range(recipients)]
    async with sessions.begin() as session:
        await upsert_users(session, admins)
    before = len(smtp.received())
    started = time.perf_counter()
    handle = nc.temporal.get_workflow_handle(await nc.publish(event("ISSUE_CREATED", issue=issue_dict(priority="LOW"))))
    await handle.result()
    elapsed = time.perf_counter() - started
    assert len(smtp.received()) - before >= recipients
    async with sessions.begin() as session:
        from sqlalchemy import text

        await session.execute(text("UPDATE users SET roles = '{}' WHERE id LIKE 'u-fan-%'"))
    return recipients / elapsed


async def latency(nc: NotificationClient, smtp: SinkProcess, rate: float, seconds: float) -> list[float]:
    """Publish at a steady rate; time from publish to the SMTP server accepting the mail."""
    recipient = User(id="u-bench", name="Bench", email="bench@example.mg")
    actor = User(id="u-actor", name="Actor", email="actor@example.mg")
    sent_at: dict[str, float] = {}
    before = len(smtp.received())
    tasks = []
    for _ in range(int(rate * seconds)):
        issue = issue_dict(issue_id=f"LAT-{uuid.uuid4().hex[:8]}", assignee=ref(recipient), priority="LOW")
        sent_at[issue["id"]] = time.time()
        tasks.append(asyncio.create_task(nc.publish(event("ISSUE_ASSIGNED", issue=issue, actor=actor))))
        await asyncio.sleep(1 / rate)
    await asyncio.gather(*tasks)
    accepted = {issue: at for at, issue in (await smtp.wait_for(before + len(sent_at)))[before:]}
    return sorted(accepted[k] - sent_at[k] for k in sent_at if k in accepted)


async def main(args) -> None:
    async with migrated_database("notiflow_bench") as url:
        with SinkProcess() as smtp:
            bare, ours, blast, fan, delays = await run_all(args, url, smtp)

    p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))] if delays else float("nan")
    table = Table(title="notiflow vs baselines (same machine, same run)")
    for column in ("measure", "notiflow", "baseline", "ratio", "target"):
        table.add_column(column)
    table.add_row("events/s vs bare engine (same 4 activities + timer workflow)", f"{ours:.1f}", f"{bare:.1f}", f"{ours / bare:.2f}", "≥ 0.7")
    table.add_row(f"fan-out mails/s ({args.fanout} recipients) vs raw SMTP blast", f"{fan:.0f}", f"{blast:.0f}",
                  f"{fan / blast:.2f}", "≥ 0.5")
    table.add_row(f"publish → SMTP accepted at {args.rate}/s: p50 / p99 (s)",
                  f"{statistics.median(delays):.3f} / {p99:.3f}" if delays else "-", "", "", "p99 ≤ 1 s")
    console.print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--fanout", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    uvloop.run(main(parser.parse_args()))  # as `notiflow worker` runs
