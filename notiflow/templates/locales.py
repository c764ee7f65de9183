"""The shipped locale files (``en.yaml``, ``fr.yaml``): labels, formats and default templates.

Read once per process (a few milliseconds with libyaml); rendering itself does no I/O.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@lru_cache(maxsize=1)
def locale_documents() -> dict[str, dict[str, Any]]:
    """Each ``*.yaml`` of this package by its ``locale``, in file-name order."""
    documents: dict[str, dict[str, Any]] = {}
    for path in sorted(resources.files(__package__).iterdir(), key=lambda p: p.name):
        if path.name.endswith(".yaml"):
            document = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)  # noqa: S506 (a safe loader)
            documents[document["locale"]] = document
    return documents
