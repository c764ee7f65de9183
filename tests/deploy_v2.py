"""Version 2 of tests/test_versioned_deploy.py: `notiflow worker` with one observable, replay-safe change.

``python -m tests.deploy_v2`` runs exactly what `notiflow worker` runs (``workers.main.run_worker``) after
prefixing every run's *current details* with ``v2 · ``: details are not part of the history, so a run that moves
from version 1 to this one replays cleanly, and a query answered by this worker shows which code ran it.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow

V2_MARK = "v2 · "

_set_current_details = workflow.set_current_details


def _v2_details(description: str) -> None:
    _set_current_details(V2_MARK + description)


def main() -> None:
    from notiflow.settings import load_settings
    from workers.main import run_worker

    workflow.set_current_details = _v2_details  # the sandbox passes temporalio through: workflows see this one
    print("worker version 2 starting", flush=True)
    asyncio.run(run_worker(load_settings()))


if __name__ == "__main__":
    main()
