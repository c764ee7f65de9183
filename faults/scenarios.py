"""One function per fault; each injects it into a running Stack and returns a result row.

Every loop here is bounded: a scenario waits for the mail it expects, for its runs
to close, or for its time limit — whichever comes first — and then counts. A
scenario that goes wrong (today's code loses mail) therefore ends by itself and
reports the loss instead of hanging. Runs still open at the end are terminated so
they cannot disturb the next scenario, and the row says so.

Events are stamped relative to the wall clock at the moment they are built (the
worker, Temporal and PostgreSQL share it): no fixed dates anywhere.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from faults.accounting import Key, Tally, tally
from faults.processes import Stack
from notiflow.contracts import InvalidEvent, User

REPORTER = User(id="u-reporter", name="Lalao Reporter", email="reporter@faults.example.mg", roles=["staff"])


def admins(count: int) -> list[User]:
    return [
        User(
            id=f"u-adm-{i:03d}",
            name=f"Admin {i}",
            email=f"admin{i:03d}@faults.example.mg",
            roles=["admin"],
            locale="fr" if i % 3 == 0 else "en",
        )
        for i in range(count)
    ]


def staff(count: int) -> list[User]:
    return [
        User(id=f"u-staff-{i:03d}", name=f"Staff {i}", email=f"staff{i:03d}@faults.example.mg", roles=["staff"])
        for i in range(count)
    ]


async def seed_directory(stack: Stack, *, admin_count: int, staff_count: int) -> None:
    """The people the scenarios notify: ``admin_count`` admins (fan-outs) and ``staff_count`` assignees."""
    await stack.client.sync_users([REPORTER, *admins(admin_count), *staff(staff_count)])


# ----------------------------------------------------------------- result row


@dataclass
class Row:
    """One line of the printed table (and of results.json)."""

    fault: str
    expected: int
    sent: int
    lost: int
    duplicates: int
    #: duplicates allowed: sends in flight at a kill -9 (≤ SMTP pool size per kill), else 0
    duplicate_bound: int
    wrongly_failed: int
    #: seconds from the end of the fault to the last expected mail accepted (None: never all)
    recover_seconds: float | None
    seconds: float
    notes: list[str] = field(default_factory=list)
    extra_failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.lost == 0
            and self.duplicates <= self.duplicate_bound
            and self.wrongly_failed == 0
            and not self.extra_failures
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok}


def _row(
    fault: str,
    t: Tally,
    *,
    bound: int,
    fault_end: float | None,
    started: float,
    notes: list[str],
    failures: list[str] | None = None,
) -> Row:
    recover = None
    if t.lost == 0 and t.last_delivery_at is not None and fault_end is not None:
        recover = max(0.0, t.last_delivery_at - fault_end)
    notes = list(notes)
    notes.append("rows " + ", ".join(f"{k} {v}" for k, v in sorted(t.rows_by_status.items())))
    if t.duplicates:
        notes.append(f"{t.duplicate_same_message_id} of {t.duplicates} duplicates reused the Message-ID")
    if t.unexpected:
        notes.append(f"{t.unexpected} unexpected mails")
    for reason in t.failed_reasons[:2]:
        notes.append(f"FAILED: {reason}")
    return Row(
        fault=fault,
        expected=t.expected,
        sent=t.delivered,
        lost=t.lost,
        duplicates=t.duplicates,
        duplicate_bound=bound,
        wrongly_failed=t.wrongly_failed,
        recover_seconds=None if recover is None else round(recover, 1),
        seconds=round(time.time() - started, 1),
        notes=notes,
        extra_failures=failures or [],
    )


# ----------------------------------------------------------------- events


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _ref(user: User) -> dict:
    return {"id": user.id, "name": user.name, "email": user.email, "locale": user.locale}


def issue(
    issue_id: str,
    *,
    priority: str = "LOW",
    assignee: User | None = None,
    created_at: datetime | None = None,
    **overrides,
) -> dict:
    return {
        "id": issue_id,
        "title": "Licence card printer offline",
        "description": "The printer rejects every card.",
        "category": "HARDWARE",
        "priority": priority,
        "status": "OPEN",
        "reporter": _ref(REPORTER),
        "assignee": _ref(assignee) if assignee else None,
        "is_auto_reported": False,
        "created_at": (created_at or _now()).isoformat(),
        "resolution_notes": None,
    } | overrides


def event(event_type: str, issue_data: dict, *, actor: User = REPORTER, **extra) -> dict:
    return {
        "event_id": f"evt-{uuid.uuid4().hex[:12]}",
        "type": event_type,
        "occurred_at": _now().isoformat(),
        "actor": _ref(actor),
        "issue": issue_data,
        **extra,
    }


def new_issue_id(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:8]}"


# ----------------------------------------------------------------- waiting


async def wait_until(stack: Stack, done: Callable[[], Awaitable[bool]], timeout: float, poll: float = 0.25) -> bool:
    """Poll ``done`` until true or ``timeout``; keeps an eye on the worker meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.check_worker()
        try:
            if await done():
                return True
        except Exception:  # a service we faulted may not answer yet
            pass
        await asyncio.sleep(poll)
    return False


