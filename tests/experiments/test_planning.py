"""Planning's part: the arm's version rendered instead of the active one; a holdout skipped, never when critical."""

from __future__ import annotations

from datetime import datetime, timezone

from activities.delivery.planning import _in_experiment
from activities.delivery.rows import Outcome, RowDecision
from notiflow.contracts import DeliveryStatus
from notiflow.experiments import HOLDOUT, RunningArm, RunningExperiment, assign
from notiflow.templates.render import TemplateSource

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)
SOURCE = TemplateSource(
    name="ISSUE_CREATED.EMAIL.en",
    notification_type="ISSUE_CREATED",
    channel="EMAIL",
    locale="en",
    subject_template="B {{ issue.title }}",
    body_template="b",
    version=7,
)
EXPERIMENT = RunningExperiment(
    id="e-1",
    name="Shorter subject",
    notification_type="ISSUE_CREATED",
    channel="EMAIL",
    locale="en",
    holdout_weight=50,
    arms=(RunningArm("B", 50, True, SOURCE),),
)
SENT = RowDecision(outcome=Outcome.SEND, reason="sent at once", at=NOW)


def _people(arm: str) -> str:
    return next(f"u-{i}" for i in range(1000) if assign("e-1", f"u-{i}", [("B", 50)]) == arm)


def test_an_arm_renders_its_version_and_is_recorded():
    templates, variant, status, reason, decision = _in_experiment(EXPERIMENT, _people("B"), False, SENT, NOW)
    assert templates == {SOURCE.name: SOURCE} and variant == "B" and status == DeliveryStatus.PENDING
    assert reason is None and decision.outcome == Outcome.SEND
    assert decision.stored()["experiment"] == {
        "id": "e-1",
        "name": "Shorter subject",
        "arm": "B",
        "template_version": 7,
    }


def test_a_holdout_is_skipped_with_the_reason_but_never_a_critical_notification():
    held = _people(HOLDOUT)
    _, variant, status, reason, decision = _in_experiment(EXPERIMENT, held, False, SENT, NOW)
    assert (variant, status, reason) == (HOLDOUT, DeliveryStatus.CANCELLED, "held out of experiment Shorter subject")
    assert decision.outcome == Outcome.SKIPPED and decision.stored()["experiment"]["arm"] == HOLDOUT
    templates, variant, status, reason, decision = _in_experiment(EXPERIMENT, held, True, SENT, NOW)
    assert (templates, variant, status, reason, decision) == (None, None, DeliveryStatus.PENDING, None, SENT)
