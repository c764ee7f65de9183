"""Every workflow id notiflow uses, in one place (PostHog's ``keys.py``).

An id is the unit of "at most once": a second start with the same id finds the
first run. They carry only ids (never names or addresses), so they can be
searched in the web UI and logged.
"""

from __future__ import annotations

#: The workflow types the programs start, by name: the client starts them without importing workflow code
#: (``notiflow/`` is below ``workflows/``); each ``@workflow.defn`` takes its name from here.
ISSUE_EVENT_WORKFLOW = "IssueEventWorkflow"
NOTIFY_WORKFLOW = "NotifyWorkflow"
REDELIVERY_WORKFLOW = "RedeliveryWorkflow"
#: the pages of a large plan after its first, a child of the run that planned it (id ``pages/{source id}``)
DELIVER_PAGES_WORKFLOW = "DeliverPagesWorkflow"
SEND_SLICE_WORKFLOW = "SendSliceWorkflow"
SYNC_USERS_WORKFLOW = "SyncUsersWorkflow"

#: The one error-spike detector of a namespace (signal-with-start from every auto-reported issue).
SPIKE_DETECTOR_ID = "error-spike-detector"
#: Temporal Schedules that start SummaryWorkflow.
DAILY_SUMMARY_SCHEDULE_ID = "summary-daily"
WEEKLY_SUMMARY_SCHEDULE_ID = "summary-weekly"
ENGAGEMENT_RETENTION_SCHEDULE_ID = "engagement-retention"


def event_workflow_id(event_id: str) -> str:
    """IssueEventWorkflow: one run per issue event, ever."""
    return f"event/{event_id}"


def sla_workflow_id(issue_id: str) -> str:
    """IssueSlaWorkflow: one per issue, fed by every event of that issue."""
    return f"issue/{issue_id}/sla"


def notify_workflow_id(source_id: str) -> str:
    """NotifyWorkflow: one per logical notification (an escalation tier, a send-test)."""
    return f"notify/{source_id}"


def digest_workflow_id(user_id: str) -> str:
    """DigestWorkflow: one per person, collecting their HOURLY / DAILY notifications."""
    return f"digest/{user_id}"


def redelivery_workflow_id(request_id: str) -> str:
    """RedeliveryWorkflow: one per operator request (the request id is its idempotency key)."""
    return f"redeliver/{request_id}"


def directory_sync_workflow_id(content_digest: str) -> str:
    """SyncUsersWorkflow: one per distinct batch of directory entries."""
    return f"directory/sync/{content_digest}"


def unread_workflow_id(source_id: str, notification_type: str, part: int = 0) -> str:
    """UnreadEscalationWorkflow: one read deadline per notification (source) and type, and per slice of a large one."""
    return f"unread/{source_id}/{notification_type}" + (f"/{part}" if part else "")
