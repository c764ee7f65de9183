"""Everything the worker runs: each feature's workflows and activities, assembled in one place.

Workflows are listed by feature (``WORKFLOWS`` of each ``workflows/<feature>/workflows.py``),
kept out of ``workflows/__init__`` (which stays empty) so that a run, which the
sandbox re-imports, loads only its own feature's module. Activities are built
over the worker's shared resources (database pool, providers, Temporal client).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from notiflow.settings import Settings
from workflows.delivery.workflows import WORKFLOWS as DELIVERY
from workflows.digest.workflows import WORKFLOWS as DIGEST
from workflows.directory.workflows import WORKFLOWS as DIRECTORY
from workflows.engagement.workflows import WORKFLOWS as ENGAGEMENT
from workflows.sla.workflows import WORKFLOWS as SLA
from workflows.spike.workflows import WORKFLOWS as SPIKE
from workflows.summary.workflows import WORKFLOWS as SUMMARY

ALL_WORKFLOWS = [*DELIVERY, *DIRECTORY, *SLA, *DIGEST, *SUMMARY, *SPIKE, *ENGAGEMENT]


class FeatureActivities(Protocol):
    """What each ``activities/<feature>/activities.py`` class offers the worker."""

    def activities(self) -> list[Any]: ...


def worker_activities(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, client: Client
) -> tuple[list, Callable[[], Awaitable[None]]]:
    """Every activity of every feature, and how to close what they hold open (SMTP connections)."""
    from activities.delivery.activities import DeliveryActivities
    from activities.delivery.redelivery import RedeliveryActivities
    from activities.delivery.unread import UnreadActivities
    from activities.digest.activities import DigestActivities
    from activities.directory.activities import DirectoryActivities
    from activities.engagement.activities import EngagementActivities
    from activities.sla.activities import SlaActivities
    from activities.summary.activities import SummaryActivities

    delivery = DeliveryActivities(sessions, settings)
    features: list[FeatureActivities] = [
        delivery,
        RedeliveryActivities(sessions, settings),
        UnreadActivities(sessions, settings, client),
        DirectoryActivities(sessions),
        SlaActivities(sessions, settings, client),
        DigestActivities(sessions, settings, client),
        SummaryActivities(sessions, settings),
        EngagementActivities(sessions, settings),
    ]
    return [activity for feature in features for activity in feature.activities()], delivery.close
