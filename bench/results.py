"""One shape for every measure (``bench/results.json``) and one way to print them."""

from __future__ import annotations

import json
import math
from typing import Any


def measure(
    name: str,
    value: float,
    unit: str,
    *,
    baseline: float | None = None,
    target: float | None = None,
    lower_is_better: bool = False,
    note: str = "",
) -> dict[str, Any]:
    """A measure; with a baseline its target is on the ratio (value / baseline), else on the value itself.

    ``met`` is None when there is no target (the figure is reported, not judged).
    """
    ratio = value / baseline if baseline else None
    judged = ratio if baseline is not None else value
    met = None
    if target is not None and judged is not None and not math.isnan(judged):
        met = judged <= target if lower_is_better else judged >= target
    return {
        "name": name,
        "value": round(value, 4),
        "unit": unit,
        "baseline": round(baseline, 4) if baseline is not None else None,
        "ratio": round(ratio, 3) if ratio is not None else None,
        "target": (f"≤ {target:g}" if lower_is_better else f"≥ {target:g}")
        + (" × baseline" if baseline else f" {unit}")
        if target is not None
        else None,
        "met": met,
        "note": note,
    }


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}" if abs(value) < 1 else f"{value:.1f}"


def rows(measures: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            m["name"],
            f"{_fmt(m['value'])} {m['unit']}",
            _fmt(m["baseline"]),
            f"{m['ratio']:.2f}" if m["ratio"] is not None else "",
            m["target"] or "",
            {True: "yes", False: "**no**", None: ""}[m["met"]],
            m.get("note", ""),
        ]
        for m in measures
    ]


HEADER = ["measure", "notiflow", "baseline", "ratio", "target", "met", "how"]


def print_table(measures: list[dict[str, Any]], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in HEADER:
        table.add_column(column)
    for row in rows(measures):
        table.add_row(*[cell.replace("**", "") for cell in row])
    Console(width=160).print(table)


def markdown(measures: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows(measures)]
    return "\n".join(lines)


async def without_indexes(conn, tables: list[str]):
    """Drop the tables' indexes and constraints, returning the statements that put them back.

    Bulk-loading millions of rows into a table whose (random UUID) indexes are maintained row
    by row takes many minutes; loading bare and building each index once afterwards takes
    seconds. Only for a benchmark's own throw-away database.
    """
    from sqlalchemy import text

    restore: list[str] = []
    for table in tables:
        constraints = (
            await conn.execute(
                text(
                    "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE conrelid = CAST(:t AS regclass) AND contype IN ('p', 'u', 'f') ORDER BY contype = 'f'"
                ),
                {"t": table},
            )
        ).all()
        indexes = (
            await conn.execute(
                text(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = :t AND indexname NOT IN "
                    "(SELECT conname FROM pg_constraint WHERE conrelid = CAST(:t AS regclass))"
                ),
                {"t": table},
            )
        ).all()
        referencing = (
            await conn.execute(
                text(
                    "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE confrelid = CAST(:t AS regclass) AND contype = 'f'"
                ),
                {"t": table},
            )
        ).all()
        for other, name, definition in referencing:
            await conn.execute(text(f'ALTER TABLE {other} DROP CONSTRAINT "{name}"'))
            restore.append(f'ALTER TABLE {other} ADD CONSTRAINT "{name}" {definition}')
        for name, _ in indexes:
            await conn.execute(text(f'DROP INDEX "{name}"'))
        for name, _definition in reversed(constraints):
            await conn.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
        keys = [f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}' for name, definition in constraints]
        restore = (
            [k for k in keys if "FOREIGN KEY" not in k]
            + [definition for _, definition in indexes]
            + [k for k in keys if "FOREIGN KEY" in k]
            + restore
        )
    return restore


def report(measures: list[dict[str, Any]], title: str, json_path: str | None) -> None:
    """Print one benchmark's measures; with ``--json``, append them (one object per line) for ``python -m bench``."""
    print_table(measures, title)
    if json_path:
        with open(json_path, "a") as out:
            out.writelines(json.dumps(m) + "\n" for m in measures)
