"""The sandbox refuses non-deterministic calls in workflow code (issue 16 §1).

The worker's runner passes through third-party libraries and ``notiflow`` (the shared data layer), never
the project's workflow code. A probe workflow run by a real worker under that runner is refused each
call; the same probe under a runner that passes its module through — what the worker did before, for
the whole ``workflows`` package — runs them, which is what this test exists to catch.
"""

from __future__ import annotations

import pkgutil
import uuid

import pytest
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

import workflows
from notiflow.temporal import DATA_CONVERTER
from tests.sandbox_probe import ATTEMPTS, NonDeterministicProbe
from workers.main import PASSED_THROUGH, WORKFLOW_RUNNER


async def _probe(client: Client, runner: SandboxedWorkflowRunner, attempt: str) -> str:
    queue = f"sandbox-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=queue, workflows=[NonDeterministicProbe], workflow_runner=runner):
        return await client.execute_workflow(
            NonDeterministicProbe.run, attempt, id=f"probe/{queue}", task_queue=queue, result_type=str
        )


@pytest.mark.parametrize("attempt", list(ATTEMPTS))
async def test_the_workers_sandbox_refuses_non_deterministic_calls(temporal_client: Client, attempt: str):
    client = Client(temporal_client.service_client, namespace=temporal_client.namespace, data_converter=DATA_CONVERTER)
    assert await _probe(client, WORKFLOW_RUNNER, attempt) == "refused"


async def test_passing_workflow_code_through_lets_them_run(temporal_client: Client):
    """The test can fail: with the probe's module passed through, as ``workflows`` was, the clock is read."""
    leaky = SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSED_THROUGH, "tests.sandbox_probe")
    )
    assert await _probe(temporal_client, leaky, "datetime.now()") == "ran"


def test_no_workflow_module_is_passed_through():
    passed = WORKFLOW_RUNNER.restrictions.passthrough_modules
    modules = [m.name for m in pkgutil.walk_packages(workflows.__path__, "workflows.")] + ["workflows"]
    leaked = [m for m in modules if any(m == p or m.startswith(p + ".") for p in passed)]
    assert not leaked, f"workflow code passed through the sandbox (its refusals off): {leaked}"
