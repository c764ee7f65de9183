"""Experiments over HTTP: validation (422 naming the field, 409s), the lifecycle with its audit rows, results on
rows with known counts (against independent formulas), and end to end through the real pipeline."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import insert, select
from temporalio.worker import Replayer

from notiflow.client import NotificationClient
from notiflow.contracts import User
from notiflow.experiments import assign
from notiflow.models import (
    AuditLogRow,
    EngagementEventRow,
    NotificationQueueRow,
    NotificationTemplateRow,
)
from notiflow.runs import DeliveryOutcome
from notiflow.temporal import DATA_CONVERTER
from tests.api.helpers import ADMIN, bearer
from tests.experiments.test_statistics import chance_by_integral, p_value_by_normal_dist, wilson_by_quadratic
from tests.factories import REPORTER, event, issue_dict
from tests.payloads import payloads
from workers.main import WORKFLOW_RUNNER
from workers.registry import ALL_WORKFLOWS

BASE = "/api/v1/notifications/experiments"
TEMPLATES = "/api/v1/notifications/templates"


async def two_versions(api, notification_type: str = "ISSUE_CREATED", channel: str = "EMAIL", locale: str = "en"):
    """The active version (A) and a new one with a marked subject (B), A still active."""
    active = (
        await api.get(
            TEMPLATES,
            params={"notification_type": notification_type, "channel": channel, "locale": locale},
            headers=ADMIN,
        )
    ).json()[0]
    edited = await api.put(
        f"{TEMPLATES}/{active['id']}",
        json={"subject_template": "[variant B] {{ issue.title }}"},
        headers=ADMIN,
    )
    assert edited.status_code == 200, edited.text
    assert (await api.post(f"{TEMPLATES}/{active['id']}/activate", headers=ADMIN)).status_code == 200
    return active["id"], edited.json()["id"]


def experiment_body(a: str, b: str, **overrides) -> dict:
    return {
        "name": "Shorter subject",
        "notification_type": "ISSUE_CREATED",
        "channel": "EMAIL",
        "locale": "en",
        "goal": "CLICKED",
        "window_hours": 24,
        "min_sample_per_arm": 10,
        "holdout_weight": 0,
        "arms": [
            {"name": "A", "template_id": a, "weight": 50, "is_control": True},
            {"name": "B", "template_id": b, "weight": 50},
        ],
    } | overrides


async def test_experiments_need_an_admin(api):
    assert (await api.get(BASE, headers=bearer("u-1"))).status_code == 403


async def test_invalid_experiments_are_a_422_naming_the_field(api, db, restore_templates):
    a, b = await two_versions(api)
    base = experiment_body(a, b)
    bad_weights = base | {"arms": [base["arms"][0] | {"weight": 60}, base["arms"][1]]}
    answer = await api.post(BASE, json=bad_weights, headers=ADMIN)
    assert answer.status_code == 422 and "arms" in answer.text and "sum to 110" in answer.text, answer.text
    one_arm = base | {"arms": base["arms"][:1]}
    assert (answer := await api.post(BASE, json=one_arm, headers=ADMIN)).status_code == 422 and "arms" in answer.text
    six = base | {"arms": [base["arms"][0] | {"name": str(i), "weight": 10, "is_control": i == 0} for i in range(6)]}
    assert (answer := await api.post(BASE, json=six, headers=ADMIN)).status_code == 422 and "arms" in answer.text
    other = (
        await api.get(
            TEMPLATES, params={"notification_type": "ISSUE_ASSIGNED", "channel": "EMAIL", "locale": "en"}, headers=ADMIN
        )
    ).json()[0]["id"]
    wrong = base | {"arms": [base["arms"][0], base["arms"][1] | {"template_id": other}]}
    answer = await api.post(BASE, json=wrong, headers=ADMIN)
    assert answer.status_code == 422 and "arms[1].template_id" in answer.json()["detail"], answer.text
    missing = base | {"arms": [base["arms"][0], base["arms"][1] | {"template_id": str(uuid.uuid4())}]}
    answer = await api.post(BASE, json=missing, headers=ADMIN)
    assert answer.status_code == 422 and "arms[1].template_id" in answer.json()["detail"]
    critical = (
        await api.get(
            TEMPLATES,
            params={"notification_type": "AUTO_ISSUE_DETECTED", "channel": "EMAIL", "locale": "en"},
            headers=ADMIN,
        )
    ).json()[0]["id"]
    held = experiment_body(
        critical,
        critical,
        notification_type="AUTO_ISSUE_DETECTED",
        holdout_weight=10,
        arms=[
            {"name": "A", "template_id": critical, "weight": 45, "is_control": True},
            {"name": "B", "template_id": critical, "weight": 45},
        ],
    )
    answer = await api.post(BASE, json=held, headers=ADMIN)
    assert answer.status_code == 422 and answer.json()["detail"].startswith("holdout_weight"), answer.text
    no_control = base | {"arms": [arm | {"is_control": False} for arm in base["arms"]]}
    assert (await api.post(BASE, json=no_control, headers=ADMIN)).status_code == 422


async def test_lifecycle_is_audited_and_running_experiments_do_not_change(api, db, restore_templates):
    a, b = await two_versions(api)
    created = await api.post(BASE, json=experiment_body(a, b), headers=ADMIN)
    assert created.status_code == 201, created.text
    experiment = created.json()
    assert experiment["state"] == "DRAFT" and [arm["name"] for arm in experiment["arms"]] == ["A", "B"]
    url = f"{BASE}/{experiment['id']}"
    edited = await api.put(url, json=experiment_body(a, b, name="Renamed"), headers=ADMIN)
    assert edited.status_code == 200 and edited.json()["name"] == "Renamed"
    started = await api.post(f"{url}/start", headers=ADMIN)
    assert (
        started.status_code == 200
        and started.json()["state"] == "RUNNING"
        and started.json()["started_by"] == "u-admin"
    )
    reweighted = experiment_body(a, b)
    reweighted["arms"][0]["weight"], reweighted["arms"][1]["weight"] = 70, 30
    refused = await api.put(url, json=reweighted, headers=ADMIN)
    assert refused.status_code == 409 and "stop it and start a new one" in refused.json()["detail"]
    second = (await api.post(BASE, json=experiment_body(a, b, name="Second"), headers=ADMIN)).json()
    clash = await api.post(f"{BASE}/{second['id']}/start", headers=ADMIN)
    assert clash.status_code == 409 and "already running" in clash.json()["detail"]
    assert [e["name"] for e in (await api.get(BASE, params={"state": "RUNNING"}, headers=ADMIN)).json()] == ["Renamed"]
    assert (await api.post(f"{url}/promote", json={"arm": "Z"}, headers=ADMIN)).status_code == 422
    promoted = await api.post(f"{url}/promote", json={"arm": "B"}, headers=ADMIN)
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["state"] == "PROMOTED" and promoted.json()["promoted_arm"] == "B"
    async with db() as session:
        active = await session.scalar(
            select(NotificationTemplateRow.id).where(
                NotificationTemplateRow.name == "ISSUE_CREATED.EMAIL.en", NotificationTemplateRow.is_active
            )
        )
        actions = list(await session.scalars(select(AuditLogRow.action).order_by(AuditLogRow.at)))
    assert str(active) == b
    assert [x for x in actions if x.startswith("experiment.")] == [
        "experiment.create",
        "experiment.update",
        "experiment.start",
        "experiment.create",
        "experiment.promote",
    ]
    assert actions.count("template.activate") == 2  # two_versions' rollback to A, then the promotion of B
    assert (await api.post(f"{url}/stop", headers=ADMIN)).status_code == 409  # it has ended


async def _row(db, experiment_id: str, arm: str, status: str = "SENT", sent_at: datetime | None = None) -> uuid.UUID:
    row_id = uuid.uuid4()
    async with db.begin() as session:
        await session.execute(
            insert(NotificationQueueRow).values(
                id=row_id,
                recipient_id=None,
                template_name="ISSUE_CREATED.EMAIL.en",
                delivery_method="EMAIL",
                notification_type="ISSUE_CREATED",
                content="body",
                status=status,
                dedupe_key=f"test/{row_id}",
                sent_at=sent_at or datetime.now(timezone.utc) - timedelta(hours=1) if status == "SENT" else None,
                variant=arm,
                decision={"outcome": "SEND", "reason": "test", "experiment": {"id": experiment_id, "arm": arm}},
            )
        )
    return row_id


async def _event(db, queue_id: uuid.UUID, kind: str, detail: dict | None = None, at: datetime | None = None) -> None:
    async with db.begin() as session:
        await session.execute(
            insert(EngagementEventRow).values(
                queue_id=queue_id,
                channel="EMAIL",
                kind=kind,
                detail=detail,
                occurred_at=at or datetime.now(timezone.utc),
            )
        )


async def test_results_on_known_counts_match_independent_formulas(api, db, restore_templates):
    a, b = await two_versions(api)
    experiment = (await api.post(BASE, json=experiment_body(a, b, min_sample_per_arm=30), headers=ADMIN)).json()
    eid = experiment["id"]
    # A: 40 delivered, 6 clicked in the window, 1 clicked too late, 1 machine "click"; 5 machine opens, 2 human
    a_rows = [await _row(db, eid, "A") for _ in range(40)]
    for row in a_rows[:6]:
        await _event(db, row, "CLICKED")
    await _event(db, a_rows[6], "CLICKED", at=datetime.now(timezone.utc) + timedelta(hours=30))
    await _event(db, a_rows[7], "CLICKED", {"machine": True})
    for row in a_rows[10:15]:
        await _event(db, row, "OPENED", {"machine": True})
    for row in a_rows[15:17]:
        await _event(db, row, "OPENED", {"machine": True, "human_at": datetime.now(timezone.utc).isoformat()})
    # B: 40 delivered + 1 failed, 15 clicked, 20 seen, 18 read
    b_rows = [await _row(db, eid, "B") for _ in range(40)]
    await _row(db, eid, "B", status="FAILED")
    for row in b_rows[:15]:
        await _event(db, row, "CLICKED")
    for row in b_rows[:20]:
        await _event(db, row, "SEEN")
    for row in b_rows[:18]:
        await _event(db, row, "READ")
    # another experiment's rows and a holdout count nowhere / as held out
    await _row(db, str(uuid.uuid4()), "A")
    for _ in range(3):
        await _row(db, eid, "holdout", status="CANCELLED")

    results = (await api.get(f"{BASE}/{eid}/results", headers=ADMIN)).json()
    arms = {arm["name"]: arm for arm in results["arms"]}
    assert results["enough_data"] is True and results["held_out"] == 3
    assert {k: arms["A"][k] for k in ("sent", "delivered", "seen", "opened", "read", "clicked", "goal")} == {
        "sent": 40,
        "delivered": 40,
        "seen": 0,
        "opened": 2,
        "read": 0,
        "clicked": 7,
        "goal": 6,
    }
    assert {k: arms["B"][k] for k in ("sent", "delivered", "seen", "opened", "read", "clicked", "goal")} == {
        "sent": 41,
        "delivered": 40,
        "seen": 20,
        "opened": 0,
        "read": 18,
        "clicked": 15,
        "goal": 15,
    }
    z = 1.959963984540054
    for name, s in (("A", 6), ("B", 15)):
        low, high = wilson_by_quadratic(s, 40, z)
        assert round(arms[name]["interval"][0], 3) == round(low, 3)
        assert round(arms[name]["interval"][1], 3) == round(high, 3)
        assert arms[name]["goal_rate"] == pytest.approx(s / 40)
    assert arms["A"]["chance_to_beat_control"] is None and arms["A"]["p_value"] is None
    assert round(arms["B"]["chance_to_beat_control"], 3) == round(chance_by_integral(15, 40, 6, 40), 3)
    assert round(arms["B"]["p_value"], 3) == round(p_value_by_normal_dist(15, 40, 6, 40), 3)
    assert arms["B"]["p_value"] < 0.05 and results["verdict"].startswith("arm B beats control")

    # below the minimum: counts, but no verdict and no statistics
    edited = experiment_body(a, b, min_sample_per_arm=41)
    assert (await api.put(f"{BASE}/{eid}", json=edited, headers=ADMIN)).status_code == 200
    results = (await api.get(f"{BASE}/{eid}/results", headers=ADMIN)).json()
    assert results["enough_data"] is False and results["verdict"].startswith("not enough data")
    assert "A has 40 of 41" in results["verdict"]
    assert all(arm["p_value"] is None and arm["interval"] is None for arm in results["arms"])


ADMINS = [
    User(id=f"u-adm-{i:02d}", name=f"Admin {i}", email=f"adm{i:02d}@example.mg", locale="en", roles=["admin"])
    for i in range(40)
]
LINK = re.compile(r"/r/([A-Za-z0-9_-]+)")


async def _publish(nc: NotificationClient, priority: str = "MEDIUM"):
    evt = event("ISSUE_CREATED", issue=issue_dict(priority=priority))
    workflow_id = await nc.publish(evt)
    outcome = await nc.temporal.get_workflow_handle(workflow_id, result_type=DeliveryOutcome).result()
    return evt, outcome


async def test_end_to_end_arms_results_holdout_and_promotion(
    temporal_api, temporal_client, settings, worker, smtp, db, restore_templates
):
    api = temporal_api
    nc = NotificationClient(temporal_client, settings)
    await nc.sync_users([*ADMINS, REPORTER])
    a, b = await two_versions(api)
    body = experiment_body(a, b, holdout_weight=20, min_sample_per_arm=5)
    body["arms"][0]["weight"], body["arms"][1]["weight"] = 40, 40
    experiment = (await api.post(BASE, json=body, headers=ADMIN)).json()
    eid = experiment["id"]
    assert (await api.post(f"{BASE}/{eid}/start", headers=ADMIN)).status_code == 200

    arm_of = {u.id: assign(eid, u.id, [("A", 40), ("B", 40)]) for u in ADMINS}
    by_email = {u.email: u.id for u in ADMINS}
    mailed = [u for u in ADMINS if arm_of[u.id] != "holdout"]
    assert len(mailed) < len(ADMINS), "a 20 % holdout of 40 people holds someone out"

    published = [await _publish(nc) for _ in range(2)]
    events = [evt for evt, _ in published]
    counts = {arm: sum(1 for u in ADMINS if arm_of[u.id] == arm) for arm in ("A", "B", "holdout")}
    assert published[0][1].experiments == {f"Shorter subject: {arm}": n for arm, n in counts.items() if n}
    assert "experiment Shorter subject: A" in published[0][1].describe()  # the run's details in the web UI
    # A replay of the recorded history takes the same arms: they come back with the plan in the history, never
    # drawn again in the workflow (a draw there would be refused by the sandbox, and diverge on replay).
    history = await nc.temporal.get_workflow_handle(events[0].workflow_id).fetch_history()
    replayer = Replayer(workflows=ALL_WORKFLOWS, data_converter=DATA_CONVERTER, workflow_runner=WORKFLOW_RUNNER)
    assert (await replayer.replay_workflow(history, raise_on_replay_failure=False)).replay_failure is None
    planned = next(p for p in payloads(history) if b'"experiments"' in p.data and b'"deliveries"' in p.data)
    recorded = json.loads(planned.data)["experiments"]
    assert recorded == {f"Shorter subject: {arm}": n for arm, n in counts.items() if n}
    mails = await smtp.wait_for(2 * len(mailed))
    await asyncio.sleep(0.3)
    assert len(smtp.sink.messages) == 2 * len(mailed)  # nobody held out got anything
    clicks = {"A": 0, "B": 0}
    for i, mail in enumerate(mails):
        user = by_email[mail.rcpt_tos[0]]
        arm = arm_of[user]
        assert mail.subject.startswith("[variant B]") == (arm == "B"), (arm, mail.subject)
        if i % 3 == 0:  # click every third mail, through the wrapped link
            code = LINK.search(mail.part("plain")).group(1)
            assert (await api.get(f"/r/{code}")).status_code == 302
            clicks[arm] += 1

    results = (await api.get(f"{BASE}/{eid}/results", headers=ADMIN)).json()
    got = {arm["name"]: arm for arm in results["arms"]}
    for arm in ("A", "B"):
        expected = 2 * sum(1 for u in mailed if arm_of[u.id] == arm)
        assert (got[arm]["sent"], got[arm]["delivered"]) == (expected, expected)
        assert got[arm]["clicked"] == got[arm]["goal"] == clicks[arm]
    assert results["held_out"] == 2 * (len(ADMINS) - len(mailed))

    held = next(u for u in ADMINS if arm_of[u.id] == "holdout")
    why = (
        await api.get(
            "/api/v1/notifications/why", params={"issue_id": events[0].issue.id, "user_id": held.id}, headers=ADMIN
        )
    ).json()
    reasons = [d["reason"] for e in why["events"] for d in e["decisions"] if d["channel"] == "EMAIL"]
    assert reasons == ["held out of experiment Shorter subject"], why
    async with db() as session:
        row = await session.scalar(
            select(NotificationQueueRow)
            .where(NotificationQueueRow.recipient_id == mailed[0].id, NotificationQueueRow.delivery_method == "EMAIL")
            .limit(1)
        )
    assert row.variant == arm_of[mailed[0].id] and row.decision["experiment"]["id"] == eid

    promoted = await api.post(f"{BASE}/{eid}/promote", json={"arm": "B"}, headers=ADMIN)
    assert promoted.status_code == 200 and promoted.json()["state"] == "PROMOTED"
    await asyncio.sleep(5.5)  # workers re-read templates every 5 s
    before = len(smtp.sink.messages)
    await _publish(nc)
    mails = (await smtp.wait_for(before + len(ADMINS)))[before:]
    assert len(mails) == len(ADMINS)  # the experiment has ended: nobody is held out
    assert all(m.subject.startswith("[variant B]") for m in mails)
