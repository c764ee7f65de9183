"""SyncUsersWorkflow: the issue system's directory upsert, run by the worker that owns the database."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from notiflow.contracts import User

from workflows.delivery.workflows import BOOKKEEPING_RETRY


@workflow.defn(versioning_behavior=VersioningBehavior.PINNED)
class SyncUsersWorkflow:
    @workflow.run
    async def run(self, users: list[User]) -> int:
        written: int = await workflow.execute_activity(
            "sync_users",
            users,
            result_type=int,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=BOOKKEEPING_RETRY,
        )
        return written


WORKFLOWS = [SyncUsersWorkflow]
