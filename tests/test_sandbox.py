"""The sandbox refuses non-deterministic calls in workflow code (issue 16 §1).

The worker's runner passes through third-party libraries, ``notiflow`` (the shared data layer) and each
feature's declarations (``workflows/<feature>/types.py``, pydantic models), never the project's workflow
code; the passed-through modules are checked here to make no call the sandbox would have refused. A probe workflow run by a real worker under that runner is refused each
call; the same probe under a runner that passes its module through — what the worker did before, for
the whole ``workflows`` package — runs them, which is what this test exists to catch.
"""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
import sys
import uuid
from collections.abc import Iterable
from pathlib import Path

import grimp
import pytest
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

import workflows
from notiflow.temporal import DATA_CONVERTER
from tests.sandbox_probe import ATTEMPTS, NonDeterministicProbe
from workers.main import DECLARATIONS, PASSED_THROUGH, WORKFLOW_RUNNER


async def _probe(client: Client, runner: SandboxedWorkflowRunner, attempt: str) -> str:
    queue = f"sandbox-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=queue, workflows=[NonDeterministicProbe], workflow_runner=runner):
        return await client.execute_workflow(
            NonDeterministicProbe.run, attempt, id=f"probe/{queue}", task_queue=queue, result_type=str
        )


@pytest.mark.parametrize("attempt", list(ATTEMPTS))
async def test_the_workers_sandbox_refuses_non_deterministic_calls(temporal_client: Client, attempt: str):
    client = Client(temporal_client.service_client, namespace=temporal_client.namespace, data_converter=DATA_CONVERTER)
    assert await _probe(client, WORKFLOW_RUNNER, attempt) == "refused"


async def test_passing_workflow_code_through_lets_them_run(temporal_client: Client):
    """The test can fail: with the probe's module passed through, as ``workflows`` was, the clock is read."""
    leaky = SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSED_THROUGH, "tests.sandbox_probe")
    )
    assert await _probe(temporal_client, leaky, "datetime.now()") == "ran"


def _module_matches(module: str, prefixes: Iterable[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_only_declarations_of_workflows_are_passed_through():
    passed = WORKFLOW_RUNNER.restrictions.passthrough_modules
    modules = [m.name for m in pkgutil.walk_packages(workflows.__path__, "workflows.")] + ["workflows"]
    leaked = [m for m in modules if _module_matches(m, passed) and m not in DECLARATIONS]
    assert not leaked, f"workflow code passed through the sandbox (its refusals off for it): {leaked}"


#: Calls no passed-through module may make: it would run unrefused inside a workflow.
FORBIDDEN_CALLS = {"now", "utcnow", "today", "fromtimestamp", "uuid1", "uuid4", "urandom", "open", "sleep"}
#: Reading the environment is allowed once, at import (in the host, before any run), never inside a function.
ENVIRONMENT = {"environ", "getenv"}
#: Modules a passed-through module may not import at all.
FORBIDDEN_IMPORTS = {"random", "uuid", "time", "secrets", "socket", "threading", "subprocess", "asyncio", "io"}


def _passed_through_project_modules() -> list[str]:
    """The declarations, and every module of ``notiflow/`` that workflow code imports (shared with the host)."""
    graph = grimp.build_graph("workflows", "notiflow", exclude_type_checking_imports=True, cache_dir=None)
    reached = {
        upstream
        for module in graph.find_descendants("workflows")
        for upstream in graph.find_upstream_modules(module)
        if upstream.startswith("notiflow")
    }
    return sorted(reached | set(DECLARATIONS))


def _is_declaration(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """An activity's signature (interface.py): a docstring and ``...``, nothing that could run."""
    body = [s for s in function.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    return not body or all(isinstance(s, ast.Expr) and s.value is Ellipsis for s in body)


@pytest.mark.parametrize("module", _passed_through_project_modules())
def test_passed_through_modules_make_no_call_the_sandbox_would_refuse(module: str):
    source = Path(importlib.util.find_spec(module).origin).read_text()  # type: ignore[union-attr, arg-type]
    tree = ast.parse(source)
    problems = [
        f"line {node.lineno}: reads the environment in {function.name}()"
        for function in ast.walk(tree)
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(function)
        if (isinstance(node, ast.Attribute) and node.attr in ENVIRONMENT)
        or (isinstance(node, ast.Name) and node.id in ENVIRONMENT)
    ]
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in FORBIDDEN_CALLS:
                problems.append(f"line {node.lineno}: calls {name}()")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            problems += [f"line {node.lineno}: imports {n}" for n in names if n.split(".")[0] in FORBIDDEN_IMPORTS]
            problems += [
                f"line {node.lineno}: imports {n}, workflow code that would be passed through with it"
                for n in names
                if n.startswith("workflows") and n not in DECLARATIONS
            ]
        elif (
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and module in DECLARATIONS
            and node.col_offset == 0
            and not _is_declaration(node)
        ):
            problems.append(f"line {node.lineno}: function {node.name}: logic belongs in rules.py, under the sandbox")
    assert not problems, f"{module} is passed through the sandbox, so nothing in it may be refused: {problems}"


def test_the_worker_compiles_workflow_code_once_not_per_run(tmp_path, monkeypatch):
    """With PYTHONDONTWRITEBYTECODE Python never caches bytecode, and the sandbox would compile per run."""
    from workers.bytecode import cache_workflow_bytecode

    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.setattr(sys, "pycache_prefix", str(tmp_path))  # where the cache goes, whatever the tree allows
    cache_workflow_bytecode()
    modules = [m for m in pkgutil.walk_packages(workflows.__path__, "workflows.") if not m.ispkg]
    missing = [
        m.name
        for m in modules
        if not Path(importlib.util.cache_from_source(importlib.util.find_spec(m.name).origin)).is_file()  # type: ignore[arg-type]
    ]
    assert modules and not missing, f"no cached bytecode for {missing}"
