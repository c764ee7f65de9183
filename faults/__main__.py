"""`python -m faults` (`make faults`): inject real faults into real processes and print what was lost.

    python -m faults [--only worker-kill,database] [--long-outage-minutes 10] [--keep-logs]

One stack for the whole run — a Temporal dev server on a SQLite file, `notiflow
worker` as its own process, an SMTP server in its own process, a database of our
own on the PostgreSQL the tests use — and one scenario after another (see
faults/scenarios.py). Each row: what was expected at the SMTP server, what it
accepted, what never arrived (lost), what arrived more than once (duplicates,
against the allowed bound), rows recorded FAILED for mail that was accepted, and
the seconds from the end of the fault to the last expected mail.

The table is also written to faults/results.json. Exit status 1 when any row
fails its bound. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

from rich.console import Console
from rich.table import Table

from faults import scenarios
from faults.processes import Stack, WorkerConfig
from faults.scenarios import Row

RESULTS = Path(__file__).with_name("results.json")
console = Console(width=None if sys.stdout.isatty() else 160)

ORDER = ["worker-kill", "smtp-down", "smtp-down-long", "database", "temporal-kill", "duplicates", "hostile"]


def plan(args) -> list[tuple[str, dict]]:
    """(scenario, keyword arguments) in running order."""
    kwargs = {
        "worker-kill": {"recipients": args.recipients, "kills": 5},
        "smtp-down": {"outage": 60.0, "events": 20},
        "smtp-down-long": {
            "outage": args.long_outage_minutes * 60,
            "events": 20,
            "timeout": args.long_outage_minutes * 60 + 300,
        },
        "database": {"recipients": args.recipients, "outage": 20.0},
        "temporal-kill": {"recipients": args.recipients, "timers": 20},
        "duplicates": {"events": 100, "copies": 10},
        "hostile": {},
    }
    chosen = args.only.split(",") if args.only else ORDER
    unknown = set(chosen) - set(ORDER)
    if unknown:
        raise SystemExit(f"unknown scenario(s) {', '.join(sorted(unknown))}; choose from {', '.join(ORDER)}")
    return [(name, kwargs[name]) for name in ORDER if name in chosen]


def commit() -> str:
    """The commit the delivery code came from (FAULTS_COMMIT when run from an exported snapshot)."""
    import os

    if os.environ.get("FAULTS_COMMIT"):
        return os.environ["FAULTS_COMMIT"]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "activities", "workflows", "notiflow", "workers"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        return head + (" (+ uncommitted delivery code)" if dirty else "")
    except Exception:
        return "unknown"


def table(rows: list[Row], title: str) -> Table:
    t = Table(title=title, show_lines=True)
    for column, justify in (
        ("fault", "left"),
        ("expected", "right"),
        ("sent", "right"),
        ("lost", "right"),
        ("duplicates", "right"),
        ("wrongly FAILED", "right"),
        ("time to recover", "right"),
        ("", "center"),
        ("notes", "left"),
    ):
        t.add_column(column, justify=justify, overflow="fold")
    for r in rows:
        recover = f"{r.recover_seconds:.1f} s" if r.recover_seconds is not None else "—"
        dup = f"{r.duplicates} (≤ {r.duplicate_bound})" if r.duplicate_bound else str(r.duplicates)
        mark = "[green]ok[/]" if r.ok else "[red]FAIL[/]"
        notes = "\n".join(r.extra_failures + r.notes)
        t.add_row(
            r.fault, str(r.expected), str(r.sent), _red(r.lost), dup, _red(r.wrongly_failed), recover, mark, notes
        )
    return t


def _red(n: int) -> str:
    return f"[red]{n}[/]" if n else "0"


async def run(args) -> list[Row]:
    config = WorkerConfig(
        pool_size=10,
        retry_initial_seconds=1.0,
        retry_max_seconds=10.0,
        delivery_deadline_seconds=args.deadline,
        extra={"NOTIFLOW_DELIVERY_PAGE_SIZE": str(args.page_size)} if args.page_size else {},
    )
    rows: list[Row] = []
    console.log("starting PostgreSQL database, Temporal dev server (SQLite file), SMTP server, notiflow worker")
    async with Stack(config, keep_logs=args.keep_logs) as stack:
        console.log(
            f"stack up: temporal {stack.temporal.address}, smtp :{stack.smtp.port}, "
            f"database {stack.db.name}, logs {stack.workdir}"
        )
        await scenarios.seed_directory(stack, admin_count=args.recipients, staff_count=100)
        for name, kwargs in plan(args):
            console.log(f"[bold]{name}[/] {kwargs or ''}")
            started = time.time()
            try:
                row = await scenarios.SCENARIOS[name](stack, **kwargs)
            except Exception as exc:
                traceback.print_exc()
                row = Row(
                    fault=name,
                    expected=0,
                    sent=0,
                    lost=0,
                    duplicates=0,
                    duplicate_bound=0,
                    wrongly_failed=0,
                    recover_seconds=None,
                    seconds=round(time.time() - started, 1),
                    extra_failures=[f"scenario crashed: {type(exc).__name__}: {exc}"],
                )
            if stack.unplanned_worker_restarts:
                row.extra_failures.append(
                    f"the worker died on its own {stack.unplanned_worker_restarts}× "
                    f"(restarted; see {stack.worker.log_path})"
                )
                stack.unplanned_worker_restarts = 0
            rows.append(row)
            console.log(
                f"{name}: {'ok' if row.ok else 'FAIL'} — expected {row.expected}, sent {row.sent}, "
                f"lost {row.lost}, duplicates {row.duplicates}, wrongly FAILED {row.wrongly_failed} "
                f"({row.seconds:.0f} s)"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m faults", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(ORDER)}")
    parser.add_argument("--recipients", type=int, default=200, help="fan-out size (default 200)")
    parser.add_argument(
        "--long-outage-minutes",
        type=float,
        default=10.0,
        help="the long SMTP outage (default 10; the delivery deadline stays the default 24 h)",
    )
    parser.add_argument(
        "--deadline",
        type=float,
        default=None,
        help="NOTIFLOW_DELIVERY_DEADLINE in seconds for the worker (default: the worker's own, 24 h)",
    )
    parser.add_argument(
        "--page-size",
        type=int,
        default=None,
        help="NOTIFLOW_DELIVERY_PAGE_SIZE for the worker: below --recipients, a fan-out is planned and sent in "
        "slices (DeliverPagesWorkflow), e.g. --page-size 60 (default: the worker's own, 2,000)",
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the worker / temporal / smtp logs and ledger")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM cleans up like Ctrl-C

    started, at = time.time(), commit()
    try:
        rows = asyncio.run(run(args))
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: every process the suite started has been stopped[/]")
        raise SystemExit(130) from None
    title = (
        f"notiflow fault injection — commit {at} — {time.strftime('%Y-%m-%d %H:%M')} — {time.time() - started:.0f} s"
    )
    console.print(table(rows, title))
    RESULTS.write_text(
        scenarios.dumps(
            rows, commit=at, finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"), seconds=round(time.time() - started)
        )
        + "\n"
    )
    console.print(f"written to {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}")
    raise SystemExit(0 if all(r.ok for r in rows) else 1)


if __name__ == "__main__":
    main()
