"""SyncUsersWorkflow: the issue system's directory upsert, run by the worker that owns the database."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import VersioningBehavior

from notiflow.contracts import User
from notiflow.keys import SYNC_USERS_WORKFLOW
from workflows.delivery.pipeline import BOOKKEEPING_RETRY
from workflows.directory.interface import sync_users


@workflow.defn(name=SYNC_USERS_WORKFLOW, versioning_behavior=VersioningBehavior.PINNED)
class SyncUsersWorkflow:
    @workflow.run
    async def run(self, users: list[User]) -> int:
        written: int = await workflow.execute_activity(
            sync_users,
            users,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=BOOKKEEPING_RETRY,
        )
        return written


WORKFLOWS = [SyncUsersWorkflow]