async def is_closed(stack: Stack, workflow_id: str) -> bool:
    from temporalio.client import WorkflowExecutionStatus

    try:
        description = await stack.client.temporal.get_workflow_handle(workflow_id).describe()
    except Exception:
        return False
    return description.status != WorkflowExecutionStatus.RUNNING


async def all_closed(stack: Stack, workflow_ids: list[str]) -> bool:
    for wid in workflow_ids:
        if not await is_closed(stack, wid):
            return False
    return True


def received_since(stack: Stack, since: float, addresses: set[str]) -> int:
    """Cheap progress gauge: ledger lines since ``since`` to these addresses (duplicates included)."""
    return sum(1 for r in stack.smtp.receipts() if r.at >= since and r.recipient in addresses)


async def settle(
    stack: Stack,
    issue_ids: set[str],
    expected: set[Key],
    workflow_ids: list[str],
    *,
    since: float,
    timeout: float,
    quiet: float = 5.0,
    not_before: float = 0.0,
) -> tuple[Tally, list[str]]:
    """Wait until every expected mail arrived and the runs closed (then a grace period for late
    duplicates), or the runs closed and nothing arrived for ``quiet`` s, or ``timeout``. Returns the
    tally and notes; runs still open are terminated (and named in the notes)."""
    deadline = time.monotonic() + timeout
    last_count, last_change = -1, time.monotonic()
    notes: list[str] = []
    while time.monotonic() < deadline:
        stack.check_worker()
        try:
            t = await tally(stack, issue_ids, expected, since=since)
        except Exception:
            await asyncio.sleep(1.0)
            continue
        count = t.delivered + t.duplicates
        if count != last_count:
            last_count, last_change = count, time.monotonic()
        if time.time() >= not_before and await all_closed(stack, workflow_ids):
            if t.lost == 0:
                await asyncio.sleep(3.0)  # a resend still in flight would show up now
                break
            if time.monotonic() - last_change > quiet:
                break
        await asyncio.sleep(1.0)
    else:
        notes.append(f"timed out after {timeout:.0f} s")
    open_runs = [wid for wid in workflow_ids if not await is_closed(stack, wid)]
    if open_runs:
        notes.append(f"{len(open_runs)} runs still open, terminated")
        for wid in open_runs:
            try:
                await stack.client.temporal.get_workflow_handle(wid).terminate(reason="fault suite: scenario over")
            except Exception:
                pass
    return await tally(stack, issue_ids, expected, since=since), notes


async def publish_fanout(stack: Stack, tag: str, people: list[User]) -> tuple[str, str, set[Key]]:
    """ISSUE_CREATED HIGH: every admin gets HIGH_PRIORITY_ISSUE (the reporter acted, and is not an admin)."""
    issue_id = new_issue_id(tag)
    workflow_id = await stack.client.publish(event("ISSUE_CREATED", issue(issue_id, priority="HIGH")))
    return issue_id, workflow_id, {(issue_id, "HIGH_PRIORITY_ISSUE", u.email.lower()) for u in people}


async def publish_assigned(
    stack: Stack, tag: str, people: list[User], **issue_overrides
) -> tuple[set[str], list[str], set[Key]]:
    """One ISSUE_ASSIGNED (LOW) per person: exactly one mail each, to the assignee."""
    ids, wids, keys = set(), [], set()
    for person in people:
        issue_id = new_issue_id(tag)
        wids.append(
            await stack.client.publish(event("ISSUE_ASSIGNED", issue(issue_id, assignee=person, **issue_overrides)))
        )
        ids.add(issue_id)
        keys.add((issue_id, "ISSUE_ASSIGNED", person.email.lower()))
    return ids, wids, keys


# ----------------------------------------------------------------- 1. worker kill -9


