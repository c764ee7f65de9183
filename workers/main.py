"""The notiflow worker: every workflow and activity on the configured task queue."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from notiflow.db import make_engine, make_sessionmaker
from notiflow.settings import Settings
from workers.bytecode import cache_workflow_bytecode
from workers.registry import ALL_WORKFLOWS, worker_activities

#: Each feature's declarations (``workflows/<feature>/types.py``: pydantic models only). Building a pydantic
#: model is most of what a fresh sandbox costs: re-importing them for every run took a new run's first
#: workflow task from 13 ms to 129 ms (replaying one IssueEventWorkflow history, bench load) and tripped
#: the SDK's 5 s workflow-task warning under the throughput benchmark. Passed through, it is 21 ms.
#: tests/test_sandbox.py checks that these modules hold no functions and name no clock, random, uuid,
#: file or environment call — the logic that used to live beside them is in ``rules.py``, sandboxed.
DECLARATIONS = tuple(
    f"workflows.{feature}.types" for feature in ("delivery", "digest", "sla", "spike", "summary", "engagement")
)
#: What the sandbox shares with the host instead of re-importing for every run: third-party libraries the
#: workflow inputs are built with (pydantic and what it calls while validating), ``notiflow``, the shared
#: layer below ``workflows/`` (contracts, run inputs, ids, search-attribute keys: data and constants —
#: tests/test_layers.py keeps it from importing any workflow), and the declarations above. Every other
#: module of ``workflows/`` — the workflows, the pipeline, the rules — runs under the sandbox's
#: restrictions: tests/test_sandbox.py has a real worker refuse ``datetime.now()``, ``random``, ``uuid4``
#: and ``open``.
PASSED_THROUGH = (
    "pydantic",
    "pydantic_core",
    "annotated_types",
    "typing_extensions",
    "typing_inspection",
    "email_validator",
    "idna",
    "phonenumbers",
    "notiflow",
    *DECLARATIONS,
)
WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSED_THROUGH)
)


@contextlib.asynccontextmanager
async def build_worker(client: Client, settings: Settings, **worker_options: Any) -> AsyncIterator[Worker]:
    """A running worker; leaving the block drains in-flight activities and closes pools.

    ``worker_options`` go to temporalio's Worker (tests use ``max_cached_workflows=0``).
    """
    cache_workflow_bytecode()
    engine = make_engine(settings.require_database_url(), pool_size=settings.db_pool_size)
    sessions = make_sessionmaker(engine)
    activities, close_activities = worker_activities(sessions, settings, client)
    options: dict[str, Any] = {
        "max_concurrent_activities": settings.worker_max_concurrent_activities,
        "max_concurrent_workflow_tasks": settings.worker_max_concurrent_workflow_tasks,
        "max_cached_workflows": settings.worker_max_cached_workflows,
        "max_concurrent_workflow_task_polls": settings.worker_workflow_pollers,
        "max_concurrent_activity_task_polls": settings.worker_activity_pollers,
        "graceful_shutdown_timeout": timedelta(seconds=20),
    } | worker_options
    worker = Worker(
        client,
        task_queue=settings.task_queue,
        workflows=ALL_WORKFLOWS,
        workflow_runner=WORKFLOW_RUNNER,
        activities=activities,
        **options,
    )
    try:
        async with worker:
            yield worker
    finally:
        await close_activities()
        await engine.dispose()


async def run_worker(settings: Settings, client: Client | None = None, stop: asyncio.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM (or ``stop`` is set), then shut down gracefully."""
    from notiflow.temporal import connect_client, metrics_runtime

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runtime = metrics_runtime(settings.worker_metrics_address) if settings.worker_metrics_address else None
    client = client or await connect_client(settings, runtime=runtime)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with build_worker(client, settings):
        await stop.wait()
