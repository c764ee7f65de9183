"""CPU per event, by process: where the throughput ratio's limit is (issue 20).

    python -m bench.cpu [--events 200]

The same stack as ``bench.pipeline`` (a Temporal dev server, a fresh database, the SMTP sink, each worker in
a process of its own). ``--events`` go through the bare engine, the bare engine with notiflow's visibility
(search attributes, memo, summaries, the patch marker and the outcome upsert: bench/bare.py), then through
the pipeline; for each phase it reads the CPU seconds (user + system, psutil) that the Temporal server, the
worker, PostgreSQL and the SMTP sink spent, and prints them per event. On a machine where all of them share
the cores, the total per event sets the throughput; the split says which process a saving has to come from.
"""

from __future__ import annotations

import argparse
import time

import psutil
import uvloop
from rich.console import Console
from rich.table import Table
from temporalio.testing import WorkflowEnvironment

from bench.pipeline import SinkProcess, bare_engine, bare_process, bench_settings, pipeline, worker_processes
from notiflow.client import NotificationClient
from notiflow.contracts import User
from notiflow.db import make_engine, make_sessionmaker
from notiflow.directory import upsert_users
from notiflow.search import SEARCH_ATTRIBUTES
from notiflow.templates.store import seed_templates
from notiflow.temporal import DATA_CONVERTER
from programs.dev.binaries import find_binary
from tests.services import migrated_database

console = Console(stderr=True)


def cpu_seconds(processes: dict[str, list[psutil.Process]]) -> dict[str, float]:
    """CPU seconds so far of each named group of processes (children of PostgreSQL counted by name)."""
    spent: dict[str, float] = {}
    for name, group in processes.items():
        total = 0.0
        for process in group:
            try:
                times = process.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                pass
        spent[name] = total
    return spent


def postgres_backends() -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["name"]) if (p.info["name"] or "").startswith("postgres")]


async def measure(args, url: str, smtp: SinkProcess) -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_binary("temporal"),
        data_converter=DATA_CONVERTER,
        search_attributes=SEARCH_ATTRIBUTES,
    )
    server = [p for p in psutil.process_iter(["cmdline"]) if "start-dev" in " ".join(p.info["cmdline"] or [])]
    sink = [psutil.Process(smtp.process.pid)]
    rows: list[tuple[str, dict[str, float], float]] = []
    async with env:
        async with worker_processes(env, url, smtp, 1) as (queue, workers), bare_process(env) as bare_queue:
            nc = NotificationClient(env.client, bench_settings(url, smtp, queue))
            await pipeline(nc, smtp, 20)  # warm-up: imports, pools, template cache
            await bare_engine(env.client, 20, bare_queue)
            await bare_engine(env.client, 20, bare_queue, visible=True)
            bare = [p for p in psutil.process_iter(["cmdline"]) if "bench.bare" in " ".join(p.info["cmdline"] or [])]
            for label, worker, run in (
                ("bare engine", bare, lambda: bare_engine(env.client, args.events, bare_queue)),
                (
                    "bare engine + notiflow's visibility",
                    bare,
                    lambda: bare_engine(env.client, args.events, bare_queue, visible=True),
                ),
                ("notiflow", [psutil.Process(workers[0].pid)], lambda: pipeline(nc, smtp, args.events)),
            ):
                groups = {
                    "Temporal server": server,
                    "worker": worker,
                    "PostgreSQL": postgres_backends(),
                    "SMTP sink": sink,
                }
                before, started = cpu_seconds(groups), time.perf_counter()
                await run()
                elapsed = time.perf_counter() - started
                groups["PostgreSQL"] = postgres_backends()  # backends opened meanwhile count from zero
                after = cpu_seconds(groups)
                rows.append((label, {k: (after[k] - before.get(k, 0.0)) / args.events * 1000 for k in after}, elapsed))
    table = Table(title=f"CPU per event (ms), {args.events} events each, {psutil.cpu_count()} cores")
    for column in ("", "Temporal server", "worker", "PostgreSQL", "SMTP sink", "total", "events/s"):
        table.add_column(column, justify="right")
    for label, per_event, elapsed in rows:
        table.add_row(
            label,
            *(f"{per_event[k]:.1f}" for k in ("Temporal server", "worker", "PostgreSQL", "SMTP sink")),
            f"{sum(per_event.values()):.1f}",
            f"{args.events / elapsed:.1f}",
        )
    Console().print(table)


async def main(args) -> None:
    async with migrated_database("notiflow_bench_cpu") as url:
        with SinkProcess() as smtp:
            engine = make_engine(url, pool_size=2)
            sessions = make_sessionmaker(engine)
            await seed_templates(sessions)
            async with sessions.begin() as session:  # the people bench.pipeline's events name
                await upsert_users(
                    session,
                    [
                        User(id="u-bench", name="Bench", email="bench@example.mg"),
                        User(id="u-actor", name="Actor", email="actor@example.mg"),
                    ],
                )
            await engine.dispose()
            await measure(args, url, smtp)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200)
    uvloop.run(main(parser.parse_args()))
