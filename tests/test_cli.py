"""The commands a person runs: `notiflow demo`, `notiflow dev`, `notiflow emit`, and the compose file."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest
import yaml

from notiflow.db import asyncpg_dsn
from notiflow.settings import Settings, load_settings
from programs.dev.ports import free_port
from tests.factories import event_dict, issue_dict

ROOT = Path(__file__).resolve().parent.parent
#: The installed command, as a person runs it (programs.cli:app).
NOTIFLOW = [str(Path(sys.executable).parent / "notiflow")]
#: What `notiflow api` and `notiflow worker` need to start outside `notiflow dev`.
SERVER_SECRET = {"NOTIFLOW_JWT_SECRET": "cli-test-secret-of-at-least-thirty-two-bytes"}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFLOW_", "SMTP_"))}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env | extra


def _descendants_alive(pid: int) -> list[psutil.Process]:
    try:
        return [p for p in psutil.Process(pid).children(recursive=True) if p.is_running()]
    except psutil.NoSuchProcess:
        return []


def test_demo_prints_the_delivery_report_and_leaves_nothing_running(tmp_path):
    result = subprocess.run(NOTIFLOW + ["demo"], capture_output=True, text=True, timeout=180, cwd=tmp_path, env=_env())
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "Delivery report" in out and "ISSUE_ASSIGNED" in out and "AUTO_ISSUE_DETECTED" in out
    assert "ISSUE_OVERDUE" in out and "Escalation: ISS-51" in out and "DAILY_ISSUE_SUMMARY" in out
    assert "0 failed" in out and "FAILED" not in out
    # the demo SMS (the on-call admin chose SMS for AUTO_ISSUE_DETECTED) and the subscriptions' deliveries, listed
    assert "1 SMS caught by the local gateway" in out and "+261341234567" in out and "ISS-77" in out
    assert "6 webhook, Slack and Teams deliveries caught" in out
    assert "AUTO_ISSUE_DETECTED ISS-77" in out and "/slack" in out and "Adaptive Card 1.5" in out
    assert not any(
        "temporal" in " ".join(p.cmdline()) and str(tmp_path) in (p.cwd() or "")
        for p in psutil.process_iter()
        if p.is_running() and p.pid != os.getpid()
        if _safe_cwd(p)
    )


def _safe_cwd(p: psutil.Process) -> bool:
    try:
        p.cwd()
        return True
    except (psutil.Error, OSError):
        return False


def test_dev_runs_the_stack_until_ctrl_c(tmp_path, database_url):
    ports = {
        "NOTIFLOW_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "NOTIFLOW_UI_PORT": str(free_port()),
        "NOTIFLOW_API_PORT": str(free_port()),
        "NOTIFLOW_CODEC_PORT": str(free_port()),
    }
    process = subprocess.Popen(
        NOTIFLOW + ["dev"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
        env=_env(
            NOTIFLOW_DATABASE_URL=database_url,
            NOTIFLOW_CODEC_KEY=base64.b64encode(os.urandom(32)).decode(),
            # an operator's own secret: everything printed, /demo included, must still work with it
            NOTIFLOW_JWT_SECRET=base64.b64encode(os.urandom(36)).decode(),
            **ports,
        ),
    )
    try:
        lines = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if "Ctrl-C stops everything" in line or process.poll() is not None:
                break
        output = "".join(lines)
        assert "Ctrl-C stops everything" in output, output[-3000:]
        assert f"http://localhost:{ports['NOTIFLOW_UI_PORT']}" in output and "Bearer tokens" in output
        with urllib.request.urlopen(f"http://127.0.0.1:{ports['NOTIFLOW_API_PORT']}/healthz", timeout=5) as reply:
            assert reply.status == 200
        printed = output.splitlines()
        admin_token = printed[printed.index("  demo admin (u-admin):") + 1].strip()
        request = urllib.request.Request(
            f"http://127.0.0.1:{ports['NOTIFLOW_API_PORT']}/api/v1/notifications/templates",
            headers={"Authorization": f"Bearer {admin_token}"},
        )
        with urllib.request.urlopen(request, timeout=5) as reply:  # the printed token works as printed
            assert reply.status == 200 and json.loads(reply.read())
        with urllib.request.urlopen(f"http://127.0.0.1:{ports['NOTIFLOW_UI_PORT']}/", timeout=5) as reply:
            assert reply.status == 200  # the Temporal web UI
        assert f"http://localhost:{ports['NOTIFLOW_API_PORT']}/demo" in output
        with urllib.request.urlopen(f"http://127.0.0.1:{ports['NOTIFLOW_API_PORT']}/demo/session", timeout=5) as reply:
            assert reply.status == 200 and json.loads(reply.read())["user_id"] == "u-agent"
        _assert_the_ui_decodes_through_a_private_codec(ports, admin_token)
        service_token = printed[printed.index("  issue system (service):") + 1].strip()
        _assert_sms_and_webhooks_reach_the_local_catchers(tmp_path / ".notiflow", ports, service_token, output)
        _assert_push_reaches_the_local_receiver(tmp_path / ".notiflow", ports, service_token, output)
        children = _descendants_alive(process.pid)
        assert children, "the dev server should run as a child process"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
        time.sleep(0.5)
        assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    finally:
        if process.poll() is None:
            process.kill()


def _post_json(url: str, body: dict, headers: dict[str, str] | None = None) -> tuple[int, dict, dict]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status, dict(reply.headers), json.loads(reply.read())
    except urllib.error.HTTPError as refused:
        return refused.code, dict(refused.headers), json.loads(refused.read())


def _assert_the_ui_decodes_through_a_private_codec(ports: dict[str, str], admin_token: str) -> None:
    """The dev UI has no login, so it cannot pass a token: it is pointed at a codec listener on 127.0.0.1."""
    ui = f"http://127.0.0.1:{ports['NOTIFLOW_UI_PORT']}"
    with urllib.request.urlopen(f"{ui}/api/v1/settings", timeout=5) as reply:
        endpoint = json.loads(reply.read())["Codec"]["Endpoint"]
    assert endpoint == f"http://127.0.0.1:{ports['NOTIFLOW_CODEC_PORT']}/codec"
    plain = {
        "payloads": [
            {
                "metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
                "data": base64.b64encode(b'{"email": "rakoto@example.mg"}').decode(),
            }
        ]
    }
    origin = {"Origin": f"http://localhost:{ports['NOTIFLOW_UI_PORT']}"}
    status, headers, sealed = _post_json(f"{endpoint}/encode", plain, origin)
    assert status == 200 and headers["access-control-allow-origin"] == origin["Origin"]
    assert _post_json(f"{endpoint}/decode", sealed, origin)[2] == plain
    api = f"http://127.0.0.1:{ports['NOTIFLOW_API_PORT']}/codec/decode"
    assert _post_json(api, sealed)[0] == 401  # the API's own codec routes want a token
    assert _post_json(api, sealed, {"Authorization": f"Bearer {admin_token}"})[2] == plain


def _filed(folder: Path, count: int, timeout: float = 30) -> list[dict]:
    """The first ``count`` requests a catcher filed (``NNNNN.json`` listed in ``index.txt``), waiting for them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        index = folder / "index.txt"
        lines = index.read_text().splitlines() if index.exists() else []
        if len(lines) >= count:
            return [json.loads((folder / line.split("\t")[0]).read_text()) for line in lines]
        time.sleep(0.2)
    raise AssertionError(f"{folder} holds fewer than {count} requests")


