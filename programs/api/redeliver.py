"""Redelivery of FAILED rows: an admin asks, a RedeliveryWorkflow re-queues and sends them (same Message-IDs)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header
from pydantic import Field

from notiflow.runs import RedeliveryFilter
from programs.api.auth import ROLE_ERRORS, Admin
from programs.api.deps import State, notification_client
from programs.api.errors import VALIDATION_ERRORS
from programs.api.schemas import WorkflowStarted

router = APIRouter(prefix="/api/v1/notifications", tags=["deliveries"], responses={**ROLE_ERRORS, **VALIDATION_ERRORS})


class RedeliverRequest(RedeliveryFilter):
    """Which FAILED rows to send again; every field narrows, none = every FAILED row (at most 5,000 per request)."""

    model_config = {"extra": "forbid"}
    request_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9._:\-]+$",
        description="idempotency key (or the Idempotency-Key header): "
        "the same key again returns the same run and sends nothing more",
    )


class RedeliverStarted(WorkflowStarted):
    request_id: str


@router.post(
    "/redeliver",
    status_code=202,
    response_model=RedeliverStarted,
    summary="Send FAILED deliveries again through a RedeliveryWorkflow (idempotent per request id)",
)
async def redeliver(
    body: RedeliverRequest,
    admin: Admin,
    state: State,
    idempotency_key: Annotated[str | None, Header(max_length=128, pattern=r"^[A-Za-z0-9._:\-]+$")] = None,
) -> RedeliverStarted:
    import uuid

    request_id = body.request_id or idempotency_key or uuid.uuid4().hex
    wanted = RedeliveryFilter(**body.model_dump(exclude={"request_id"}))
    notifier = await notification_client(state)
    workflow_id = await notifier.redeliver(wanted, requested_by=admin.user_id, request_id=request_id)
    started = WorkflowStarted.of(state.settings, workflow_id)
    return RedeliverStarted(workflow_id=started.workflow_id, workflow_url=started.workflow_url, request_id=request_id)
