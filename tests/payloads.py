"""Every payload a recorded history carries, wherever the event keeps it (tests read plans and ids from them)."""

from __future__ import annotations

from collections.abc import Iterator

from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowHistory

#: (event field, its payloads field): activity inputs and results, a local activity's result (in its marker), child
#: workflow and continue-as-new inputs, a run's own input and result
_CARRIERS = (
    ("activity_task_scheduled_event_attributes", "input"),
    ("activity_task_completed_event_attributes", "result"),
    ("start_child_workflow_execution_initiated_event_attributes", "input"),
    ("workflow_execution_continued_as_new_event_attributes", "input"),
    ("workflow_execution_started_event_attributes", "input"),
    ("workflow_execution_completed_event_attributes", "result"),
)


def payloads(history: WorkflowHistory) -> Iterator[Payload]:
    for event in history.events:
        for field, holder in _CARRIERS:
            if event.HasField(field):
                yield from getattr(getattr(event, field), holder).payloads
        if event.HasField("marker_recorded_event_attributes"):
            details = event.marker_recorded_event_attributes.details
            if "result" in details:  # core_local_activity
                yield from details["result"].payloads