def _assert_sms_and_webhooks_reach_the_local_catchers(
    data_dir: Path, ports: dict[str, str], token: str, printed: str
) -> None:
    """A critical auto-reported issue: an SMS to the on-call demo admin, a delivery to each demo subscription."""
    assert "SMS catcher" in printed and "Webhook catcher" in printed and "Demo subscriptions" in printed
    raw = event_dict(issue=issue_dict(priority="CRITICAL", is_auto_reported=True))
    status, _, _ = _post_json(
        f"http://127.0.0.1:{ports['NOTIFLOW_API_PORT']}/api/v1/events", raw, {"Authorization": f"Bearer {token}"}
    )
    assert status == 202
    [sms] = _filed(data_dir / "sms", 1)
    assert sms["body"]["to"] == "+261341234567" and raw["issue"]["id"] in sms["body"]["text"]
    assert sms["headers"]["authorization"] == "[redacted]" and sms["body"]["from"] == "NOTIFLOW"
    hooks = {request["path"]: request for request in _filed(data_dir / "webhooks", 3)}
    assert set(hooks) == {"/webhook", "/slack", "/teams"}
    assert hooks["/webhook"]["body"]["type"] == "AUTO_ISSUE_DETECTED"
    assert hooks["/webhook"]["headers"]["webhook-signature"].startswith("v1,")
    assert hooks["/slack"]["body"]["blocks"] and hooks["/teams"]["status"] == 202


