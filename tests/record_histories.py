"""Re-record the replay fixtures in tests/histories from real runs.

    python -m tests.record_histories

Runs each scenario against a throwaway dev server, PostgreSQL database and
SMTP server, then writes every workflow's history as JSON.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from notiflow.client import NotificationClient
from notiflow.db import make_engine, make_sessionmaker
from notiflow.search import SEARCH_ATTRIBUTES
from notiflow.settings import Settings
from notiflow.templates.store import seed_templates
from notiflow.temporal import DATA_CONVERTER
from programs.dev.binaries import find_binary
from programs.dev.mailcatcher import MailCatcher
from tests.factories import ASSIGNEE, DIRECTORY, event, issue_dict, ref
from tests.services import migrated_database
from workers.main import build_worker

OUT = Path(__file__).parent / "histories"


async def record_issue_events(client, settings: Settings) -> None:
    nc = NotificationClient(client, settings)
    await nc.sync_users(DIRECTORY)
    scenarios = {
        "issue_event_created_high": event("ISSUE_CREATED"),
        "issue_event_assigned": event("ISSUE_ASSIGNED", issue=issue_dict(assignee=ref(ASSIGNEE))),
    }
    for name, evt in scenarios.items():
        handle = client.get_workflow_handle(await nc.publish(evt))
        await handle.result()
        (OUT / f"{name}.json").write_text((await handle.fetch_history()).to_json())
        print("recorded", name)


async def main() -> None:
    smtp = MailCatcher()
    smtp.start()
    try:
        async with migrated_database("notiflow_record") as url:
            await record(url, smtp)
    finally:
        smtp.stop()


async def record(url: str, smtp: MailCatcher) -> None:
    engine = make_engine(url, pool_size=1)
    await seed_templates(make_sessionmaker(engine))
    await engine.dispose()
    settings = Settings(database_url=url, task_queue="record", smtp_host="127.0.0.1", smtp_port=smtp.port)
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_binary("temporal"),
        data_converter=DATA_CONVERTER,
        search_attributes=SEARCH_ATTRIBUTES,
    )
    async with env, build_worker(env.client, settings):
        await record_issue_events(env.client, settings)


if __name__ == "__main__":
    asyncio.run(main())
