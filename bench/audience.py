"""One event to a very large audience (issue 20 §2): 100,000 recipients, e-mail and in-app each.

    python -m bench.audience [--recipients 100000] [--blast 20000] [--workers 1] [--json FILE]

A fresh database holding ``--recipients`` admins, a Temporal dev server (in memory), the SMTP sink in
a process of its own and ``--workers`` ``notiflow worker`` processes on one task queue, as in production
(on this 2-core machine a second one gains nothing: the sink, PostgreSQL and Temporal hold the other core).
One ISSUE_CREATED goes to every admin; the benchmark waits for its run to end and reports:

- the rate (mails accepted by the SMTP server per second, first publish to the run's end, over the
  whole audience) against a raw aiosmtplib blast of ``--blast`` messages over as many connections as
  the worker's SMTP pool has, measured just before in the same run;
- the slowest tenth of the audience (its rate over the 10 % of mails that took longest to arrive), so a
  stall between pages shows;
- the largest payload (the largest history event of any run of the plan: the event's run, every run of
  its ``pages/…`` chain and each slice's run) and the largest run history, both against Temporal's 2 MB payload limit;
- the worker's peak RSS (the largest of the worker processes), sampled every half second (psutil) while it
  plans and sends;
- when the first mail arrived, the mails accepted per 20 s, and the CPU each process spent.

Not part of CI's pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import psutil
import uvloop
from rich.console import Console
from sqlalchemy import text
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from bench.cpu import cpu_seconds, postgres_backends
from bench.pipeline import SinkProcess, bench_settings, raw_smtp_blast, worker_processes
from bench.results import measure, report
from notiflow.client import NotificationClient
from notiflow.db import make_engine, make_sessionmaker
from notiflow.runs import DeliveryOutcome
from notiflow.search import SEARCH_ATTRIBUTES
from notiflow.templates.store import seed_templates
from notiflow.temporal import DATA_CONVERTER
from programs.dev.binaries import find_binary
from tests.factories import event, issue_dict
from tests.services import migrated_database

console = Console(stderr=True)
#: Temporal's default limit on one payload (and the bound the issue sets for a run's history)
TWO_MB = 2 * 1024 * 1024

ADMINS = """
INSERT INTO users (id, name, email, roles, locale)
SELECT 'u-aud-' || g, 'Admin ' || g, 'admin' || g || '@example.mg', '{admin}', CASE WHEN g % 5 = 0 THEN 'fr' ELSE 'en' END
FROM generate_series(1, :count) g
"""


@contextlib.asynccontextmanager
async def peak_rss(pids: list[int]) -> AsyncIterator[list[int]]:
    """Sample each process's RSS every half second; the list holds the largest any one of them reached so far."""
    peak = [0]
    processes = [psutil.Process(pid) for pid in pids]

    async def sample() -> None:
        while True:
            for process in processes:
                with contextlib.suppress(psutil.Error):
                    peak[0] = max(peak[0], process.memory_info().rss)
            await asyncio.sleep(0.5)

    task = asyncio.create_task(sample())
    try:
        yield peak
    finally:
        task.cancel()


async def runs_of(client: Client, prefix: str) -> list[WorkflowHandle]:
    """Every run whose workflow id starts with ``prefix`` (a continue-as-new chain, its slices' runs), oldest first."""
    handles = []
    async for execution in client.list_workflows(f'WorkflowId STARTS_WITH "{prefix}"'):
        handles.append((execution.start_time, client.get_workflow_handle(execution.id, run_id=execution.run_id)))
    return [handle for _, handle in sorted(handles, key=lambda pair: pair[0])]


async def history_sizes(handles: list[WorkflowHandle]) -> tuple[int, int, int]:
    """(largest history event, largest run history, history events in all) over the runs, in bytes."""
    largest_event = largest_history = events = 0
    for handle in handles:
        history = await handle.fetch_history()
        sizes = [e.ByteSize() for e in history.events]
        largest_event = max(largest_event, *sizes)
        largest_history = max(largest_history, sum(sizes))
        events += len(sizes)
    return largest_event, largest_history, events