def _assert_push_reaches_the_local_receiver(data_dir: Path, ports: dict[str, str], token: str, printed: str) -> None:
    """An assignment to the demo agent: their browser (decrypted), Android (FCM) and iPhone (APNs) get it."""
    assert "Push receiver" in printed and "Demo push devices" in printed
    agent = {"id": "u-agent", "name": "Rakoto Andry", "email": "rakoto@example.mg", "locale": "fr"}
    raw = event_dict("ISSUE_ASSIGNED", issue=issue_dict(assignee=agent))
    status, _, _ = _post_json(
        f"http://127.0.0.1:{ports['NOTIFLOW_API_PORT']}/api/v1/events", raw, {"Authorization": f"Bearer {token}"}
    )
    assert status == 202
    pushes = {push["kind"]: push for push in _filed(data_dir / "push", 3)}
    assert set(pushes) == {"WEB", "FCM", "APNS"}
    assert pushes["WEB"]["payload"]["issue_id"] == raw["issue"]["id"]  # decrypted with the demo browser's keys
    assert raw["issue"]["id"] in pushes["FCM"]["payload"]["notification"]["body"]
    assert raw["issue"]["id"] in pushes["APNS"]["payload"]["aps"]["alert"]["body"]


def test_emit_rejects_a_malformed_event_naming_the_field(tmp_path):
    raw = event_dict()
    raw["issue"]["priority"] = "URGENT"
    result = subprocess.run(
        NOTIFLOW + ["emit", "-"], input=json.dumps(raw), capture_output=True, text=True, timeout=30, env=_env()
    )
    assert result.returncode == 1
    assert "issue.priority" in result.stderr


def test_api_start_up_refuses_a_missing_or_short_jwt_secret():
    for command in ("api", "worker"):
        for secret, says in ((None, "is not set"), ("short-secret", "is 12 bytes")):
            extra = {"NOTIFLOW_JWT_SECRET": secret} if secret else {}
            result = subprocess.run(
                NOTIFLOW + [command],
                capture_output=True,
                text=True,
                timeout=60,
                env=_env(NOTIFLOW_DATABASE_URL="postgresql+asyncpg://x@127.0.0.1/x", **extra),
            )
            lines = result.stderr.strip().splitlines()
            assert result.returncode == 2 and len(lines) == 1, (command, result.stderr)
            assert "NOTIFLOW_JWT_SECRET" in lines[0] and says in lines[0] and "short-secret" not in lines[0]


