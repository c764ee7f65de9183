"""Recorded histories replay against today's workflow code without non-determinism, on both sides of every patch.

``tests/histories/<set>/*.json`` are real runs' histories (tests/histories/README.md says which
code each set was recorded at). ``make histories`` re-records the ``current`` set (every workflow
type, every patch taken) from a real run; the older sets are kept, so the code paths from before
each ``workflow.patched`` keep replaying too.

Besides replaying every file, the gap checks here fail when a workflow type has no history, or a
patch id used in ``workflows/`` (found in the source, so a new patch is noticed by itself) has no
history that took it or none of the same workflow type that predates it.
"""

from __future__ import annotations

import ast
import functools
import importlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from notiflow.temporal import DATA_CONVERTER
from workers.main import WORKFLOW_RUNNER
from workers.registry import ALL_WORKFLOWS

ROOT = Path(__file__).resolve().parent.parent
HISTORY_DIR = Path(__file__).parent / "histories"
#: Every recorded history; a set's MANIFEST.json (written by ``make histories``) describes it and is not one.
HISTORIES = sorted(p for p in HISTORY_DIR.rglob("*.json") if p.name != "MANIFEST.json" and p.parent.name[0] != ".")
#: The marker Temporal's SDK core records for ``workflow.patched`` / ``deprecate_patch``.
PATCH_MARKER = "core_patch"
RERECORD = "run `make histories` (tests/record_histories.py) and commit the new tests/histories/current/"


def _name(path: Path) -> str:
    return str(path.relative_to(HISTORY_DIR).with_suffix(""))


def replayer() -> Replayer:
    return Replayer(workflows=ALL_WORKFLOWS, data_converter=DATA_CONVERTER, workflow_runner=WORKFLOW_RUNNER)


@functools.cache
def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(_name(path), path.read_text())


def workflow_type_of(history: WorkflowHistory) -> str:
    return history.events[0].workflow_execution_started_event_attributes.workflow_type.name


def patch_markers(history: WorkflowHistory) -> set[str]:
    """Patch ids recorded in a history: MarkerRecorded ``core_patch``, its details ``patch-data`` a JSON payload
    ``{"id": …, "deprecated": …}`` (older SDKs: ``patch_id`` as plain bytes)."""
    found = set()
    for event in history.events:
        if event.event_type != EventType.EVENT_TYPE_MARKER_RECORDED:
            continue
        marker = event.marker_recorded_event_attributes
        if marker.marker_name != PATCH_MARKER:
            continue
        data = marker.details.get("patch-data") or marker.details.get("patch_data")
        if data is not None:
            found.add(json.loads(data.payloads[0].data)["id"])
        elif "patch_id" in marker.details:  # the old format: plain bytes
            found.add(marker.details["patch_id"].payloads[0].data.decode())
    return found


def _patched_calls(tree: ast.AST) -> Iterator[ast.expr]:
    """The argument of every ``workflow.patched(...)`` / ``patched(...)`` call."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        if (isinstance(func, ast.Attribute) and func.attr == "patched") or (
            isinstance(func, ast.Name) and func.id == "patched"
        ):
            yield node.args[0]


def _resolve(module_name: str, arg: ast.expr) -> str:
    """A patch id as written: a literal, or a constant (``NAME`` or ``module.NAME``) resolved by importing the module."""
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    parts: list[str] = []
    node: ast.expr = arg
    while isinstance(node, ast.Attribute):
        parts.insert(0, node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        dotted = [node.id, *parts]
        module = importlib.import_module(module_name)
        if not hasattr(module, node.id):  # a fully qualified ``package.module.NAME``
            module = importlib.import_module(".".join(dotted[:-1]))
            dotted = dotted[-1:]
        value: object = module
        for part in dotted:
            value = getattr(value, part)
        if isinstance(value, str):
            return value
    raise AssertionError(f"{module_name}: cannot resolve the patch id {ast.unparse(arg)!r} to a string")


@functools.cache
def patch_ids() -> dict[str, str]:
    """Every patch id passed to ``workflow.patched`` under workflows/, with the module that uses it."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "workflows").rglob("*.py")):
        module_name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for arg in _patched_calls(ast.parse(path.read_text(), filename=str(path))):
            found.setdefault(_resolve(module_name, arg), module_name)
    return found


def registered_types() -> list[str]:
    return sorted(workflow._Definition.must_from_class(cls).name for cls in ALL_WORKFLOWS)


def test_patch_discovery_finds_the_known_patches():
    """The scan itself works: the two patches of the delivery pipeline are found by their ids."""
    assert {"delivery-outcome-visible", "critical-fallback"} <= set(patch_ids())


def test_patch_discovery_reads_literals_and_constants():
    """A new ``workflow.patched`` shows up by itself: a literal, a module constant or ``package.module.CONSTANT``
    (resolved here against this module's own constants)."""
    source = (
        "if workflow.patched('literal-id'):\n    pass\n"
        "if not workflow.patched(PATCH_MARKER) and patched(tests.test_replay.RERECORD):\n    pass\n"
        "workflow.deprecate_patch('gone')\n"
    )
    found = [_resolve(__name__, arg) for arg in _patched_calls(ast.parse(source))]
    assert sorted(found) == sorted(["literal-id", PATCH_MARKER, RERECORD])


@pytest.mark.parametrize("workflow_type", registered_types())
def test_every_workflow_type_has_a_recorded_history(workflow_type: str):
    recorded = [_name(p) for p in HISTORIES if workflow_type_of(load(p)) == workflow_type]
    assert recorded, f"no recorded history of {workflow_type}: {RERECORD}"


@pytest.mark.parametrize("patch_id", sorted(patch_ids()))
def test_every_patch_is_replayed_on_both_sides(patch_id: str):
    """A history that took the patch, and one of the same workflow type from before it (no marker)."""
    taken = {workflow_type_of(load(p)) for p in HISTORIES if patch_id in patch_markers(load(p))}
    assert taken, (
        f"patch {patch_id!r} ({patch_ids()[patch_id]}): no recorded history took it "
        f"(no {PATCH_MARKER} marker with this id): {RERECORD}"
    )
    before = {workflow_type_of(load(p)) for p in HISTORIES if patch_id not in patch_markers(load(p))}
    assert taken & before, (
        f"patch {patch_id!r}: histories of {sorted(taken)} took it, but none of those types has one from before it; "
        "keep (or restore from git) an older recording of that type beside tests/histories/current/, then "
        f"{RERECORD} — see tests/histories/README.md"
    )


def test_there_are_recorded_histories():
    assert HISTORIES, RERECORD


@pytest.mark.parametrize("path", HISTORIES, ids=[_name(p) for p in HISTORIES])
async def test_recorded_history_replays(path: Path):
    result = await replayer().replay_workflow(load(path), raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{_name(path)}: {result.replay_failure}"
