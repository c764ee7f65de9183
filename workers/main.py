"""The notiflow worker: every workflow and activity on the configured task queue."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pkgutil
import signal
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

import workflows
from notiflow.db import make_engine, make_sessionmaker
from notiflow.settings import Settings
from workers.bytecode import cache_workflow_bytecode
from workers.deployment import deployment_config, deployment_version, make_current_and_wait
from workers.deployment import make_current as promote
from workers.registry import ALL_WORKFLOWS, worker_activities

#: Each feature's declarations: ``types.py`` (pydantic models) and ``interface.py`` (the activities its
#: workflows call: signatures with no body). Re-creating them is most of what a fresh sandbox costs — a
#: pydantic model or an ``@activity.defn`` reads every type hint again — so they are shared with the host.
#: Replaying one recorded IssueEventWorkflow history (tests/histories/current, best of three runs of 40):
#: everything under ``workflows/`` sandboxed 34 ms a run, types passed through 12–21 ms, types and
#: interfaces 16 ms, all of ``workflows/`` passed through (the old, unsafe runner) 8.5–12 ms.
#: tests/test_sandbox.py checks that these modules call nothing the sandbox would refuse and hold no
#: function with a body: the logic that used to live beside them is in ``rules.py``, sandboxed.
DECLARATIONS = tuple(
    module.name
    for module in pkgutil.walk_packages(workflows.__path__, "workflows.")
    if module.name.rsplit(".", 1)[-1] in ("types", "interface")
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
async def build_worker(
    client: Client, settings: Settings, *, make_current: bool = True, **worker_options: Any
) -> AsyncIterator[Worker]:
    """A running worker; leaving the block drains in-flight activities and closes pools.

    Always versioned: Worker Deployment ``notiflow``, build id NOTIFLOW_BUILD_ID (workers/deployment.py); a
    version gets new runs only once it is current. ``make_current`` (`notiflow dev`, tests, benchmarks: one worker
    version at a time) makes this version current and waits until the task queue routes to it before the block
    starts; `notiflow worker` passes False: promoting a version is the operator's step (README, Deploying a new
    version), but for the deployment's very first one.
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
        "deployment_config": deployment_config(settings),
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
            if make_current:
                await make_current_and_wait(
                    client, deployment_version(settings), settings.task_queue, f"notiflow {settings.build_id}"
                )
            yield worker
    finally:
        await close_activities()
        await engine.dispose()


async def run_worker(settings: Settings, client: Client | None = None, stop: asyncio.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM (or ``stop`` is set), then shut down gracefully.

    Always versioned. Refuses to start (RuntimeError, one line) on a namespace that lacks a search attribute it
    writes. The deployment's first version makes itself current; a later one waits for the operator
    (`notiflow deployment make-current`, README "Deploying a new version").
    """
    from notiflow.temporal import connect_client, metrics_runtime
    from workers.deployment import require_search_attributes

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runtime = metrics_runtime(settings.worker_metrics_address) if settings.worker_metrics_address else None
    client = client or await connect_client(settings, runtime=runtime)
    await require_search_attributes(client)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with build_worker(client, settings, make_current=False):
        first = asyncio.create_task(_first_version_becomes_current(client, settings))
        try:
            await stop.wait()
        finally:
            first.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await first


async def _first_version_becomes_current(client: Client, settings: Settings) -> None:
    """A fresh namespace has no current version, so nothing would run: the first one promotes itself."""
    version = deployment_version(settings)
    log = logging.getLogger("notiflow.worker")
    try:
        current = await promote(client, version, identity=f"notiflow worker {settings.build_id}", only_if_none=True)
    except Exception as exc:  # the worker keeps running: an operator can still promote the version
        status = getattr(getattr(exc, "status", None), "name", type(exc).__name__)
        log.warning("could not check the deployment's current version (%s): %s", status, exc)
        return
    if current is None or current == settings.build_id:
        log.info("version %s:%s is current", version.deployment_name, version.build_id)
    else:
        log.info(
            "version %s:%s is polling; current is %s: it gets new runs once made current "
            "(notiflow deployment make-current --build-id %s)",
            version.deployment_name,
            version.build_id,
            current,
            version.build_id,
        )
