"""Pipeline benchmarks, as ratios against baselines measured in the same run (issue 12, DESIGN §9).

    python -m bench.pipeline [--events 200] [--fanout 1000] [--seconds 10] [--no-scale-out] [--json FILE]

Everything runs on this machine in one go: a Temporal dev server (in memory), a
fresh PostgreSQL database, an SMTP sink in its own process.

- throughput: events/s through the whole pipeline vs the bare engine in the same
  shape (``bench/bare.py``), two interleaved rounds each, so load that comes and
  goes on a shared machine falls on both;
- fan-out: one event to ``--fanout`` recipients vs a raw aiosmtplib blast over
  as many connections as the SMTP pool has;
- latency: publish → SMTP accepted at two thirds of the saturation rate (the
  pipeline throughput just measured);
- scale-out: throughput with 1 and 2 ``notiflow worker`` processes on one task queue.

Throughput is judged with each worker in a process of its own (``notiflow worker`` and
``python -m bench.bare``), the publishing client apart, as in production; the same
comparison with both workers inside the benchmark's process is reported beside it.

Not part of CI's pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
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
from sqlalchemy import text
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bench.bare import BARE_WORKFLOWS, VISIBLE_START, BareActivities, BareEventWorkflow, VisibleBareEventWorkflow
from bench.results import measure, report
from notiflow.client import NotificationClient
from notiflow.contracts import User
from notiflow.db import make_engine, make_sessionmaker
from notiflow.directory import upsert_users
from notiflow.search import SEARCH_ATTRIBUTES
from notiflow.settings import Settings
from notiflow.templates.store import seed_templates
from notiflow.temporal import DATA_CONVERTER
from programs.dev.binaries import find_binary
from programs.dev.ports import free_port
from tests.factories import event, issue_dict, ref
from tests.services import migrated_database
from workers.main import build_worker

console = Console(stderr=True)
#: the SMTP pool of the worker (its default, NOTIFLOW_SMTP_POOL_SIZE), and the raw blast's connection count
CONNECTIONS = Settings.model_fields["smtp_pool_size"].default
BENCH_JWT_SECRET = "bench-secret-" + "x" * 32


class SinkProcess:
    """bench.smtp_sink in a subprocess; ``received()`` reads what it has accepted so far."""

    def __init__(self) -> None:
        self.port = free_port()
        self.log = Path(tempfile.mkstemp(prefix="notiflow-sink-", suffix=".log")[1])

    def __enter__(self) -> SinkProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.smtp_sink", str(self.port), str(self.log)], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout.readline().strip() == "ready"
        return self

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait(10)
        self.log.unlink()

    def count(self) -> int:
        with self.log.open("rb") as f:
            return sum(1 for _ in f)

    def received(self) -> list[tuple[float, str]]:
        lines = self.log.read_text().splitlines()
        return [(float(at), issue) for at, issue in (line.split("\t") for line in lines)]

    async def wait_for(self, count: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while (got := self.count()) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"sink received {got} of {count}")
            await asyncio.sleep(0.05)


async def _concurrently(count: int, make) -> float:
    started = time.perf_counter()
    await asyncio.gather(*(make(i) for i in range(count)))
    return time.perf_counter() - started


def bench_settings(url: str, smtp: SinkProcess, task_queue: str) -> Settings:
    return Settings(
        database_url=url,
        task_queue=task_queue,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_pool_size=CONNECTIONS,
        retry_initial_seconds=0.5,
        max_per_hour=1_000_000,
        jwt_secret=BENCH_JWT_SECRET,
    )


async def run_all(args, url: str, smtp: SinkProcess) -> list[dict]:
    engine = make_engine(url, pool_size=5)
    sessions = make_sessionmaker(engine)
    await seed_templates(sessions)
    async with sessions.begin() as session:
        await upsert_users(
            session,
            [
                User(id="u-bench", name="Bench", email="bench@example.mg"),
                User(id="u-actor", name="Actor", email="actor@example.mg"),
            ],
        )
    settings = bench_settings(url, smtp, f"bench-{uuid.uuid4().hex[:6]}")
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_binary("temporal"),
        data_converter=DATA_CONVERTER,
        search_attributes=SEARCH_ATTRIBUTES,
    )
    results: list[dict] = []
    async with env:
        async with build_worker(env.client, settings):
            nc = NotificationClient(env.client, settings)
            await pipeline(nc, smtp, 20)  # warm-up: imports, pools, template cache
            await bare_engine(env.client, 20)
            bare_time = ours_time = 0.0
            for round_ in range(2):  # interleaved, so a burst of outside load falls on both
                console.log(f"round {round_ + 1}: bare engine, then pipeline, {args.events} events each (in-process)")
                bare_time += args.events / await bare_engine(env.client, args.events)
                ours_time += args.events / await pipeline(nc, smtp, args.events)
            bare_in, ours_in = 2 * args.events / bare_time, 2 * args.events / ours_time
            console.log(f"raw SMTP blast: {args.fanout} messages over {CONNECTIONS} connections")
            blast = await raw_smtp_blast(smtp.port, args.fanout)
            console.log(f"fan-out: one event to {args.fanout} recipients")
            fan = await fanout(nc, smtp, sessions, args.fanout)
            results.append(
                measure(
                    "fan-out",
                    fan,
                    "mails/s",
                    baseline=blast,
                    target=0.5,
                    note=f"one event to {args.fanout} recipients vs a raw aiosmtplib blast",
                )
            )
            rate = max(1.0, round(ours_in * 2 / 3, 1))  # the saturation rate of this worker, measured above
            console.log(f"latency: {rate}/s (2/3 of the {ours_in:.1f} events/s saturation rate) for {args.seconds} s")
            delays = await latency(nc, smtp, rate, args.seconds)
            p50 = statistics.median(delays)
            p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
            results.append(measure("latency p50", p50, "s", note=f"publish → SMTP accepted at {rate}/s"))
            results.append(
                measure(
                    "latency p99",
                    p99,
                    "s",
                    target=0.5,
                    lower_is_better=True,
                    note=f"publish → SMTP accepted at {rate}/s = 2/3 × saturation",
                )
            )
        results.append(
            measure(
                "throughput, worker in the benchmark's process",
                ours_in,
                "events/s",
                baseline=bare_in,
                note="both workers share the publishing client's process and core",
            )
        )
        # The judged figure: each worker in a process of its own (as `notiflow worker` runs), the client apart.
        async with worker_processes(env, url, smtp, 1) as (queue, _), bare_process(env) as bare_queue:
            nc = NotificationClient(env.client, bench_settings(url, smtp, queue))
            await pipeline(nc, smtp, 20)
            await bare_engine(env.client, 20, bare_queue)
            bare_time = ours_time = 0.0
            for round_ in range(2):
                console.log(
                    f"round {round_ + 1}: bare engine, then pipeline, {args.events} events each (worker processes)"
                )
                bare_time += args.events / await bare_engine(env.client, args.events, bare_queue)
                ours_time += args.events / await pipeline(nc, smtp, args.events)
        bare, ours = 2 * args.events / bare_time, 2 * args.events / ours_time
        results.insert(
            0,
            measure(
                "throughput",
                ours,
                "events/s",
                baseline=bare,
                target=0.7,
                note="whole pipeline vs the bare engine (bench/bare.py), same shape, each worker in its own process",
            ),
        )
        if args.scale_out:
            one = ours
            async with worker_processes(env, url, smtp, 2) as (queue, _):
                nc = NotificationClient(env.client, bench_settings(url, smtp, queue))
                await pipeline(nc, smtp, 20)  # warm-up: every process has started and polls
                console.log(f"scale-out: 2 worker processes, {args.events} events")
                two = await pipeline(nc, smtp, args.events)
            results.append(measure("scale-out, 1 worker process", one, "events/s", note="= throughput above"))
            results.append(
                measure(
                    "scale-out, 2 worker processes",
                    two,
                    "events/s",
                    baseline=one,
                    note=f"vs 1 process; one task queue, one dev server, {os.cpu_count()} cores",
                )
            )
    await engine.dispose()
    return results


async def bare_engine(client, count: int, task_queue: str | None = None, *, visible: bool = False) -> float:
    """Events/s through the bare engine: on an in-process worker, or on ``task_queue`` served elsewhere.

    ``visible``: with notiflow's search attributes, memo, summary, patch marker and outcome (bench/bare.py).
    """
    queue = task_queue or f"bench-bare-{uuid.uuid4().hex[:6]}"
    run_method, start = (VisibleBareEventWorkflow.run, VISIBLE_START) if visible else (BareEventWorkflow.run, {})

    async def run() -> float:
        tag = uuid.uuid4().hex[:6]
        elapsed = await _concurrently(
            count,
            lambda i: client.execute_workflow(
                run_method, f"{queue}-{tag}-{i}", id=f"bare-{queue}-{tag}-{i}", task_queue=queue, **start
            ),
        )
        return count / elapsed

    if task_queue:
        return await run()
    activities = BareActivities(client, queue)
    async with Worker(
        client,
        task_queue=queue,
        workflows=BARE_WORKFLOWS,
        activities=activities.all(),
        max_concurrent_activities=50,
    ):
        return await run()


@contextlib.asynccontextmanager
async def bare_process(env):
    """A bare worker (``python -m bench.bare``) in a process of its own; yields its task queue."""
    queue = f"bench-bare-{uuid.uuid4().hex[:6]}"
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.bare", env.client.service_client.config.target_host, queue]
    )
    try:
        yield queue
    finally:
        process.terminate()
        process.wait(30)


async def pipeline(nc: NotificationClient, smtp: SinkProcess, count: int) -> float:
    """Events/s from the first publish until every run has completed and every mail is at the sink."""
    recipient = User(id="u-bench", name="Bench", email="bench@example.mg", locale="en")
    actor = User(id="u-actor", name="Actor", email="actor@example.mg")
    events = [
        event("ISSUE_ASSIGNED", issue=issue_dict(assignee=ref(recipient), priority="LOW"), actor=actor)
        for _ in range(count)
    ]
    before = smtp.count()

    async def one(i: int):
        handle = nc.temporal.get_workflow_handle(await nc.publish(events[i]))
        await handle.result()

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    await smtp.wait_for(before + count)
    return count / (time.perf_counter() - started)


async def raw_smtp_blast(port: int, count: int, connections: int = CONNECTIONS) -> float:
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
    admins = [
        User(id=f"u-fan-{i}", name=f"Admin {i}", email=f"admin{i}@example.mg", roles=["admin"])
        for i in range(recipients)
    ]
    async with sessions.begin() as session:
        await upsert_users(session, admins)
    before = smtp.count()
    started = time.perf_counter()
    handle = nc.temporal.get_workflow_handle(await nc.publish(event("ISSUE_CREATED", issue=issue_dict(priority="LOW"))))
    await handle.result()
    elapsed = time.perf_counter() - started
    assert smtp.count() - before >= recipients
    async with sessions.begin() as session:
        await session.execute(text("UPDATE users SET roles = '{}' WHERE id LIKE 'u-fan-%'"))
    return recipients / elapsed


async def latency(nc: NotificationClient, smtp: SinkProcess, rate: float, seconds: float) -> list[float]:
    """Publish at a steady rate; time from publish to the SMTP server accepting the mail."""
    recipient = User(id="u-bench", name="Bench", email="bench@example.mg")
    actor = User(id="u-actor", name="Actor", email="actor@example.mg")
    sent_at: dict[str, float] = {}
    before = smtp.count()
    tasks = []
    start = time.monotonic()
    for i in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))  # a steady rate, drift-free
        issue = issue_dict(issue_id=f"LAT-{uuid.uuid4().hex[:8]}", assignee=ref(recipient), priority="LOW")
        sent_at[issue["id"]] = time.time()
        tasks.append(asyncio.create_task(nc.publish(event("ISSUE_ASSIGNED", issue=issue, actor=actor))))
    await asyncio.gather(*tasks)
    await smtp.wait_for(before + len(sent_at))
    accepted = {issue: at for at, issue in smtp.received()[before:]}
    return sorted(accepted[k] - sent_at[k] for k in sent_at if k in accepted)


@contextlib.asynccontextmanager
async def worker_processes(env, url: str, smtp: SinkProcess, processes: int):
    """``processes`` `notiflow worker` processes polling one fresh task queue; yields (queue, processes)."""
    task_queue = f"procs-{processes}-{uuid.uuid4().hex[:6]}"
    environment = os.environ | {
        "NOTIFLOW_DATABASE_URL": url,
        "NOTIFLOW_TASK_QUEUE": task_queue,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
        "NOTIFLOW_SMTP_POOL_SIZE": str(CONNECTIONS),
        "NOTIFLOW_MAX_PER_HOUR": "1000000",
        "NOTIFLOW_RETRY_INITIAL_SECONDS": "0.5",
        "NOTIFLOW_TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "NOTIFLOW_JWT_SECRET": BENCH_JWT_SECRET,
    }
    workers = [
        subprocess.Popen(
            [str(Path(sys.executable).parent / "notiflow"), "worker"],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(processes)
    ]
    try:
        yield task_queue, workers
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(30)


async def main(args) -> list[dict]:
    async with migrated_database("notiflow_bench") as url:
        with SinkProcess() as smtp:
            return await run_all(args, url, smtp)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--fanout", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--no-scale-out", dest="scale_out", action="store_false")
    parser.add_argument("--json", help="append the results (one JSON object per line) to this file")
    arguments = parser.parse_args()
    measured = uvloop.run(main(arguments))  # as `notiflow worker` runs
    report(measured, "pipeline (same machine, same run)", arguments.json)
