"""Every workflow the worker runs (kept out of ``workflows/__init__`` so a run imports only its own module)."""

from workflows.digest import DigestWorkflow
from workflows.directory import SyncUsersWorkflow
from workflows.error_spike import ErrorSpikeWorkflow
from workflows.issue_event import IssueEventWorkflow
from workflows.notify import NotifyWorkflow
from workflows.redelivery import RedeliveryWorkflow
from workflows.sla import IssueSlaWorkflow
from workflows.summary import SummaryWorkflow

ALL_WORKFLOWS = [IssueEventWorkflow, NotifyWorkflow, SyncUsersWorkflow,
                 IssueSlaWorkflow, DigestWorkflow, SummaryWorkflow, ErrorSpikeWorkflow, RedeliveryWorkflow]
