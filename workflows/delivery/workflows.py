"""Delivery: the workflows that tell people something, one per module (the sandbox re-imports a run's module
for each run; a module of one workflow keeps that cheap).

- ``event.IssueEventWorkflow`` (id ``event/{event_id}``): one issue event, delivered to everyone who must hear.
- ``notify.NotifyWorkflow``: an explicit notification (type, audience, data) — send-test, escalations, alarms.
- ``pages.DeliverPagesWorkflow`` (id ``pages/{source id}``): a large plan's pages after its first; each of its slices
  a ``pages.SendSliceWorkflow`` (id ``pages/{source id}/slice/{n}``).
- ``redelivery.RedeliveryWorkflow`` (id ``redeliver/{request_id}``): an operator's choice of FAILED rows, again.
- ``unread.UnreadEscalationWorkflow`` (id ``unread/{source_id}/{type}``): escalation on unread, a read deadline
  started once a notification's deliveries are out, for each type whose rule is on.

The steps they share with every feature are in ``pipeline``.
"""

from __future__ import annotations

from workflows.delivery.event import IssueEventWorkflow
from workflows.delivery.notify import NotifyWorkflow
from workflows.delivery.pages import DeliverPagesWorkflow, SendSliceWorkflow
from workflows.delivery.redelivery import RedeliveryWorkflow
from workflows.delivery.unread import UnreadEscalationWorkflow

WORKFLOWS = [
    IssueEventWorkflow,
    NotifyWorkflow,
    RedeliveryWorkflow,
    UnreadEscalationWorkflow,
    DeliverPagesWorkflow,
    SendSliceWorkflow,
]