async def worker_kill9(
    stack: Stack, *, recipients: int = 200, kills: int = 5, pace: float = 0.5, timeout: float = 420
) -> Row:
    """``kill -9`` the worker ``kills`` times while a fan-out is being sent, restarting it each time.

    The SMTP server holds each message ``pace`` s, so sends are always in flight
    when the kill lands: those (at most the pool size per kill) may be accepted
    without the worker hearing the 250 — the only duplicates the design allows,
    and they must carry the same Message-ID. Nothing may be lost, and a crash
    must not count as a failed delivery attempt.
    """
    started = time.time()
    people = admins(recipients)
    addresses = {u.email.lower() for u in people}
    stack.smtp.set_delay(pace)
    try:
        issue_id, wid, expected = await publish_fanout(stack, "F1", people)
        kill_times: list[float] = []
        for k in range(kills):
            threshold = recipients * (k + 1) // (kills + 1)

            async def reached(threshold: int = threshold) -> bool:
                return received_since(stack, started, addresses) >= threshold or await is_closed(stack, wid)

            await wait_until(stack, reached, timeout=120)
            if await is_closed(stack, wid):
                break
            await stack.restart_worker()
            kill_times.append(time.time())
        fault_end = kill_times[-1] if kill_times else None
        t, notes = await settle(stack, {issue_id}, expected, [wid], since=started, timeout=timeout)
    finally:
        stack.smtp.set_delay(0)
    pool = stack.config.pool_size
    # A duplicate belongs to the kill that interrupted its previous copy: the first kill after that copy
    # was accepted (a send in flight at the kill is accepted up to ``pace`` s after it).
    per_kill = [0] * len(kill_times)
    for previous, _ in t.duplicate_times:
        later = [i for i, k in enumerate(kill_times) if k >= previous - pace - 0.5]
        if later:
            per_kill[later[0]] += 1
    notes.insert(
        0,
        f"{len(kill_times)} kills at "
        + ", ".join(f"{k - started:.0f}" for k in kill_times)
        + " s; duplicates resent after each: "
        + ", ".join(map(str, per_kill)),
    )
    failures = [] if len(kill_times) == kills else [f"only {len(kill_times)} kills landed mid-send"]
    if any(n > pool for n in per_kill):
        failures.append(f"more duplicates after one kill than the SMTP pool size ({pool}): {max(per_kill)}")
    return _row(
        f"worker kill -9 ×{kills} during a {recipients}-recipient fan-out",
        t,
        bound=pool * max(1, len(kill_times)),
        fault_end=fault_end,
        started=started,
        notes=notes,
        failures=failures,
    )


# ----------------------------------------------------------------- 2. SMTP down


async def smtp_down(stack: Stack, *, outage: float = 60.0, events: int = 20, timeout: float = 300) -> Row:
    """The mail server is down for ``outage`` s while ``events`` single-recipient events are published.

    Delivery must wait it out (up to NOTIFLOW_DELIVERY_DEADLINE) and resume
    within the retry cap of the server's return; nothing may be FAILED, nothing
    sent twice. If every run has already finished while the server is still
    down, there is nothing left to prove: the outage is cut short and the row
    reports the loss.
    """
    started = time.time()
    people = staff(events)
    stack.smtp.kill9()
    down_at = time.time()
    notes = []
    try:
        ids, wids, expected = await publish_assigned(stack, f"F2-{int(outage)}", people)

        async def over() -> bool:
            return time.time() - down_at >= outage

        async def gave_up() -> bool:
            return await over() or await all_closed(stack, wids)

        await wait_until(stack, gave_up, timeout=outage + 5, poll=1.0)
        if not await over():
            notes.append(
                f"every run finished while SMTP was still down (after {time.time() - down_at:.0f} s): outage cut short"
            )
    finally:  # never leave the next scenario without a mail server
        stack.smtp.start()
        await stack.smtp.wait_ready()
    fault_end = time.time()
    t, more = await settle(stack, ids, expected, wids, since=started, timeout=timeout)
    label = f"{outage / 60:.0f} min" if outage >= 120 else f"{outage:.0f} s"
    return _row(
        f"SMTP down {label}, {events} events", t, bound=0, fault_end=fault_end, started=started, notes=notes + more
    )


# ----------------------------------------------------------------- 3. database refused


