"""Worker memory with many workflows waiting on timers (issue 12: ≤ 500 MB at 10,000, flat as they grow).

    python -m bench.memory [--steps 5000,10000,20000] [--json FILE]

Starts IssueSlaWorkflow runs (each armed, waiting on its overdue timer) against a
`notiflow worker` in a separate process, in steps, and reads the worker's
resident memory at each: the workflow cache (NOTIFLOW_WORKER_MAX_CACHED_WORKFLOWS),
not the number of open timers, must bound it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import psutil
from temporalio.testing import WorkflowEnvironment

from bench.results import measure, report
from notiflow.search import SEARCH_ATTRIBUTES
from notiflow.temporal import DATA_CONVERTER
from programs.dev.binaries import find_binary
from tests.services import migrated_database
from workflows.sla.types import EscalationPolicy, EscalationTier, IssueObserved, SlaInput
from workflows.sla.workflows import IssueSlaWorkflow

POLICY = EscalationPolicy(
    priority="HIGH", due_minutes=24 * 60, tiers=[EscalationTier(after_minutes=120, audience="admins")]
)


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


async def start_slas(client, task_queue: str, first: int, count: int, concurrency: int = 50) -> None:
    now = datetime.now(timezone.utc)
    semaphore = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        issue_id = f"MEM-{i}"
        seen = IssueObserved(
            event_id=f"mem-{i}",
            type="ISSUE_CREATED",
            occurred_at=now,
            issue_id=issue_id,
            priority="HIGH",
            status="OPEN",
            assignee_id=None,
            created_at=now,
            policy=POLICY,
        )
        async with semaphore:
            await client.start_workflow(
                IssueSlaWorkflow.run,
                SlaInput(issue_id=issue_id),
                id=f"issue/{issue_id}/sla",
                task_queue=task_queue,
                start_signal="observe",
                start_signal_args=[seen],
            )

    started = time.perf_counter()
    for chunk in range(first, count, 1000):
        await asyncio.gather(*(one(i) for i in range(chunk, min(count, chunk + 1000))))
    print(f"  started {count:,} ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)


async def wait_until_armed(client, worker: psutil.Process, count: int, timeout: float = 900) -> None:
    """Until a sample of the runs (the last started among them) shows its timer set and the worker has gone
    quiet (its backlog is done). Only runs not yet seen armed are asked again, to keep the server free."""
    waiting = set(random.sample(range(count), min(50, count))) | set(range(max(0, count - 10), count))
    semaphore = asyncio.Semaphore(20)
    deadline = time.monotonic() + timeout

    async def armed(i: int) -> bool:
        async with semaphore:
            description = await client.get_workflow_handle(f"issue/MEM-{i}/sla").describe()
        return description.history_length >= 6

    while True:
        if time.monotonic() > deadline:
            raise TimeoutError("the SLA workflows have not all set their timer")
        ids = sorted(waiting)
        waiting -= {i for i, ok in zip(ids, await asyncio.gather(*(armed(i) for i in ids)), strict=True) if ok}
        if not waiting:
            worker.cpu_percent()
            await asyncio.sleep(2)
            if worker.cpu_percent() < 10:
                return
        await asyncio.sleep(2)


async def main(steps: list[int]) -> list[dict]:
    async with migrated_database("notiflow_bench_memory") as url:
        return await measure_steps(url, steps)


async def measure_steps(url: str, steps: list[int]) -> list[dict]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_binary("temporal"),
        data_converter=DATA_CONVERTER,
        search_attributes=SEARCH_ATTRIBUTES,
    )
    task_queue = f"memory-{uuid.uuid4().hex[:6]}"
    worker = None
    results: list[dict] = []
    try:
        environment = os.environ | {
            "NOTIFLOW_DATABASE_URL": url,
            "NOTIFLOW_TASK_QUEUE": task_queue,
            "NOTIFLOW_TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
            "NOTIFLOW_JWT_SECRET": "bench-secret-" + "x" * 32,
        }
        worker = subprocess.Popen(
            [str(Path(sys.executable).parent / "notiflow"), "worker"],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        process = psutil.Process(worker.pid)
        await asyncio.sleep(5)
        idle = rss_mb(worker.pid)
        results.append(measure("worker RSS, idle", idle, "MB"))
        cached = settings_max_cached()
        rss: dict[int, float] = {}
        started = 0
        for step in steps:
            print(f"worker: {rss_mb(worker.pid):.0f} MB; {step:,} SLA workflows", file=sys.stderr, flush=True)
            await start_slas(env.client, task_queue, started, step)
            started = step
            await wait_until_armed(env.client, process, step)
            await asyncio.sleep(3)
            rss[step] = rss_mb(worker.pid)
            results.append(
                measure(
                    f"worker RSS, {step:,} SLA timers",
                    rss[step],
                    "MB",
                    target=500 if step == 10_000 else None,
                    lower_is_better=True,
                    note=f"max_cached_workflows={cached}",
                )
            )
        if len(steps) > 1:
            first, last = steps[0], steps[-1]
            results.append(
                measure(
                    f"worker RSS growth, {last:,} vs {first:,} timers",
                    rss[last],
                    "MB",
                    baseline=rss[first],
                    target=1.2,
                    lower_is_better=True,
                    note="the workflow cache bounds memory",
                )
            )
    finally:
        if worker:
            worker.terminate()
            worker.wait(30)
        await env.shutdown()
    return results


def settings_max_cached() -> int:
    from notiflow.settings import Settings

    return Settings(jwt_secret="bench-secret-" + "x" * 32).worker_max_cached_workflows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", default="5000,10000,20000")
    parser.add_argument("--json", help="append the results (one JSON object per line) to this file")
    arguments = parser.parse_args()
    measured = asyncio.run(main([int(s) for s in arguments.steps.split(",")]))
    report(measured, "worker memory", arguments.json)
