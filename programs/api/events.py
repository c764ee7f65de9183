"""Where the issue system hands over its events (service role)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from notiflow.contracts import IssueEvent, parse_event
from programs.api.auth import ROLE_ERRORS, Service
from programs.api.deps import State, notification_client
from programs.api.errors import VALIDATION_ERRORS
from programs.api.schemas import Error, WorkflowStarted

router = APIRouter(prefix="/api/v1", tags=["issue system"], responses={**ROLE_ERRORS, **VALIDATION_ERRORS})

#: The body is read raw and validated by parse_event, exactly as `notiflow emit` does, so both
#: report a bad event the same way; the schema is still documented for /docs.
EVENT_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{IssueEvent.__name__}"}}},
    }
}


@router.post(
    "/events",
    status_code=202,
    response_model=WorkflowStarted,
    openapi_extra=EVENT_BODY_DOC,
    summary="Publish an issue event",
    description="Starts the notification pipeline for the event. The same event_id again returns the same "
    "workflow and sends nothing new; the same event_id with a different body is refused (409), the first kept.",
    responses={
        409: {"model": Error, "description": "this event_id was already published with a different body"},
        413: {"model": Error, "description": "the body is over NOTIFLOW_MAX_BODY_BYTES"},
    },
)
async def publish_event(request: Request, _service: Service, state: State) -> WorkflowStarted:
    event = parse_event(await request.body())
    notifier = await notification_client(state)
    return WorkflowStarted.of(state.settings, await notifier.publish(event))
