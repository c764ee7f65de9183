"""Workflow code compiled once per worker, not once per run.

The sandbox re-imports the workflow modules for every new run. Python loads a module from its cached
bytecode (``__pycache__``) when there is one, and compiles the source otherwise — and with
``PYTHONDONTWRITEBYTECODE`` set (this machine, many container images) it never writes one, so every run
compiled its workflow modules again: six files per IssueEventWorkflow run, measured with a spy on
``compile`` while replaying a recorded history. ``cache_workflow_bytecode`` compiles ``workflows/`` once
at start-up, into the package's ``__pycache__``, or into a directory of the worker's own
(``sys.pycache_prefix``) when the package is read-only.
"""

from __future__ import annotations

import compileall
import sys
import tempfile
from pathlib import Path

import workflows


def cache_workflow_bytecode() -> None:
    root = Path(workflows.__file__).parent
    if compileall.compile_dir(root, quiet=2):
        return
    sys.pycache_prefix = tempfile.mkdtemp(prefix="notiflow-bytecode-")
    compileall.compile_dir(root, quiet=2)
