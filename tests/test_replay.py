"""Recorded histories replay against today's workflow code without non-determinism.

Every ``tests/histories/*.json`` is a real run's history; re-record them with
``python -m tests.record_histories`` only when a workflow change is meant to be
incompatible (and then version the workflow instead, for runs in flight).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from notiflow.temporal import DATA_CONVERTER
from workers.main import WORKFLOW_RUNNER
from workers.registry import ALL_WORKFLOWS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def replayer() -> Replayer:
    return Replayer(workflows=ALL_WORKFLOWS, data_converter=DATA_CONVERTER, workflow_runner=WORKFLOW_RUNNER)


def test_there_are_recorded_histories():
    assert any(p.name.startswith("issue_event") for p in HISTORIES), "run python -m tests.record_histories"


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays(path: Path):
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    result = await replayer().replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
