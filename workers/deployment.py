"""Worker Deployment Versioning: the deployment, this worker's version, and the operator steps of a deploy.

Every `notiflow worker` runs in Worker Deployment ``notiflow`` with build id ``NOTIFLOW_BUILD_ID``. A version gets
new runs only once it is *current*; pinned runs (events, notify, redelivery, sync, summaries) finish on the
version they started on, auto-upgrade runs (SLA, digest, spike) move to the current version at their next task.
README, "Deploying a new version", gives the steps; `notiflow deployment …` and `notiflow dev` call these helpers.

Also the worker's start-up check that the namespace has every search attribute it writes (`notiflow search-attributes`
adds them).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from temporalio.client import Client
from temporalio.common import SearchAttributeKey, WorkerDeploymentVersion
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import WorkerDeploymentConfig

from notiflow.search import SEARCH_ATTRIBUTES
from notiflow.settings import Settings

#: The Worker Deployment every notiflow worker belongs to (one per namespace).
DEPLOYMENT_NAME = "notiflow"


def deployment_version(settings: Settings) -> WorkerDeploymentVersion:
    """This process's version: deployment ``notiflow``, build id ``NOTIFLOW_BUILD_ID``."""
    return WorkerDeploymentVersion(deployment_name=DEPLOYMENT_NAME, build_id=settings.build_id)


def deployment_config(settings: Settings) -> WorkerDeploymentConfig:
    """Versioned, with no default behavior: a workflow without ``versioning_behavior=`` stops the worker at start."""
    return WorkerDeploymentConfig(version=deployment_version(settings), use_worker_versioning=True)


@dataclass(frozen=True)
class VersionState:
    """What the server says of one version (``temporal worker deployment describe-version``)."""

    build_id: str
    #: INACTIVE, CURRENT, RAMPING, DRAINING, DRAINED or CREATED
    status: str
    #: DRAINING / DRAINED once no longer current ("" while current or never current)
    drainage: str
    drainage_checked_at: datetime | None
    task_queues: tuple[str, ...]


#: Answers worth asking again: the deployment's own workflow is busy (it rate-limits requests), or a blip.
_TRANSIENT = (RPCStatusCode.RESOURCE_EXHAUSTED, RPCStatusCode.UNAVAILABLE, RPCStatusCode.ABORTED)


async def _call(rpc, request, *, attempts: int = 20):
    """One deployment RPC, retried (backing off to 2 s) while the server says it is busy."""
    delay = 0.2
    for attempt in range(attempts):
        try:
            return await rpc(request)
        except RPCError as exc:
            if exc.status not in _TRANSIENT or attempt == attempts - 1:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 2.0)


def _proto_version(version: WorkerDeploymentVersion):
    from temporalio.api.deployment.v1 import WorkerDeploymentVersion as ProtoVersion

    return ProtoVersion(deployment_name=version.deployment_name, build_id=version.build_id)