async def database_refused(
    stack: Stack,
    *,
    recipients: int = 200,
    outage: float = 20.0,
    after: int = 50,
    pace: float = 0.25,
    timeout: float = 300,
) -> Row:
    """Connections to the suite's database are refused for ``outage`` s in the middle of a fan-out.

    ``ALTER DATABASE … ALLOW_CONNECTIONS false`` plus terminating its backends
    is what a failover or a maintenance window looks like to the worker: open
    connections die, new ones are refused. Sends already under way keep getting
    250s that cannot be written; those answers must be held and recorded later —
    never a FAILED row for mail that was accepted, never a resend.
    """
    started = time.time()
    people = admins(recipients)
    addresses = {u.email.lower() for u in people}
    stack.smtp.set_delay(pace)
    try:
        issue_id, wid, expected = await publish_fanout(stack, "F3", people)

        async def mid_send() -> bool:
            return received_since(stack, started, addresses) >= after

        landed = await wait_until(stack, mid_send, timeout=120)
        killed = await stack.db.refuse_connections()
        down_at = time.time()
        at_down = received_since(stack, started, addresses)
        await asyncio.sleep(outage)
        await stack.db.allow_connections()
        fault_end = time.time()
        at_up = received_since(stack, started, addresses)
    finally:
        stack.smtp.set_delay(0)
        await stack.db.allow_connections()
    t, notes = await settle(stack, {issue_id}, expected, [wid], since=started, timeout=timeout)
    notes.insert(
        0,
        f"refused at {down_at - started:.0f} s with {at_down} accepted ({killed} backends terminated); "
        f"{at_up - at_down} accepted while refused",
    )
    return _row(
        f"database refused {outage:.0f} s mid {recipients}-recipient fan-out",
        t,
        bound=0,
        fault_end=fault_end,
        started=started,
        notes=notes,
        failures=[] if landed else ["fan-out never reached the fault point"],
    )


# ----------------------------------------------------------------- 4. Temporal kill -9


async def temporal_kill9(
    stack: Stack,
    *,
    recipients: int = 200,
    timers: int = 20,
    due_in: float = 75.0,
    down: float = 5.0,
    after: int = 60,
    pace: float = 0.25,
    timeout: float = 300,
) -> Row:
    """``kill -9`` the Temporal server (on its SQLite file) during a fan-out, with SLA timers waiting.

    ``timers`` LOW issues are created so that they fall due ``due_in`` s from
    now (created_at back-dated by the policy's due time, read from the database):
    their ISSUE_OVERDUE must arrive once each, after the restart, on time.
    """
    started = time.time()
    people = admins(recipients)
    addresses = {u.email.lower() for u in people}
    (due_minutes,) = [
        r["due_minutes"]
        for r in await stack.db.fetch("SELECT due_minutes FROM escalation_policies WHERE priority = 'LOW'")
    ]
    due_at = _now() + timedelta(seconds=due_in)
    created = due_at - timedelta(minutes=due_minutes)
    assignees = staff(timers)
    sla_ids, sla_wids, sla_expected = await publish_assigned(stack, "F4sla", assignees, created_at=created)
    overdue = {(issue_id, "ISSUE_OVERDUE", address) for issue_id, _, address in sla_expected}
    stack.smtp.set_delay(pace)
    try:
        issue_id, wid, expected = await publish_fanout(stack, "F4", people)

        async def mid_send() -> bool:
            return received_since(stack, started, addresses) >= after

        landed = await wait_until(stack, mid_send, timeout=120)
        stack.temporal.kill9()
        killed_at = time.time()
        at_kill = received_since(stack, started, addresses)
        await asyncio.sleep(down)
    finally:
        stack.smtp.set_delay(0)
        if not stack.temporal.alive:  # same port, same file
            stack.temporal.start()
            await stack.temporal.wait_ready()
            await stack.connect()
    fault_end = time.time()
    all_expected = expected | sla_expected | overdue
    t, notes = await settle(
        stack,
        {issue_id} | sla_ids,
        all_expected,
        [wid, *sla_wids],
        since=started,
        timeout=timeout,
        not_before=due_at.timestamp() + 5,
    )
    fanout_done = [t.first_at[k] for k in expected if k in t.first_at]
    late = [t.first_at[k] - due_at.timestamp() for k in overdue if k in t.first_at]
    notes.insert(
        0,
        f"killed at {killed_at - started:.0f} s with {at_kill} fan-out mails accepted, "
        f"down {down:.0f} s; {len(late)}/{timers} overdue notices"
        + (f", {min(late):.1f}–{max(late):.1f} s after due" if late else ""),
    )
    failures = [] if landed else ["fan-out never reached the fault point"]
    if late and min(late) < -1:
        failures.append("an overdue notice came before its due time")
    row = _row(
        f"Temporal kill -9 + restart: {recipients}-recipient fan-out, {timers} SLA timers",
        t,
        bound=0,
        fault_end=fault_end,
        started=started,
        notes=notes,
        failures=failures,
    )
    if row.recover_seconds is not None:  # the overdue notices wait for their due time: time the fan-out
        row.recover_seconds = round(max(0.0, max(fanout_done) - fault_end), 1)
    return row


