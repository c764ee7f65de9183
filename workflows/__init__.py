"""Temporal workflows only: deterministic, no I/O."""

from workflows.directory import SyncUsersWorkflow
from workflows.issue_event import IssueEventWorkflow
from workflows.notify import NotifyWorkflow

ALL_WORKFLOWS = [IssueEventWorkflow, NotifyWorkflow, SyncUsersWorkflow]
