"""Temporal workflows only: deterministic, no I/O."""

from workflows.digest import DigestWorkflow
from workflows.directory import SyncUsersWorkflow
from workflows.error_spike import ErrorSpikeWorkflow
from workflows.issue_event import IssueEventWorkflow
from workflows.notify import NotifyWorkflow
from workflows.sla import IssueSlaWorkflow
from workflows.summary import SummaryWorkflow

ALL_WORKFLOWS = [IssueEventWorkflow, NotifyWorkflow, SyncUsersWorkflow,
                 IssueSlaWorkflow, DigestWorkflow, SummaryWorkflow, ErrorSpikeWorkflow]
