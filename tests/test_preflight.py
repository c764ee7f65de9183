"""`notiflow worker` refuses a namespace without the search attributes it writes (it would fail every event run
at its end, forever), naming the command that adds them; `notiflow search-attributes` adds them, idempotently."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from notiflow.temporal import DATA_CONVERTER
from tests.conftest import SEARCH_ATTRIBUTES
from tests.services import temporal_binary

#: The installed console script, as operators run it.
NOTIFLOW = [str(Path(sys.executable).parent / "notiflow")]


@pytest.fixture
async def bare_server():
    """A dev server with none of notiflow's search attributes (the suite's own server registers them)."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary("temporal"), data_converter=DATA_CONVERTER
    )
    yield env
    await env.shutdown()


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFLOW_", "SMTP_"))}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env | extra


def test_worker_stops_at_once_without_search_attributes_until_they_are_added(bare_server, database_url):
    env = _env(
        NOTIFLOW_DATABASE_URL=database_url,
        NOTIFLOW_TEMPORAL_ADDRESS=bare_server.client.service_client.config.target_host,
        NOTIFLOW_TASK_QUEUE="preflight-test",
        NOTIFLOW_JWT_SECRET="preflight-test-secret-of-at-least-32-bytes",
    )
    started = time.monotonic()
    refused = subprocess.run(NOTIFLOW + ["worker"], capture_output=True, text=True, timeout=60, env=env)
    assert refused.returncode != 0
    assert time.monotonic() - started < 20
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, refused.stderr
    assert "Traceback" not in refused.stderr + refused.stdout
    assert "`notiflow search-attributes`" in errors[0]
    for key in SEARCH_ATTRIBUTES:
        assert key.name in errors[0]

    first = subprocess.run(NOTIFLOW + ["search-attributes"], capture_output=True, text=True, timeout=60, env=env)
    assert first.returncode == 0, first.stderr
    assert {f"added {key.name} (Keyword)" for key in SEARCH_ATTRIBUTES} <= set(first.stdout.splitlines())
    again = subprocess.run(NOTIFLOW + ["search-attributes"], capture_output=True, text=True, timeout=60, env=env)
    assert again.returncode == 0, again.stderr
    assert {f"{key.name} exists" for key in SEARCH_ATTRIBUTES} <= set(again.stdout.splitlines())
    assert "added" not in again.stdout

    worker = subprocess.Popen(
        NOTIFLOW + ["worker"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    try:
        assert worker.stdout is not None
        seen = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = worker.stdout.readline()
            if not line:
                break
            seen.append(line)
            if "is current" in line:  # polling, and made its version current (the deployment's first)
                break
        assert any("is current" in line for line in seen), "".join(seen)
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=30)
        assert worker.returncode == 0, "".join(seen) + output
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def test_compose_adds_the_search_attributes_before_workers_start_and_makes_their_version_current():
    from tests.test_cli import _compose

    services = _compose()["services"]
    setup = services["search-attributes"]
    assert setup["command"] == ["notiflow", "search-attributes"] and setup["restart"] == "no"
    assert setup["depends_on"]["temporal-setup"]["condition"] == "service_completed_successfully"
    assert services["worker"]["depends_on"]["search-attributes"]["condition"] == "service_completed_successfully"
    promote = services["worker-version"]
    assert promote["command"][:3] == ["notiflow", "deployment", "make-current"] and promote["restart"] == "no"
    assert promote["environment"]["NOTIFLOW_BUILD_ID"] == services["worker"]["environment"]["NOTIFLOW_BUILD_ID"]
