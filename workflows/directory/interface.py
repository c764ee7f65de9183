"""The activity SyncUsersWorkflow calls (body in ``activities/directory``)."""

from __future__ import annotations

from temporalio import activity

from notiflow.contracts import User


@activity.defn
async def sync_users(users: list[User]) -> int:
    """Upsert directory entries; returns how many were written."""
    ...