def test_the_api_access_log_holds_no_tokens(database_url):
    from notiflow.tokens import UnsubscribeRequest, make_api_token, make_unsubscribe_token

    port = free_port()
    process = subprocess.Popen(
        NOTIFLOW + ["api"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(NOTIFLOW_DATABASE_URL=database_url, NOTIFLOW_API_PORT=str(port), **SERVER_SECRET),
    )
    secret = SERVER_SECRET["NOTIFLOW_JWT_SECRET"]
    stream_token = make_api_token("another-secret-of-at-least-thirty-two-bytes", "u-1", [], 300)
    link_token = make_unsubscribe_token(secret, UnsubscribeRequest("u-1", "ISSUE_CREATED", "EMAIL"))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None, "notiflow api did not start"
                time.sleep(0.2)
        for path in (
            f"/api/v1/notifications/inbox/stream?access_token={stream_token}&x=1",
            f"/api/v1/notifications/unsubscribe/{link_token}",
        ):
            try:
                urllib.request.urlopen(base + path, timeout=5).close()
            except urllib.error.HTTPError:
                pass
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert "GET /api/v1/notifications/inbox/stream?access_token=[redacted]&x=1" in output, output
    assert "GET /api/v1/notifications/unsubscribe/[redacted]" in output, output
    assert stream_token not in output and link_token not in output and link_token.split(".")[2] not in output


#: What an operator must put in .env before `docker compose up` (the compose file has no default for them).
COMPOSE_REQUIRED = {
    "NOTIFLOW_JWT_SECRET": "compose-test-secret-of-at-least-thirty-two-bytes",
    "NOTIFLOW_PAYLOAD_KEYS": "2025-07:" + base64.b64encode(bytes(32)).decode(),
    "NOTIFLOW_SMS_TOKEN": "staging-token",
    "NOTIFLOW_DB_PASSWORD": "notiflow-db-password",
    "TEMPORAL_DB_PASSWORD": "temporal-db-password",
}
_VARIABLE = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


class ComposeVariableMissing(Exception):
    pass


def _interpolate(value, env: dict[str, str]):
    """What `docker compose config` does to the file: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, $$."""
    if isinstance(value, dict):
        return {k: _interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match) -> str:
        escaped, name, colon, kind, word, bare = match.groups()
        if escaped:
            return "$"
        name = name or bare
        present = name in env and (env[name] != "" or not colon)
        if present:
            return env[name]
        if kind == "?":
            raise ComposeVariableMissing(f"{name}: {word}")
        return word if kind == "-" else ""

    return _VARIABLE.sub(one, value)


def _compose(env: dict[str, str] | None = None) -> dict:
    raw = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return _interpolate(raw, COMPOSE_REQUIRED if env is None else env)


def _known_variables() -> set[str]:
    known = set()
    for name, field in Settings.model_fields.items():
        known.add(f"NOTIFLOW_{name.upper()}")
        alias = field.validation_alias
        known.update(getattr(alias, "choices", []) or [])
    return known


def test_compose_file_describes_the_production_stack_with_real_setting_names(monkeypatch):
    services = _compose()["services"]
    assert {"postgres", "temporal", "temporal-ui", "worker", "api", "migrate", "codec"} <= set(services)
    assert "postgres" in services["temporal"]["environment"]["DB"]  # Temporal persists in PostgreSQL
    assert services["worker"]["command"] == ["notiflow", "worker"]
    assert services["api"]["command"] == ["notiflow", "api"]
    assert services["migrate"]["command"] == ["notiflow", "migrate"] and services["migrate"]["restart"] == "no"
    known = _known_variables()
    for service in ("worker", "api", "codec", "migrate", "catchers"):
        env = services[service]["environment"]
        unknown = set(env) - known
        assert not unknown, f"{service} sets variables notiflow does not read: {unknown}"
    for name in [n for n in os.environ if n.startswith(("NOTIFLOW_", "SMTP_"))]:
        monkeypatch.delenv(name)
    for name, value in services["worker"]["environment"].items():
        monkeypatch.setenv(name, str(value))
    settings = load_settings()  # every value parses, read as the container reads it
    assert settings.payload_keyring[0][0] == "2025-07"  # histories are encrypted
    assert settings.sms_url == "http://catchers:9001/sms" and settings.smtp_host == "mailpit"  # staging catchers
    assert settings.outbound_allow == "catchers"  # the catchers' private address is allowed, nothing else
    for service in ("worker", "api"):
        depends = services[service]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["temporal-setup"]["condition"] == "service_completed_successfully"


def test_compose_file_has_no_usable_secret_and_keeps_the_codec_private():
    text = (ROOT / "docker-compose.yml").read_text()
    raw = yaml.safe_load(text)["services"]
    assert raw["api"]["environment"]["NOTIFLOW_JWT_SECRET"].startswith("${NOTIFLOW_JWT_SECRET:?")
    assert raw["worker"]["environment"]["NOTIFLOW_PAYLOAD_KEYS"].startswith("${NOTIFLOW_PAYLOAD_KEYS:?")
    for name in COMPOSE_REQUIRED:  # `docker compose up` refuses to start without each of them
        with pytest.raises(ComposeVariableMissing, match=name):
            _compose({k: v for k, v in COMPOSE_REQUIRED.items() if k != name})
    services = _compose()["services"]
    assert services["codec"]["command"] == ["notiflow", "codec"]
    assert services["codec"]["ports"] == ["127.0.0.1:8081:8081"]  # loopback of the host only
    assert services["temporal-ui"]["environment"]["TEMPORAL_CODEC_ENDPOINT"] == "http://localhost:8081/codec"
    for name, service in services.items():
        published = [p for p in service.get("ports", []) if not p.startswith("127.0.0.1:")]
        # the API, and the bounce receiver (the bounce domain's MX: other mail systems must reach it)
        assert name in ("api", "bounces") or not published, f"{name} is published beyond loopback: {published}"


def test_compose_ui_passes_the_operators_token_to_the_api_codec_when_behind_sso():
    sso = COMPOSE_REQUIRED | {
        "TEMPORAL_CODEC_ENDPOINT": "https://notiflow.example.mg/codec",
        "TEMPORAL_CODEC_PASS_ACCESS_TOKEN": "true",
        "TEMPORAL_AUTH_ENABLED": "true",
    }
    ui = _compose(sso)["services"]["temporal-ui"]["environment"]
    assert ui["TEMPORAL_CODEC_ENDPOINT"] == "https://notiflow.example.mg/codec"
    assert ui["TEMPORAL_CODEC_PASS_ACCESS_TOKEN"] == "true" and ui["TEMPORAL_AUTH_ENABLED"] == "true"
    assert _compose()["services"]["temporal-ui"]["environment"]["TEMPORAL_CODEC_PASS_ACCESS_TOKEN"] == "false"


def test_compose_images_are_current_and_pinned():
    services = _compose()["services"]
    for name, service in services.items():
        if "build" in service:
            continue
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and re.fullmatch(r"v?\d+(\.\d+)*", tag), f"{name}: {image} is not pinned to a version"
    images = {service.get("image", "").split(":")[0] for service in services.values()}
    assert "temporalio/auto-setup" not in images  # deprecated: no new images (temporalio/features#707)
    assert {"temporalio/server", "temporalio/admin-tools", "temporalio/ui"} <= images
    server = services["temporal"]["image"].split(":")[1]
    assert all(
        s["image"] == f"temporalio/admin-tools:{server}"
        for n, s in services.items()
        if n.startswith("temporal-") and s.get("image", "").startswith("temporalio/admin-tools")
    )  # tools of the server's own version


def test_compose_admin_tools_create_the_schemas_and_register_every_search_attribute():
    from notiflow.search import SEARCH_ATTRIBUTES

    services = _compose()["services"]
    schema = services["temporal-schema"]
    assert schema["image"].startswith("temporalio/admin-tools:") and schema["restart"] == "no"
    script = "\n".join(schema["command"])
    env = schema["environment"]
    assert (env["DBNAME"], env["VISIBILITY_DBNAME"]) == ("temporal", "temporal_visibility")
    assert script.count("temporal-sql-tool") >= 5 and "$DBNAME" in script and "$VISIBILITY_DBNAME" in script
    for step in (
        "create",
        "setup-schema -v 0.0",
        "update-schema -d /etc/temporal/schema/postgresql/v12/temporal/versioned",
        "update-schema -d /etc/temporal/schema/postgresql/v12/visibility/versioned",
    ):
        assert step in script, step
    assert services["temporal"]["depends_on"]["temporal-schema"]["condition"] == "service_completed_successfully"
    assert "AUTO_SETUP" not in services["temporal"]["environment"]

    setup = services["temporal-setup"]
    assert setup["image"].startswith("temporalio/admin-tools:") and setup["restart"] == "no"
    registered = dict(pair.split("=") for pair in setup["environment"]["SEARCH_ATTRIBUTES"].split())
    assert registered == {key.name: "Keyword" for key in SEARCH_ATTRIBUTES}
    assert all(key.indexed_value_type.name == "KEYWORD" for key in SEARCH_ATTRIBUTES)
    script = "\n".join(setup["command"])
    assert "temporal operator search-attribute create" in script and "--retention" in script
    assert setup["environment"]["NAMESPACE"] == services["worker"]["environment"]["NOTIFLOW_TEMPORAL_NAMESPACE"]


def test_compose_runs_several_workers_and_the_staging_catchers():
    services = _compose()["services"]
    worker = services["worker"]
    assert worker["deploy"]["replicas"] >= 2 and "ports" not in worker and "container_name" not in worker
    assert worker["stop_grace_period"]  # each replica drains its activities on SIGTERM
    assert services["mailpit"]["image"].startswith("axllent/mailpit:")
    assert services["catchers"]["command"][:2] == ["notiflow", "catchers"]
    assert services["worker"]["environment"]["SMTP_HOST"] == "mailpit"


def test_catchers_file_what_they_get_and_check_the_sms_token(tmp_path):
    sms_port, hooks_port = free_port(), free_port()
    process = subprocess.Popen(
        NOTIFLOW
        + ["catchers", "--sms-port", str(sms_port), "--hooks-port", str(hooks_port), "--folder", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(NOTIFLOW_SMS_TOKEN="staging-token"),
    )
    try:
        assert "SMS catcher" in process.stdout.readline()
        sms = {"to": "+261341234567", "from": "NOTIFLOW", "text": "ISS-1 critical"}
        assert _post_json(f"http://127.0.0.1:{sms_port}/sms", sms)[0] == 401  # no token
        status, _, answer = _post_json(
            f"http://127.0.0.1:{sms_port}/sms", sms, {"Authorization": "Bearer staging-token"}
        )
        assert status == 200 and answer == {"id": "sms-00001"}
        request = urllib.request.Request(f"http://127.0.0.1:{hooks_port}/teams", data=b"{}", method="POST")
        with urllib.request.urlopen(request, timeout=5) as reply:
            assert reply.status == 202
        assert _filed(tmp_path / "sms", 1)[0]["body"] == sms
        assert _filed(tmp_path / "webhooks", 1)[0]["path"] == "/teams"
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)
    assert process.returncode == 0


async def test_migrate_creates_every_table_and_seeds_templates_idempotently(postgres):
    import asyncpg

    url = await postgres.create_database("notiflow_migrate")
    try:
        for _ in range(2):
            result = subprocess.run(
                NOTIFLOW + ["migrate"], capture_output=True, text=True, timeout=120, env=_env(NOTIFLOW_DATABASE_URL=url)
            )
            assert result.returncode == 0, result.stderr
        assert "0 default templates added" in result.stdout  # the second run adds nothing
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            tables = {
                r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
            }
            templates = await conn.fetchval("SELECT count(*) FROM notification_templates WHERE is_active")
            policies = await conn.fetchval("SELECT count(*) FROM escalation_policies")
        finally:
            await conn.close()
        assert {
            "notification_templates",
            "notification_preferences",
            "notification_queue",
            "notification_logs",
            "users",
            "issues",
            "issue_events",
            "in_app_notifications",
            "webhook_subscriptions",
            "escalation_policies",
        } <= tables
        assert templates >= 12 * 2 * 2 and policies == 4
    finally:
        await postgres.drop_database(url)


def test_worker_stops_gracefully_on_sigterm(database_url, temporal_env):
    address = temporal_env.client.service_client.config.target_host
    process = subprocess.Popen(
        NOTIFLOW + ["worker"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(
            NOTIFLOW_DATABASE_URL=database_url,
            NOTIFLOW_TEMPORAL_ADDRESS=address,
            NOTIFLOW_TASK_QUEUE="sigterm-test",
            **SERVER_SECRET,
        ),
    )
    try:
        first = process.stdout.readline()
        assert "worker on task queue" in first, first + process.stdout.read(3000)
        time.sleep(1.5)
        assert process.poll() is None
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
        assert process.returncode == 0, output[-3000:]
    finally:
        if process.poll() is None:
            process.kill()


def test_processes_name_an_unreachable_database_in_one_line():
    down = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/notiflow"
    for command in ("api", "migrate", "worker"):
        result = subprocess.run(
            NOTIFLOW + [command],
            capture_output=True,
            text=True,
            timeout=60,
            env=_env(NOTIFLOW_DATABASE_URL=down, **SERVER_SECRET),
        )
        assert result.returncode == 1, (command, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "cannot reach PostgreSQL" in lines[0] and "NOTIFLOW_DATABASE_URL" in lines[0], lines
