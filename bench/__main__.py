"""Every benchmark in one go (`make bench`): prints the table, writes bench/results.json and bench/RESULTS.md.

    python -m bench [--quick]

Each benchmark runs in its own process (a fresh database and Temporal dev server each)
and appends its measures to one file; ratios are against baselines measured in the
same run. ``--quick`` runs smaller sizes to check the harness, not to judge targets.
Not part of `make test`: CI does not run or fail on it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from bench.results import markdown, print_table

HERE = Path(__file__).parent
FULL = [
    ("pipeline", ["bench.pipeline"]),
    ("memory", ["bench.memory", "--steps", "5000,10000,20000"]),
    ("summary", ["bench.summary"]),
    ("inbox", ["bench.inbox"]),
    ("audience", ["bench.audience"]),
]
QUICK = [
    ("pipeline", ["bench.pipeline", "--events", "50", "--fanout", "200", "--seconds", "4"]),
    ("memory", ["bench.memory", "--steps", "500,1000"]),
    ("summary", ["bench.summary", "--events", "200000", "--issues", "40000", "--runs", "3"]),
    ("inbox", ["bench.inbox", "--rows", "200000", "--queue-rows", "50000", "--requests", "50"]),
    ("audience", ["bench.audience", "--recipients", "5000", "--blast", "5000"]),
]


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        import psutil

        memory = f"{psutil.virtual_memory().total / 2**30:.0f} GiB"
    except ImportError:
        pass
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE.parent
    ).stdout.strip()
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
        "commit": commit or "?",
    }


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: checks the harness, judges nothing")
    parser.add_argument("--only", help="comma-separated subset: pipeline,memory,summary,inbox,audience")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    if args.only:
        plan = [(name, argv) for name, argv in plan if name in args.only.split(",")]
    started_at, started = datetime.now(timezone.utc), time.monotonic()
    loads = [f"start {load()}"]
    measures: list[dict] = []
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="notiflow-bench-") as tmp:
        for name, argv in plan:
            out = Path(tmp) / f"{name}.jsonl"
            print(f"== {name} ({time.monotonic() - started:.0f} s in, load {load()})", file=sys.stderr, flush=True)
            began = time.monotonic()
            code = subprocess.run([sys.executable, "-m", *argv, "--json", str(out)], cwd=HERE.parent).returncode
            if code != 0:
                failures.append(f"{name} exited {code}")
            if out.exists():
                measures += [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
            loads.append(f"after {name} ({time.monotonic() - began:.0f} s) {load()}")
    elapsed = time.monotonic() - started
    info = machine() | {
        "date": started_at.isoformat(timespec="seconds"),
        "duration_s": f"{elapsed:.0f}",
        "load (1/5/15 min)": "; ".join(loads),
        "quick": str(args.quick),
    }
    print_table(measures, f"notiflow benchmarks — {info['date']}, commit {info['commit']}, {elapsed / 60:.1f} min")
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    unmet = [m["name"] for m in measures if m["met"] is False]
    print(f"targets met: {sum(1 for m in measures if m['met'])}; not met: {', '.join(unmet) or 'none'}")
    if args.quick or args.only:
        print("(--quick / --only: bench/results.json and RESULTS.md left as they were)")
        return
    (HERE / "results.json").write_text(json.dumps(measures, indent=2, ensure_ascii=False) + "\n")
    findings = (HERE / "PROFILE.md").read_text() if (HERE / "PROFILE.md").exists() else ""
    (HERE / "RESULTS.md").write_text(
        "# Benchmark results\n\n"
        f"`make bench` on {info['date']} (commit `{info['commit']}`), {elapsed / 60:.1f} minutes.\n\n"
        + "\n".join(f"- **{key}**: {value}" for key, value in info.items() if key not in ("date", "quick"))
        + "\n\n"
        + "The machine is shared: the load averages above say how busy it was around each benchmark. Ratios are "
        "against baselines measured in the same run, so they move less with the load than absolute figures.\n\n"
        + markdown(measures)
        + "\n\n"
        + (f"Benchmarks that failed: {'; '.join(failures)}\n\n" if failures else "")
        + findings
    )
    print(f"wrote {HERE / 'results.json'} and {HERE / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
