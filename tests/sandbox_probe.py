"""Workflows that try what no workflow may do (tests/test_sandbox.py): read the clock, draw random numbers,
make a uuid4, open a file. Kept in a module of their own, as light as a workflow module, so that the
sandbox re-imports it for each run exactly as it does the modules under ``workflows/``.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime

from temporalio import workflow
from temporalio.worker.workflow_sandbox import RestrictedWorkflowAccessError

ATTEMPTS = {
    "datetime.now()": lambda: datetime.now(),
    "random.random()": lambda: random.random(),
    "uuid.uuid4()": lambda: uuid.uuid4(),
    "open()": lambda: open(__file__).close(),
}


@workflow.defn
class NonDeterministicProbe:
    """Returns "refused" when the sandbox stops the call, "ran" when it went through."""

    @workflow.run
    async def run(self, attempt: str) -> str:
        try:
            ATTEMPTS[attempt]()
        except RestrictedWorkflowAccessError:
            return "refused"
        return "ran"
