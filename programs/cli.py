"""The `notiflow` command (Typer)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from notiflow.settings import Settings, SettingsError, get_settings

app = typer.Typer(
    help="Durable, Temporal-driven notifications for the issue tracker.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
schedules_app = typer.Typer(help="Temporal Schedules for the daily and weekly summaries.")
app.add_typer(schedules_app, name="schedules")
deployment_app = typer.Typer(help="Worker Deployment `notiflow`: which version gets new runs (README, Deploying).")
app.add_typer(deployment_app, name="deployment")
console = Console(width=None if sys.stdout.isatty() else 150)
errors = Console(stderr=True, soft_wrap=True)


def _settings() -> Settings:
    try:
        return get_settings()
    except SettingsError as exc:
        errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None


def _database_url(settings: Settings) -> str:
    try:
        return settings.require_database_url()
    except SettingsError as exc:
        errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None


def _require_jwt_secret(settings: Settings) -> None:
    """`notiflow dev` and `demo` may sign with the built-in secret; the processes meant for a server may not."""
    try:
        settings.require_jwt_secret()
    except SettingsError as exc:
        errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None


def _run(coro) -> None:
    """Run on uvloop where it is installed (Linux, macOS): the worker is CPU-bound on socket I/O."""
    try:
        import uvloop
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    try:
        runner(coro)
    except KeyboardInterrupt:
        pass
    except (SettingsError, RuntimeError) as exc:
        errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None


@app.command()
def migrate() -> None:
    """Apply database migrations (Alembic upgrade head) and seed the default templates."""
    settings = _settings()

    async def main() -> None:
        from notiflow.db import check_database, make_engine, make_sessionmaker, upgrade_head
        from notiflow.templates.store import seed_templates

        url = settings.require_database_url()
        await check_database(url)
        await asyncio.to_thread(upgrade_head, url)
        engine = make_engine(url, pool_size=1)
        added = await seed_templates(make_sessionmaker(engine))
        await engine.dispose()
        console.print(f"database at head; {added} default templates added")

    _run(main())


@app.command("vapid-keys")
def vapid_keys() -> None:
    """Print a new VAPID key pair for Web Push (NOTIFLOW_VAPID_PRIVATE_KEY and the public key browsers get)."""
    from notiflow.vapid import new_pair

    private, public = new_pair()
    print(f"NOTIFLOW_VAPID_PRIVATE_KEY={private}")
    print(f"# public key (GET /api/v1/notifications/push/vapid-public-key serves it): {public}")


@app.command()
def worker() -> None:
    """Run the worker against the configured Temporal and PostgreSQL (Ctrl-C / SIGTERM stops it gracefully)."""
    settings = _settings()
    _require_jwt_secret(settings)
    from notiflow.db import check_database
    from workers.main import run_worker

    _run(check_database(_database_url(settings)))
    errors.print(f"worker on task queue {settings.task_queue!r} at {settings.temporal_address}")
    _run(run_worker(settings))


@app.command()
def api() -> None:
    """Serve the HTTP API (uvicorn)."""
    settings = _settings()
    _require_jwt_secret(settings)
    import uvicorn

    from notiflow.db import check_database
    from programs.api.access_log import uvicorn_log_config
    from programs.api.app import create_app

    _run(check_database(_database_url(settings)))
    uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port, log_config=uvicorn_log_config())


@app.command()
def codec() -> None:
    """Serve /codec/encode and /codec/decode without a token on NOTIFLOW_CODEC_HOST:NOTIFLOW_CODEC_PORT.

    For a web UI that cannot pass the operator's token: bind it to a private address only.
    """
    settings = _settings()
    import uvicorn

    from programs.api.access_log import uvicorn_log_config
    from programs.api.codec import create_codec_app

    uvicorn.run(
        create_codec_app(settings), host=settings.codec_host, port=settings.codec_port, log_config=uvicorn_log_config()
    )


@app.command()
def emit(
    file: str = typer.Argument(
        ..., help="IssueEvent JSON file, or - for standard input (one object, a list, or one object per line)"
    ),
) -> None:
    """Publish IssueEvent JSON; prints one workflow id per event."""
    from notiflow.contracts import InvalidEvent, parse_event

    text = sys.stdin.read() if file == "-" else Path(file).read_text()
    stripped = text.strip()
    try:
        if stripped.startswith("["):
            events = [parse_event(item) for item in json.loads(stripped)]
        elif "\n" in stripped and not stripped.startswith("{\n"):
            events = [parse_event(line) for line in stripped.splitlines() if line.strip()]
        else:
            events = [parse_event(stripped)]
    except InvalidEvent as exc:
        errors.print(f"[red]rejected:[/] {exc}")
        raise typer.Exit(1) from None
    except json.JSONDecodeError as exc:
        errors.print(f"[red]rejected:[/] not JSON: {exc}")
        raise typer.Exit(1) from None
    settings = _settings()

    async def main() -> None:
        from notiflow.client import NotificationClient

        nc = await NotificationClient.connect(settings=settings)
        for event in events:
            console.print(await nc.publish(event))

    _run(main())


@app.command()
def redeliver(
    issue: str | None = typer.Option(None, help="only rows about this issue id"),
    channel: str | None = typer.Option(None, help="EMAIL, IN_APP, …"),
    notification_type: str | None = typer.Option(None, "--type", help="e.g. ISSUE_ASSIGNED"),
    recipient: str | None = typer.Option(None, help="only this person's rows (user id)"),
    run: str | None = typer.Option(None, help="only rows of this workflow id, e.g. event/evt-9f2c"),
    since: str | None = typer.Option(None, help="created at or after (ISO 8601 with a zone)"),
    until: str | None = typer.Option(None, help="created before (ISO 8601 with a zone)"),
    request_id: str | None = typer.Option(None, help="idempotency key: the same id again sends nothing more"),
    requested_by: str = typer.Option(..., "--by", help="who asks (recorded in the audit log)"),
    wait: bool = typer.Option(True, help="wait for the redelivery to finish and print its outcome"),
) -> None:
    """Send FAILED deliveries again (status FAILED; narrow with the filters). Same Message-IDs as before."""
    from pydantic import ValidationError

    from notiflow.runs import RedeliveryFilter

    try:
        wanted = RedeliveryFilter(
            issue_id=issue,
            channel=channel,
            notification_type=notification_type,
            recipient_id=recipient,
            workflow_id=run,
            created_from=since,
            created_to=until,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        errors.print(f"[red]error:[/] --{first['loc'][0]}: {first['msg']}")
        raise typer.Exit(2) from None
    settings = _settings()

    async def main() -> None:
        from notiflow.client import NotificationClient
        from notiflow.runs import DeliveryOutcome

        nc = await NotificationClient.connect(settings=settings)
        workflow_id = await nc.redeliver(wanted, requested_by=requested_by, request_id=request_id)
        console.print(workflow_id)
        if wait:
            outcome = await nc.temporal.get_workflow_handle(workflow_id, result_type=DeliveryOutcome).result()
            console.print(outcome.describe())

    _run(main())


@schedules_app.command("sync")
def schedules_sync() -> None:
    """Create or update the schedules: summaries, engagement retention (idempotent; keeps a pause set in the web UI)."""
    settings = _settings()

    async def main() -> None:
        from notiflow.temporal import connect_client
        from programs.schedules import sync_schedules

        client = await connect_client(settings)
        for schedule_id in await sync_schedules(client, settings):
            console.print(
                f"{schedule_id}: up to date (time zone {settings.timezone}, task queue {settings.task_queue!r})"
            )

    _run(main())


@app.command("search-attributes")
def search_attributes() -> None:
    """Add the search attributes notiflow writes to the namespace (idempotent); `notiflow worker` needs them."""
    from workers.deployment import search_attributes_command

    _run(_print_lines(search_attributes_command(_settings())))


@deployment_app.command("make-current")
def deployment_make_current(
    build_id: str = typer.Option("", help="the version to promote; default NOTIFLOW_BUILD_ID"),
    timeout: float = typer.Option(60.0, help="seconds to wait for a worker of that version to poll"),
) -> None:
    """Make a version current: new runs and auto-upgrade runs go to it; pinned runs stay where they started."""
    from workers.deployment import make_current_command

    _run(_print_lines(make_current_command(_settings(), build_id or None, timeout)))


@deployment_app.command("status")
def deployment_status(
    build_ids: Annotated[list[str] | None, typer.Argument(help="versions to describe; default current")] = None,
) -> None:
    """The current version and, per version, its status and drainage (DRAINING / DRAINED)."""
    from workers.deployment import status_lines

    _run(_print_lines(status_lines(_settings(), build_ids or [])))


@deployment_app.command("wait-drained")
def deployment_wait_drained(
    build_id: str = typer.Argument(..., help="the old version"),
    timeout: float = typer.Option(3600.0, help="seconds"),
) -> None:
    """Wait until no pinned run is left on an old version; then its workers can be stopped."""
    from workers.deployment import wait_drained_command

    _run(_print_lines(wait_drained_command(_settings(), build_id, timeout)))


async def _print_lines(lines) -> None:
    result = await lines
    for line in [result] if isinstance(result, str) else result:
        console.print(line, highlight=False, markup=False)


@app.command()
def bounces(
    host: str | None = typer.Option(None, help="address to listen on (default NOTIFLOW_BOUNCE_HOST, 127.0.0.1)"),
    port: int | None = typer.Option(None, help="SMTP port (default NOTIFLOW_BOUNCE_PORT, 2525)"),
) -> None:
    """Receive bounces (RFC 3464 DSNs) and complaints (RFC 5965) for NOTIFLOW_BOUNCE_ADDRESS over SMTP."""
    settings = _settings()
    if not settings.bounce_address:
        errors.print("[red]error:[/] NOTIFLOW_BOUNCE_ADDRESS is not set (e.g. bounces@tracker.example)")
        raise typer.Exit(2)
    settings = settings.model_copy(
        update={k: v for k, v in (("bounce_host", host), ("bounce_port", port)) if v is not None}
    )
    from notiflow.db import check_database
    from programs.bounces import serve_bounces

    _run(check_database(_database_url(settings)))

    async def main() -> None:
        stop = asyncio.Event()
        _stop_on_signals(stop)
        await serve_bounces(settings, stop)

    _run(main())


@app.command()
def dev() -> None:
    """Run the whole stack on this machine until Ctrl-C: Temporal + web UI, PostgreSQL, mail, SMS and webhook
    catchers, worker, API."""
    settings = _settings()

    async def main() -> None:
        from programs.dev.stack import DevStack

        stop = asyncio.Event()
        _stop_on_signals(stop)
        async with DevStack(settings) as stack:
            _print_urls(stack)
            _print_tokens(stack)
            console.print("[bold]Ctrl-C stops everything.[/]")
            await stop.wait()
            errors.print("stopping…")

    _run(main())


@app.command()
def catchers(
    host: str = typer.Option("127.0.0.1", help="address to listen on (0.0.0.0 inside a staging container)"),
    sms_port: int = typer.Option(9001, help="the SMS gateway catcher: POST /sms, NOTIFLOW_SMS_FORMAT=json"),
    hooks_port: int = typer.Option(9002, help="the webhook/Slack/Teams receiver: any path, e.g. /webhook"),
    folder: str = typer.Option("caught", help="where requests are filed (sms/, webhooks/, with index.txt)"),
) -> None:
    """Staging only: catch SMS (Bearer NOTIFLOW_SMS_TOKEN required) and webhook, Slack and Teams deliveries."""
    settings = _settings()
    if settings.sms_token is None:
        errors.print("NOTIFLOW_SMS_TOKEN is not set: the SMS catcher checks the token the worker sends")
        raise typer.Exit(2)
    from programs.dev.httpcatcher import hook_catcher, sms_catcher

    sms = sms_catcher(Path(folder) / "sms", settings.sms_token.get_secret_value(), port=sms_port, host=host)
    hooks = hook_catcher(Path(folder) / "webhooks", port=hooks_port, host=host)

    async def main() -> None:
        stop = asyncio.Event()
        _stop_on_signals(stop)
        sms.start()
        hooks.start()
        try:
            errors.print(f"SMS catcher {sms.url}/sms, webhook receiver {hooks.url}/…; filing under {folder}/")
            await stop.wait()
        finally:
            sms.stop()
            hooks.stop()

    _run(main())


@app.command()
def demo() -> None:
    """One shot: start the stack, run a scripted issue lifecycle, print the delivery report, stop everything."""
    settings = _settings()

    async def main() -> None:
        from notiflow.client import NotificationClient
        from programs.dev.demo import print_caught, run_demo
        from programs.dev.stack import DevStack

        async with DevStack(settings, ephemeral=True, with_api=False) as stack:
            _print_urls(stack)
            ok = await run_demo(
                NotificationClient(stack.client, stack.settings), stack.settings.require_database_url(), console
            )
            print_caught(stack, console)
        if not ok:
            raise typer.Exit(1)

    _run(main())


def _stop_on_signals(stop: asyncio.Event) -> None:
    import signal

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


def _print_urls(stack) -> None:
    table = Table(title="notiflow stack", show_header=False)
    for name, url in stack.urls.items():
        table.add_row(name, url)
    console.print(table)


def _print_tokens(stack) -> None:
    """Whole tokens on lines of their own, so they copy cleanly into /docs → Authorize."""
    from notiflow.tokens import make_api_token

    console.print("[bold]Bearer tokens for /docs → Authorize[/] (valid 7 days):")
    secret = stack.settings.jwt_secret
    for label, user_id, roles in (
        ("demo admin (u-admin)", "u-admin", ["admin"]),
        ("demo user (u-agent)", "u-agent", []),
        ("issue system (service)", "issue-tracker", ["service"]),
    ):
        console.print(f"  {label}:")
        console.print(make_api_token(secret, user_id, roles, 7 * 24 * 3600), soft_wrap=True, highlight=False)
