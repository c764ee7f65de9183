"""A versioned deploy with real processes: worker v1 and v2 are `notiflow worker` subprocesses on a Temporal dev
server of this test's own, against the test PostgreSQL and a real SMTP catcher.

v1 runs with an SLA timer armed and an event run mid-delivery (nothing listens on the SMTP port yet, so its send
is being retried). v2 — the same code with replay-safe, observable change (tests/deploy_v2.py: its runs'
current details start with ``v2 · ``) — starts and is made current with `notiflow deployment make-current`.
Then: the pinned event run finishes on v1; a new event runs on v2; the SLA timer armed under v1 fires under v2
(auto-upgrade) and its history replays against this code; v1 drains and stops cleanly.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType, VersioningBehavior
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import WorkerDeploymentVersion
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from notiflow.client import NotificationClient
from notiflow.settings import Settings
from notiflow.temporal import DATA_CONVERTER
from tests.conftest import SEARCH_ATTRIBUTES
from tests.deploy_v2 import V2_MARK
from tests.factories import ADMIN_EN, ASSIGNEE, DIRECTORY, REPORTER, issue_dict, ref
from tests.services import temporal_binary
from tests.time_skipping import add_users, event_at
from workers.deployment import DEPLOYMENT_NAME, current_build_id, describe_version, wait_until_drained
from workers.main import WORKFLOW_RUNNER
from workers.registry import ALL_WORKFLOWS
from workflows.sla.workflows import IssueSlaWorkflow

ROOT = Path(__file__).resolve().parent.parent
#: The installed console script, as operators run it.
NOTIFLOW = [str(Path(sys.executable).parent / "notiflow")]
#: How long after the event the SLA is due: long enough for v2 to start and become current first.
DUE_IN = timedelta(seconds=40)
#: The server re-checks a draining version every second here (default: minutes).
FAST_DRAINAGE = [
    "--dynamic-config-value",
    'matching.wv.VersionDrainageStatusVisibilityGracePeriod="1s"',
    "--dynamic-config-value",
    'matching.wv.VersionDrainageStatusRefreshInterval="1s"',
]


@pytest.fixture
async def server():
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary("temporal"),
        data_converter=DATA_CONVERTER,
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_extra_args=FAST_DRAINAGE,
    )
    yield env
    await env.shutdown()


class Worker:
    """One `notiflow worker` process of a given build id; output in ``log``."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self.handle = log.open("wb")
        self.process = subprocess.Popen(command, stdout=self.handle, stderr=subprocess.STDOUT, env=env, cwd=ROOT)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.handle.close()
        return self.process.returncode