async def describe_version(client: Client, version: WorkerDeploymentVersion) -> VersionState | None:
    """The version's status and drainage, or None when no worker of it has polled yet."""
    from temporalio.api.enums.v1 import VersionDrainageStatus, WorkerDeploymentVersionStatus
    from temporalio.api.workflowservice.v1 import DescribeWorkerDeploymentVersionRequest

    try:
        response = await _call(
            client.workflow_service.describe_worker_deployment_version,
            DescribeWorkerDeploymentVersionRequest(
                namespace=client.namespace, deployment_version=_proto_version(version)
            ),
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    info = response.worker_deployment_version_info
    drainage = info.drainage_info
    return VersionState(
        build_id=version.build_id,
        status=WorkerDeploymentVersionStatus.Name(info.status).removeprefix("WORKER_DEPLOYMENT_VERSION_STATUS_"),
        drainage=(
            VersionDrainageStatus.Name(drainage.status)
            .removeprefix("VERSION_DRAINAGE_STATUS_")
            .replace("UNSPECIFIED", "")
            if info.HasField("drainage_info")
            else ""
        ),
        drainage_checked_at=drainage.last_checked_time.ToDatetime() if drainage.HasField("last_checked_time") else None,
        task_queues=tuple(sorted({tq.name for tq in info.task_queue_infos})),
    )


async def current_build_id(client: Client, deployment_name: str = DEPLOYMENT_NAME) -> str | None:
    """The current version's build id; None when the deployment does not exist or has no current version."""
    from temporalio.api.workflowservice.v1 import DescribeWorkerDeploymentRequest

    try:
        response = await _call(
            client.workflow_service.describe_worker_deployment,
            DescribeWorkerDeploymentRequest(namespace=client.namespace, deployment_name=deployment_name),
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    current = response.worker_deployment_info.routing_config.current_deployment_version
    return current.build_id or None


async def make_current(
    client: Client,
    version: WorkerDeploymentVersion,
    *,
    identity: str = "notiflow",
    only_if_none: bool = False,
    timeout: float = 60.0,
) -> str | None:
    """Make ``version`` current (``temporal worker deployment set-current-version``); returns the previous build id.

    Waits (up to ``timeout`` seconds) until a worker of the version has polled: the server only promotes a
    version it has seen. With ``only_if_none`` nothing changes when the deployment already has a current version
    (the first deploy promotes itself; later ones wait for the operator). Idempotent.
    """
    from temporalio.api.workflowservice.v1 import SetWorkerDeploymentCurrentVersionRequest

    deadline = time.monotonic() + timeout
    while True:
        current = await current_build_id(client, version.deployment_name)
        if current == version.build_id or (only_if_none and current is not None):
            return current
        try:
            response = await _call(
                client.workflow_service.set_worker_deployment_current_version,
                SetWorkerDeploymentCurrentVersionRequest(
                    namespace=client.namespace,
                    deployment_name=version.deployment_name,
                    build_id=version.build_id,
                    identity=identity,
                    # No ignore_missing_task_queues: the server refuses a version that does not poll every task
                    # queue of the current one (the message says which), rather than strand that queue's runs.
                ),
            )
        except RPCError as exc:
            # NOT_FOUND / FAILED_PRECONDITION: no worker of the version has polled yet (or a concurrent change).
            retryable = exc.status in (
                RPCStatusCode.NOT_FOUND,
                RPCStatusCode.FAILED_PRECONDITION,
                RPCStatusCode.ABORTED,
                RPCStatusCode.UNAVAILABLE,
            )
            if not retryable or time.monotonic() > deadline:
                raise RuntimeError(
                    f"could not make {version.deployment_name}:{version.build_id} current: {exc.message} "
                    "(is a worker of that NOTIFLOW_BUILD_ID running?)"
                ) from None
            await asyncio.sleep(0.5)
            continue
        previous = response.previous_deployment_version.build_id
        return previous or None


async def wait_until_routed(
    client: Client, task_queue: str, version: WorkerDeploymentVersion, *, timeout: float = 30.0
) -> None:
    """Until ``task_queue`` sends new runs to ``version`` (the server syncs a current version's task queues, and a
    queue a current version starts polling, within a moment)."""
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    deadline = time.monotonic() + timeout
    while True:
        response = await _call(client.workflow_service.describe_task_queue, request)
        current = response.versioning_info.current_deployment_version
        if (current.deployment_name, current.build_id) == (version.deployment_name, version.build_id):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"task queue {task_queue!r} does not route to {version.build_id} after {timeout:.0f} s (a version "
                "holds at most matching.maxTaskQueuesInDeploymentVersion task queues, 100 by default)"
            )
        await asyncio.sleep(0.1)


async def make_current_and_wait(
    client: Client, version: WorkerDeploymentVersion, task_queue: str, identity: str
) -> None:
    """`notiflow dev` and the tests: this worker's version current, and its task queue routing to it.

    A server without Worker Deployments (the time-skipping test server) routes every task to any poller: nothing to do.
    """
    try:
        await current_build_id(client, version.deployment_name)
    except RPCError as exc:
        if exc.status == RPCStatusCode.UNIMPLEMENTED:
            return
        raise
    await make_current(client, version, identity=identity)
    await wait_until_routed(client, task_queue, version)


async def wait_until_drained(
    client: Client, version: WorkerDeploymentVersion, *, timeout: float = 3600.0, poll: float = 2.0
) -> VersionState:
    """Until no open pinned run remains on ``version`` (drainage DRAINED): then its workers may be stopped.

    The server re-checks drainage periodically (dynamic config ``matching.wv.VersionDrainageStatusRefreshInterval``,
    after ``…VisibilityGracePeriod``; minutes by default).
    """
    deadline = time.monotonic() + timeout
    while True:
        state = await describe_version(client, version)
        if state is None:
            raise RuntimeError(f"no version {version.deployment_name}:{version.build_id} on this namespace")
        if state.status == "CURRENT" or state.status == "RAMPING":
            raise RuntimeError(f"{version.build_id} is {state.status.lower()}: make the new version current first")
        if state.drainage == "DRAINED" or state.status in ("DRAINED", "INACTIVE"):
            return state
        if time.monotonic() > deadline:
            still = (state.drainage or state.status).lower()
            raise RuntimeError(f"{version.build_id} still {still} after {timeout:.0f} s: pinned runs remain on it")
        await asyncio.sleep(poll)


# Start-up check of `notiflow worker`: the search attributes it writes (notiflow.search.SEARCH_ATTRIBUTES).


#: The command that registers SEARCH_ATTRIBUTES (idempotent); the worker names it when one is missing.
SEARCH_ATTRIBUTES_COMMAND = "notiflow search-attributes"


async def search_attribute_problems(client: Client) -> tuple[list[SearchAttributeKey[Any]], list[str]]:
    """(missing keys, keys registered with another type) of SEARCH_ATTRIBUTES in the client's namespace."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest

    response = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    registered = {**response.system_attributes, **response.custom_attributes}
    missing, mistyped = [], []
    for key in SEARCH_ATTRIBUTES:
        if key.name not in registered:
            missing.append(key)
        elif int(registered[key.name]) != int(key.indexed_value_type):
            have = IndexedValueType.Name(registered[key.name]).removeprefix("INDEXED_VALUE_TYPE_").title()
            mistyped.append(f"{key.name} is {have}, not {_type_name(key)}")
    return missing, mistyped


def _type_name(key: SearchAttributeKey[Any]) -> str:
    return key.indexed_value_type.name.title()


async def require_search_attributes(client: Client) -> None:
    """Start-up preflight of `notiflow worker`: a missing attribute would fail every event run at its end, forever.

    Raises RuntimeError with one line naming the command that fixes it.
    """
    missing, mistyped = await search_attribute_problems(client)
    if mistyped:
        raise RuntimeError(
            f"namespace {client.namespace!r}: search attribute {'; '.join(mistyped)}: "
            "remove it (temporal operator search-attribute remove) and run `notiflow search-attributes`"
        )
    if missing:
        names = ", ".join(f"{key.name} ({_type_name(key)})" for key in missing)
        raise RuntimeError(
            f"namespace {client.namespace!r} lacks the search attributes notiflow writes: {names}; "
            f"add them with `{SEARCH_ATTRIBUTES_COMMAND}` (same NOTIFLOW_TEMPORAL_* settings)"
        )


async def ensure_search_attributes(client: Client) -> tuple[list[str], list[str]]:
    """Add the missing SEARCH_ATTRIBUTES to the client's namespace: (added, already there). Idempotent.

    An attribute registered with another type is an error (RuntimeError): Temporal cannot change a type in place.
    """
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest

    missing, mistyped = await search_attribute_problems(client)
    if mistyped:
        raise RuntimeError(f"namespace {client.namespace!r}: search attribute {'; '.join(mistyped)}")
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=client.namespace,
                search_attributes={key.name: IndexedValueType.ValueType(key.indexed_value_type) for key in missing},
            )
        )
    added = [key.name for key in missing]
    return added, [key.name for key in SEARCH_ATTRIBUTES if key.name not in added]


async def search_attributes_command(settings: Settings) -> list[str]:
    """`notiflow search-attributes`: what it added and what was there."""
    from notiflow.temporal import connect_client

    client = await connect_client(settings)
    added, present = await ensure_search_attributes(client)
    types = {key.name: _type_name(key) for key in SEARCH_ATTRIBUTES}
    lines = [f"added {name} ({types[name]})" for name in added] + [f"{name} exists" for name in present]
    return [*lines, f"namespace {client.namespace!r} has every search attribute notiflow writes"]


# The `notiflow deployment …` commands: each connects, acts, and returns the lines to print.


async def make_current_command(settings: Settings, build_id: str | None, timeout: float) -> str:
    from notiflow.temporal import connect_client

    client = await connect_client(settings)
    version = WorkerDeploymentVersion(DEPLOYMENT_NAME, build_id or settings.build_id)
    previous = await make_current(client, version, identity="notiflow deployment make-current", timeout=timeout)
    if previous == version.build_id:
        return f"{DEPLOYMENT_NAME}:{version.build_id} was already current"
    return (
        f"{DEPLOYMENT_NAME}:{version.build_id} is current (new runs and auto-upgrade runs go to it); "
        f"previous: {previous or 'none'}"
        + (f" — watch it drain: notiflow deployment status {previous}" if previous else "")
    )


async def status_lines(settings: Settings, build_ids: list[str]) -> list[str]:
    from notiflow.temporal import connect_client

    client = await connect_client(settings)
    current = await current_build_id(client)
    lines = [f"deployment {DEPLOYMENT_NAME}: current version {current or 'none'}"]
    for build_id in build_ids or ([current] if current else []):
        state = await describe_version(client, WorkerDeploymentVersion(DEPLOYMENT_NAME, build_id))
        if state is None:
            lines.append(f"{build_id}: unknown (no worker of it has polled)")
            continue
        drainage = f" (drainage {state.drainage.lower()})" if state.drainage and state.drainage != state.status else ""
        checked = f", checked {state.drainage_checked_at:%H:%M:%S} UTC" if state.drainage_checked_at else ""
        lines.append(
            f"{build_id}: {state.status.lower()}{drainage}{checked}; task queues {', '.join(state.task_queues)}"
        )
    return lines


async def wait_drained_command(settings: Settings, build_id: str, timeout: float) -> str:
    from notiflow.temporal import connect_client

    client = await connect_client(settings)
    state = await wait_until_drained(client, WorkerDeploymentVersion(DEPLOYMENT_NAME, build_id), timeout=timeout)
    return f"{build_id}: {(state.drainage or state.status).lower()}: no open pinned run left; its workers may stop"