def per_window(offsets: list[float], seconds: float) -> list[int]:
    """How many arrivals fell in each window of ``seconds`` from 0: the run's shape (planning, stalls) at a glance."""
    counts = [0] * (int(max(offsets, default=0) // seconds) + 1)
    for offset in offsets:
        counts[int(max(offset, 0) // seconds)] += 1
    return counts


def slowest_tenth(arrivals: list[float]) -> float:
    """Mails per second over the slowest 10 % stretch of arrivals (the window of a tenth of them that took longest)."""
    arrivals = sorted(arrivals)
    window = max(1, len(arrivals) // 10)
    longest = max(arrivals[i + window - 1] - arrivals[i] for i in range(len(arrivals) - window + 1))
    return window / longest if longest > 0 else float("inf")


async def run(args, url: str, smtp: SinkProcess) -> list[dict]:
    engine = make_engine(url, pool_size=2)
    sessions = make_sessionmaker(engine)
    await seed_templates(sessions)
    async with sessions.begin() as session:
        await session.execute(text(ADMINS), {"count": args.recipients})
    await engine.dispose()
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_binary("temporal"),
        data_converter=DATA_CONVERTER,
        search_attributes=SEARCH_ATTRIBUTES,
    )
    async with env:
        console.log(f"raw SMTP blast: {args.blast} messages")
        blast = await raw_smtp_blast(smtp.port, args.blast)
        async with worker_processes(env, url, smtp, args.workers) as (queue, workers):
            nc = NotificationClient(env.client, bench_settings(url, smtp, queue))
            the_event = event("ISSUE_CREATED", issue=issue_dict(priority="LOW"))
            before = smtp.count()
            console.log(f"one event to {args.recipients} admins (e-mail + in-app each)")
            groups = {
                "worker": [psutil.Process(w.pid) for w in workers],
                "Temporal server": [
                    p for p in psutil.process_iter(["cmdline"]) if "start-dev" in " ".join(p.info["cmdline"] or [])
                ],
                "PostgreSQL": postgres_backends(),
                "SMTP sink": [psutil.Process(smtp.process.pid)],
            }
            cpu_before = cpu_seconds(groups)
            async with peak_rss([w.pid for w in workers]) as peak:
                started, published_at = time.perf_counter(), time.time()
                handle = nc.temporal.get_workflow_handle(await nc.publish(the_event))
                outcome = DeliveryOutcome.model_validate(await handle.result())
                elapsed = time.perf_counter() - started
            groups["PostgreSQL"] = postgres_backends()  # backends opened meanwhile count from zero
            cpu = {name: spent - cpu_before.get(name, 0.0) for name, spent in cpu_seconds(groups).items()}
            received = smtp.received()[before:]
            first_mail = min(at for at, _ in received) - published_at
            console.log(
                f"mails accepted per 20 s from publish: {per_window([at - published_at for at, _ in received], 20)}"
            )
            console.log(f"done in {elapsed:.0f} s: {outcome.describe()}; the SMTP server accepted {len(received)}")
            assert len(received) >= args.recipients, f"the SMTP server accepted {len(received)} of {args.recipients}"
            runs = [handle, *await runs_of(env.client, f"pages/{the_event.event_id}")]
            largest_event, largest_history, events = await history_sizes(runs)
    rate = args.recipients / elapsed
    size = f"{args.recipients:,} recipients × (e-mail + in-app)"
    spent = " · ".join(f"{name} {seconds:.0f} s" for name, seconds in cpu.items())
    return [
        measure("large audience, time", elapsed, "s", note=f"one event to {size}, publish → run ended"),
        measure(
            "large audience, first mail",
            first_mail,
            "s",
            note="publish → the first mail accepted by the SMTP server",
        ),
        measure(
            "large audience, CPU in all",
            sum(cpu.values()),
            "s",
            note=f"user + system over the run ({psutil.cpu_count()} cores × {elapsed:.0f} s): {spent}",
        ),
        measure(
            "large audience, rate",
            rate,
            "mails/s",
            baseline=blast,
            target=0.5,
            note=f"over the whole audience vs a raw aiosmtplib blast of {args.blast:,}",
        ),
        measure(
            "large audience, slowest tenth",
            slowest_tenth([at for at, _ in received]),
            "mails/s",
            baseline=blast,
            note="the 10 % of mails that took longest to arrive",
        ),
        measure(
            "large audience, largest payload",
            largest_event / 1024,
            "KiB",
            target=TWO_MB / 1024,
            lower_is_better=True,
            note=f"largest history event of {len(runs)} runs (the event's, its pages/… chain and slices)",
        ),
        measure(
            "large audience, largest run history",
            largest_history / 1024,
            "KiB",
            target=TWO_MB / 1024,
            lower_is_better=True,
            note=f"{len(runs)} runs, {events:,} history events in all",
        ),
        measure(
            "large audience, worker RSS peak",
            peak[0] / 2**20,
            "MB",
            target=500,
            lower_is_better=True,
            note=f"the largest of {len(workers)} notiflow worker process(es), sampled every 0.5 s",
        ),
    ]


async def main(args) -> list[dict]:
    async with migrated_database("notiflow_bench_audience") as url:
        with SinkProcess() as smtp:
            return await run(args, url, smtp)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--blast", type=int, default=20_000)
    parser.add_argument(
        "--workers", type=int, default=1, help="notiflow worker processes (2 here: 256-277 s against 249 s with 1)"
    )
    parser.add_argument("--json", help="append the results (one JSON object per line) to this file")
    arguments = parser.parse_args()
    measured = uvloop.run(main(arguments))
    report(measured, "one event to a large audience", arguments.json)