def worker_env(settings: Settings, build_id: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFLOW_", "SMTP_", "NOTIFICATION_"))}
    return env | {
        "PATH": os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "NOTIFLOW_BUILD_ID": build_id,
        "NOTIFLOW_DATABASE_URL": settings.require_database_url(),
        "NOTIFLOW_TEMPORAL_ADDRESS": settings.temporal_address,
        "NOTIFLOW_TASK_QUEUE": settings.task_queue,
        "NOTIFLOW_JWT_SECRET": "versioned-deploy-test-secret-of-32-bytes-or-more",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(settings.smtp_port),
        "EMAIL_FROM": settings.email_from,
        "NOTIFLOW_APP_URL": settings.app_url,
        "NOTIFLOW_RETRY_INITIAL_SECONDS": "0.5",
        "NOTIFLOW_RETRY_MAX_SECONDS": "1",
        "NOTIFLOW_WORKER_MAX_CACHED_WORKFLOWS": "0",  # every task replays the history: no hidden state carries over
    }


async def wait_until(predicate, *, timeout: float = 20.0, what: str = "condition", every: float = 0.5):
    """Poll an async predicate, gently: the server rate-limits requests to a Worker Deployment."""
    deadline = time.monotonic() + timeout
    while not (result := await predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(every)
    return result


async def task_build_ids(handle: WorkflowHandle) -> list[str]:
    """The build id of the worker that completed each workflow task, in order."""
    history = await handle.fetch_history()
    return [
        e.workflow_task_completed_event_attributes.deployment_version.build_id
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    ]


async def versioning(handle: WorkflowHandle) -> tuple[str, str]:
    """(behavior, build id) the server holds for the run."""
    info = (await handle.describe()).raw_description.workflow_execution_info.versioning_info
    return VersioningBehavior.Name(info.behavior).removeprefix("VERSIONING_BEHAVIOR_"), info.deployment_version.build_id


async def closed(handle: WorkflowHandle, timeout: float = 30) -> None:
    async def done():
        return (await handle.describe()).status != WorkflowExecutionStatus.RUNNING

    await wait_until(done, timeout=timeout, what=f"{handle.id} to close")


async def test_new_version_takes_new_work_pinned_runs_finish_on_v1_and_the_sla_upgrades(
    server, database_url, db, smtp, tmp_path
):
    client = server.client
    smtp.stop()  # nothing listens on its port yet: v1's first event is held mid-delivery
    settings = Settings(
        database_url=database_url,
        temporal_address=client.service_client.config.target_host,
        task_queue=f"deploy-{uuid.uuid4().hex[:8]}",
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        email_from="notiflow@test.local",
        app_url="http://tracker.test",
    )
    v1, v2 = f"v1-{uuid.uuid4().hex[:6]}", f"v2-{uuid.uuid4().hex[:6]}"
    await add_users(db, DIRECTORY)
    nc = NotificationClient(client, settings)
    first = Worker([*NOTIFLOW, "worker"], worker_env(settings, v1), tmp_path / "v1.log")
    second: Worker | None = None
    try:
        # The deployment's first version makes itself current.
        async def v1_current():
            assert first.process.poll() is None, first.tail()
            return await current_build_id(client) == v1

        await wait_until(v1_current, timeout=30, what=f"{v1} to become current: {first.tail()}")

        # An SLA armed under v1 (due DUE_IN from now on the server's clock) and an event run mid-delivery.
        now = await server.get_current_time()
        issue = issue_dict(
            priority="HIGH", assignee=ref(ASSIGNEE), created_at=(now - timedelta(hours=24) + DUE_IN).isoformat()
        )
        event_run = client.get_workflow_handle(await nc.publish(event_at("ISSUE_CREATED", issue, now, actor=REPORTER)))
        sla = client.get_workflow_handle_for(IssueSlaWorkflow.run, f"issue/{issue['id']}/sla")

        async def sending_retried():
            description = await event_run.describe()
            return any(a.attempt >= 2 for a in description.raw_description.pending_activities)

        await wait_until(sending_retried, timeout=20, what="the event run's send to be retried")

        async def armed():
            try:
                return (await sla.query(IssueSlaWorkflow.status)).due_at is not None
            except Exception:
                return False

        await wait_until(armed, what="the SLA to be armed")
        assert await task_build_ids(sla) and set(await task_build_ids(sla)) == {v1}

        # v2 starts beside v1; it gets nothing until an operator makes it current.
        second = Worker([sys.executable, "-m", "tests.deploy_v2"], worker_env(settings, v2), tmp_path / "v2.log")

        async def v2_polling():
            assert second is not None and second.process.poll() is None, second and second.tail()
            state = await describe_version(client, WorkerDeploymentVersion(DEPLOYMENT_NAME, v2))
            return state is not None and settings.task_queue in state.task_queues

        await wait_until(v2_polling, timeout=30, what=f"{v2} to poll")
        assert await current_build_id(client) == v1  # a later version does not promote itself
        promote = await asyncio.to_thread(
            subprocess.run,
            [*NOTIFLOW, "deployment", "make-current", "--build-id", v2],
            capture_output=True,
            text=True,
            timeout=60,
            env=worker_env(settings, v2),
        )
        assert promote.returncode == 0, promote.stdout + promote.stderr
        assert f"{DEPLOYMENT_NAME}:{v2} is current" in promote.stdout and f"previous: {v1}" in promote.stdout
        assert await current_build_id(client) == v2
        assert (await sla.query(IssueSlaWorkflow.status)).tier_reached is None, "the SLA fired before v2 was current"

        # The mail server comes back: the pinned event run finishes, on v1 only.
        smtp.start()
        await closed(event_run)
        assert smtp.sink.messages, "the held mail was not delivered"
        assert await versioning(event_run) == ("PINNED", v1)
        assert set(await task_build_ids(event_run)) == {v1}

        # New work goes to v2.
        other = issue_dict(priority="LOW")
        new_run = client.get_workflow_handle(
            await nc.publish(event_at("ISSUE_CREATED", other, await server.get_current_time(), actor=ADMIN_EN))
        )
        await closed(new_run)
        assert await versioning(new_run) == ("PINNED", v2)
        assert set(await task_build_ids(new_run)) == {v2}

        # The SLA timer armed under v1 fires under v2, and its history replays against this code.
        async def fired():
            return (await sla.query(IssueSlaWorkflow.status)).tier_reached is not None

        await wait_until(fired, timeout=DUE_IN.total_seconds() + 15, what="the SLA to fire")
        builds = await task_build_ids(sla)
        assert builds[0] == v1 and builds[-1] == v2 and builds == sorted(builds, key=[v1, v2].index), builds
        assert (await versioning(sla))[0] == "AUTO_UPGRADE"
        metadata = await sla.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
        assert metadata.current_details.startswith(V2_MARK), metadata.current_details
        replayer = Replayer(workflows=ALL_WORKFLOWS, data_converter=DATA_CONVERTER, workflow_runner=WORKFLOW_RUNNER)
        await replayer.replay_workflow(await sla.fetch_history())

        # v1 drains (no open run pinned to it) and is retired.
        state = await wait_until_drained(client, WorkerDeploymentVersion(DEPLOYMENT_NAME, v1), timeout=30, poll=0.5)
        assert state.drainage == "DRAINED", state
        assert first.stop() == 0, first.tail()
        assert second.process.poll() is None, second.tail()
    finally:
        first.stop()
        if second is not None:
            second.stop()
