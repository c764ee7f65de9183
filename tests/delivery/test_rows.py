"""The one queue-row model: its dedupe key, and the decision recorded from ``decide_for_recipient``'s result."""

from __future__ import annotations

from datetime import datetime, time, timezone

import pytest

from activities.delivery.rows import Outcome, QueueRow, RowDecision, dedupe_key, recorded_decision
from notiflow.contracts import Channel, Frequency, NotificationType
from workflows.delivery.rules import Preference, decide_for_recipient

NOW = datetime(2026, 1, 5, 23, 0, tzinfo=timezone.utc)  # 23:00 UTC


def decided(*, preference=None, critical=False, forced=False, quiet=False, sent_this_hour=0, address="a@b.mg"):
    decision = decide_for_recipient(
        notification_type=NotificationType.ISSUE_ASSIGNED,
        channel=Channel.EMAIL,
        critical=critical,
        forced=forced,
        preference=preference,
        address=address,
        has_template=True,
        now=NOW,
        timezone_name="UTC",
        quiet_start=time(22, 0) if quiet else None,
        quiet_end=time(7, 0) if quiet else None,
        sent_this_hour=sent_this_hour,
        max_per_hour=20,
    )
    return recorded_decision(decision, preference, critical=critical, forced=forced, max_per_hour=20, now=NOW)


@pytest.mark.parametrize(
    "kwargs,outcome,frequency,words",
    [
        ({}, Outcome.SEND, Frequency.IMMEDIATE, "sent at once"),
        ({"critical": True, "quiet": True}, Outcome.SEND, Frequency.IMMEDIATE, "critical"),
        ({"forced": True, "preference": Preference(False)}, Outcome.SEND, Frequency.IMMEDIATE, "test send"),
        ({"preference": Preference(False)}, Outcome.SKIPPED, None, "preferences"),
        ({"address": None}, Outcome.SKIPPED, None, "no email address"),
        ({"quiet": True}, Outcome.HELD, Frequency.IMMEDIATE, "quiet hours until 2026-01-06T07:00:00+00:00"),
        ({"preference": Preference(True, Frequency.DAILY)}, Outcome.DIGESTED, Frequency.DAILY, "daily digest"),
        ({"sent_this_hour": 20}, Outcome.RATE_CAPPED, Frequency.HOURLY, "over 20 per hour"),
        (
            {"sent_this_hour": 20, "preference": Preference(True, Frequency.HOURLY)},
            Outcome.DIGESTED,
            Frequency.HOURLY,
            "hourly digest chosen",
        ),
    ],
)
def test_the_recorded_decision_is_what_the_rules_decided(kwargs, outcome, frequency, words):
    recorded = decided(**kwargs)
    assert recorded.outcome == outcome and recorded.frequency == frequency and words in recorded.reason
    stored = recorded.stored()
    assert {"outcome", "reason", "at", "held_until", "frequency"} <= set(stored)
    assert RowDecision.read(stored) == recorded


def test_a_held_row_keeps_its_quiet_hours_end_and_a_later_feature_its_own_keys():
    recorded = decided(quiet=True)
    assert recorded.held_until == datetime(2026, 1, 6, 7, 0, tzinfo=timezone.utc)
    later = RowDecision.read(recorded.stored() | {"experiment_arm": "B"})
    assert later is not None and later.stored()["experiment_arm"] == "B"
    assert RowDecision.read(None) is None


def test_dedupe_keys_keep_their_format():
    assert dedupe_key("evt-1", "u-1", Channel.EMAIL, "ISSUE_ASSIGNED") == "evt-1|ISSUE_ASSIGNED|u-1|EMAIL"
    assert dedupe_key("evt-1", "subscription:s-1", "SLACK") == "evt-1|subscription:s-1|SLACK"
    row = QueueRow(
        source_id="evt-1",
        notification_type="ISSUE_ASSIGNED",
        delivery_method="SMS",
        recipient_id="u-1",
        address="+261",
        template_name="ISSUE_ASSIGNED.SMS.en",
        decision=decided(quiet=True),
        context_data={},
        max_retries=3,
        scheduled_at=NOW,
    )
    values = row.values()
    assert values["dedupe_key"] == "evt-1|ISSUE_ASSIGNED|u-1|SMS" and values["decision"]["outcome"] == "HELD"
    assert values["context_data"] == {"source_id": "evt-1"}
    delivery = row.delivery(row.id)
    assert delivery.not_before == datetime(2026, 1, 6, 7, 0, tzinfo=timezone.utc)
