"""Worker memory with many workflows waiting on timers (DESIGN §9: ≤ 500 MB at 10,000).

    python -m bench.memory [--workflows 10000]

Starts that many IssueSlaWorkflow runs (each armed, waiting on its overdue
timer) against a worker in a separate process, then prints the worker's
resident memory beside an idle worker's and the target.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone

import psutil
from temporalio.testing import WorkflowEnvironment

from notiflow.dev.binaries import find_binary
from notiflow.temporal import DATA_CONVERTER, SEARCH_ATTRIBUTES
from workflows.sla.types import EscalationPolicy, EscalationTier, IssueObserved, SlaInput
from tests.services import migrated_database
from workflows.sla.workflows import IssueSlaWorkflow

POLICY = EscalationPolicy(priority="HIGH", due_minutes=24 * 60,
                          tiers=[EscalationTier(after_minutes=120, audience="admins")])


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


async def start_slas(client, task_queue: str, count: int, concurrency: int = 50) -> None:
    now = datetime.now(timezone.utc)
    semaphore = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        issue_id = f"MEM-{i}"
        seen = IssueObserved(event_id=f"mem-{i}", type="ISSUE_CREATED", occurred_at=now, issue_id=issue_id,
                             priority="HIGH", status="OPEN", assignee_id=None, created_at=now, policy=POLICY)
        async with semaphore:
            await client.start_workflow(IssueSlaWorkflow.run, SlaInput(issue_id=issue_id), id=f"issue/{issue_id}/sla",
                                        task_queue=task_queue, start_signal="observe", start_signal_args=[seen])

    started = time.perf_counter()
    for chunk in range(0, count, 1000):
        await asyncio.gather(*(one(i) for i in range(chunk, min(count, chunk + 1000))))
        print(f"  started {min(count, chunk + 1000):,} ({time.perf_counter() - started:.0f} s)", flush=True)


async def wait_until_armed(client, count: int, timeout: float = 900) -> None:
    """Until every run's history shows its timer started (started, signalled, a workflow task, the timer)."""
    waiting = {f"issue/MEM-{i}/sla" for i in range(count)}
    semaphore = asyncio.Semaphore(50)
    deadline = time.monotonic() + timeout

    async def armed(workflow_id: str) -> bool:
        async with semaphore:
            description = await client.get_workflow_handle(workflow_id).describe()
        return description.history_length >= 6

    while waiting:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(waiting):,} workflows have not set their timer")
        ids = sorted(waiting)
        done = await asyncio.gather(*(armed(workflow_id) for workflow_id in ids))
        waiting -= {workflow_id for workflow_id, ok in zip(ids, done) if ok}
        print(f"  {count - len(waiting):,} armed", flush=True)


async def main(count: int) -> None:
    async with migrated_database("notiflow_bench_memory") as url:
        await measure(url, count)


async def measure(url: str, count: int) -> None:
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=find_binary("temporal"),
                                                data_converter=DATA_CONVERTER, search_attributes=SEARCH_ATTRIBUTES)
    task_queue = f"memory-{uuid.uuid4().hex[:6]}"
    worker = None
    try:
        environment = os.environ | {"NOTIFLOW_DATABASE_URL": url, "NOTIFLOW_TASK_QUEUE": task_queue,
                                    "NOTIFLOW_TEMPORAL_ADDRESS": env.client.service_client.config.target_host}
        worker = subprocess.Popen([sys.executable, "-m", "notiflow", "worker"], env=environment)
        await asyncio.sleep(5)
        idle = rss_mb(worker.pid)
        print(f"worker idle: {idle:.0f} MB; starting {count:,} SLA workflows")
        await start_slas(env.client, task_queue, count)
        await wait_until_armed(env.client, count)
        await asyncio.sleep(5)
        loaded = rss_mb(worker.pid)
        print(f"{'measure':44} {'notiflow':>10} {'baseline':>10} {'target':>10}")
        print(f"{'worker RSS with ' + format(count, ',') + ' timers waiting (MB)':44} {loaded:10.0f} {idle:10.0f} {'≤ 500':>10}")
    finally:
        if worker:
            worker.terminate()
            worker.wait(30)
        await env.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workflows", type=int, default=10_000)
    asyncio.run(main(parser.parse_args().workflows))