# ----------------------------------------------------------------- 5. duplicate publishes


async def duplicate_publishes(stack: Stack, *, events: int = 100, copies: int = 10, timeout: float = 240) -> Row:
    """``events × copies`` concurrent publishes (every event ``copies`` times, shuffled):
    exactly ``events`` runs, one mail per recipient, no duplicates."""
    started = time.time()
    people = staff(events)
    built, keys, ids = [], set(), set()
    for person in people:
        issue_id = new_issue_id("F5")
        built.append(event("ISSUE_ASSIGNED", issue(issue_id, assignee=person)))
        ids.add(issue_id)
        keys.add((issue_id, "ISSUE_ASSIGNED", person.email.lower()))
    publishes = [e for e in built for _ in range(copies)]
    random.shuffle(publishes)
    answers = await asyncio.gather(*(stack.client.publish(e) for e in publishes), return_exceptions=True)
    errors = [a for a in answers if isinstance(a, BaseException)]
    wids = sorted({a for a in answers if isinstance(a, str)})
    fault_end = time.time()
    t, notes = await settle(stack, ids, keys, wids, since=started, timeout=timeout)
    runs = 0
    for wid in wids:
        async for _ in stack.client.temporal.list_workflows(f'WorkflowId = "{wid}"'):
            runs += 1
    notes.insert(
        0,
        f"{len(publishes)} publishes in {fault_end - started:.1f} s → {len(wids)} workflow ids, "
        f"{runs} runs, {len(errors)} errors",
    )
    failures = []
    if runs != events or len(wids) != events:
        failures.append(f"{runs} runs / {len(wids)} ids for {events} events")
    if errors:
        failures.append(f"{len(errors)} publishes raised: {type(errors[0]).__name__}: {str(errors[0])[:120]}")
    return _row(
        f"{len(publishes):,} concurrent publishes of {events} events",
        t,
        bound=0,
        fault_end=fault_end,
        started=started,
        notes=notes,
        failures=failures,
    )


# ----------------------------------------------------------------- 6. hostile events


def _nested(depth: int) -> dict:
    value: dict = {"leaf": True}
    for _ in range(depth - 1):
        value = {"n": value}
    return value


def hostile_events(victim: User) -> list[tuple[str, dict, bool]]:
    """(name, event, must be refused). Events the issue system might send by bug or by an attacker's hand
    must be InvalidEvent; those exactly at the contract's limits must be accepted *and* delivered —
    whatever ``publish`` accepts, the worker must be able to decode."""
    from notiflow import contracts

    def base(**overrides) -> dict:
        return event(
            "ISSUE_ASSIGNED", issue(new_issue_id("F6"), assignee=victim) | overrides.pop("issue", {}), **overrides
        )

    cases = [
        ("context nested 220 deep", base(context=_nested(220)), True),
        ("context nested 300 deep", base(context=_nested(300)), True),
        ("context nested 2,000 deep", base(context=_nested(2000)), True),
        ("5 MB description", base(issue={"description": "x" * (5 * 1024 * 1024)}), True),
        ("ESC in issue.id", base(issue={"id": f"F6-\x1b[31m{uuid.uuid4().hex[:6]}"}), True),
        (
            "CR LF + Bcc header in issue.id",
            base(issue={"id": f"F6-{uuid.uuid4().hex[:6]}\r\nBcc: x@evil.example"}),
            True,
        ),
        (
            "CR LF + Bcc header in issue.title (Subject injection)",
            base(issue={"title": "Printer offline\r\nBcc: x@evil.example"}),
            True,
        ),
        ("BEL and DEL in actor.name", base(actor=REPORTER.model_copy(update={"name": "Lalao\x07\x7f"})), True),
        ("control char in event_id", base(event_id=f"evt-\x01{uuid.uuid4().hex[:8]}"), True),
        ("NUL in title", base(issue={"title": "printer\x00offline"}), True),
    ]
    depth = getattr(contracts, "MAX_CONTEXT_DEPTH", None)
    if depth:
        cases.append((f"context exactly {depth} deep (the limit)", base(context=_nested(depth)), False))
    size = getattr(contracts, "MAX_EVENT_BYTES", None)
    if size:
        cases.append(
            (
                f"description just under the {size // 1024} KB limit",
                base(issue={"description": "y" * (size - 4096)}),
                False,
            )
        )
    return cases


async def hostile(stack: Stack, *, settle_seconds: float = 20.0) -> Row:
    """Hostile events must be refused at ``publish`` with InvalidEvent; events at the limits must be
    delivered; nothing may leave a run the worker cannot process (a workflow task failing forever),
    and the worker must keep delivering ordinary events afterwards (a canary)."""
    started = time.time()
    victim = staff(1)[0]
    outcomes: list[str] = []
    failures: list[str] = []
    refused, accepted = 0, []
    cases = hostile_events(victim)
    for name, data, must_refuse in cases:
        try:
            wid = await stack.client.publish(data)
        except InvalidEvent as exc:
            refused += must_refuse
            outcomes.append(f"{name}: InvalidEvent ({str(exc).removeprefix('invalid IssueEvent — ')[:60]})")
            if not must_refuse:
                failures.append(f"{name}: refused, should be accepted")
        except Exception as exc:
            outcomes.append(f"{name}: {type(exc).__name__}, not InvalidEvent ({str(exc)[:60]})")
        else:
            accepted.append((name, wid, data, must_refuse))
    stuck = []
    if accepted:
        await wait_until(stack, lambda: all_closed(stack, [a[1] for a in accepted]), timeout=settle_seconds, poll=1.0)
    ids, keys = set(), set()
    for name, wid, data, must_refuse in accepted:
        state = await _run_state(stack, wid)
        outcomes.append(f"{name}: accepted, run {state}")
        if must_refuse:
            failures.append(f"{name}: accepted, should be InvalidEvent")
        else:
            ids.add(data["issue"]["id"])
            keys.add((data["issue"]["id"], "ISSUE_ASSIGNED", victim.email.lower()))
        if state.startswith(("stuck", "running")):
            stuck.append(wid)
            try:
                await stack.client.temporal.get_workflow_handle(wid).terminate(reason="fault suite: hostile event")
            except Exception:
                pass
    # The canary: an ordinary event right after must still be delivered promptly.
    canary_ids, canary_wids, canary_keys = await publish_assigned(stack, "F6ok", [victim])
    t, notes = await settle(stack, ids | canary_ids, keys | canary_keys, canary_wids, since=started, timeout=60)
    if stuck:
        failures.append(f"{len(stuck)} runs stuck in the worker")
    if t.lost:
        failures.append(f"{t.lost} of {t.expected} mails not delivered (the at-limit events and the canary)")
    must = sum(1 for c in cases if c[2])
    return Row(
        fault=f"hostile events: {must} refused, {len(cases) - must} at the limits (nesting, size, control chars)",
        expected=must,
        sent=refused,
        lost=len(stuck),
        duplicates=t.duplicates,
        duplicate_bound=0,
        wrongly_failed=t.wrongly_failed,
        recover_seconds=None,
        seconds=round(time.time() - started, 1),
        notes=["sent = refused with InvalidEvent; lost = runs stuck in the worker"]
        + outcomes
        + notes
        + ["at-limit + canary rows " + ", ".join(f"{k} {v}" for k, v in sorted(t.rows_by_status.items()))],
        extra_failures=failures,
    )


async def _run_state(stack: Stack, workflow_id: str) -> str:
    """'completed', 'failed', … or 'stuck: workflow task attempt N' (a poison pill retried forever)."""
    try:
        description = await stack.client.temporal.get_workflow_handle(workflow_id).describe()
    except Exception as exc:
        return f"not found ({type(exc).__name__})"
    status = description.status.name.lower() if description.status else "unknown"
    pending = description.raw_description.pending_workflow_task
    if status == "running" and pending and pending.attempt > 1:
        return f"stuck: workflow task attempt {pending.attempt}"
    return status


#: Name → coroutine, in the order `python -m faults` runs them.
SCENARIOS: dict[str, Callable[..., Awaitable[Row]]] = {
    "worker-kill": worker_kill9,
    "smtp-down": smtp_down,
    "smtp-down-long": smtp_down,
    "database": database_refused,
    "temporal-kill": temporal_kill9,
    "duplicates": duplicate_publishes,
    "hostile": hostile,
}


def dumps(rows: list[Row], **meta) -> str:
    return json.dumps(meta | {"rows": [r.as_dict() for r in rows]}, indent=2, ensure_ascii=False)
