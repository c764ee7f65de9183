"""Recipient rules, preference decisions and quiet hours as plain unit tests."""

from __future__ import annotations

from datetime import datetime, time, timezone

import pytest

from notiflow.contracts import Frequency, NotificationType
from tests.factories import ADMIN_EN, ADMIN_FR, ASSIGNEE, REPORTER, event, issue_dict, ref
from workflows.delivery.rules import (
    Directory,
    Preference,
    decide,
    derived_types,
    is_critical,
    quiet_until,
    resolve_recipients,
)

DIRECTORY = Directory(
    admins=(ADMIN_EN.id, ADMIN_FR.id), on_call_admins=(ADMIN_FR.id,), earlier_commenters=("u-commenter", ASSIGNEE.id)
)
T = NotificationType


def test_created_goes_to_admins_not_to_the_reporter_who_acted():
    evt = event("ISSUE_CREATED", issue=issue_dict(priority="LOW"))
    assert resolve_recipients(evt, DIRECTORY) == {ADMIN_EN.id: T.ISSUE_CREATED, ADMIN_FR.id: T.ISSUE_CREATED}


def test_an_admin_who_creates_an_issue_is_not_told_about_it():
    evt = event("ISSUE_CREATED", issue=issue_dict(priority="LOW"), actor=ADMIN_EN)
    assert resolve_recipients(evt, DIRECTORY) == {ADMIN_FR.id: T.ISSUE_CREATED}


def test_high_priority_creation_sends_one_message_per_admin():
    evt = event("ISSUE_CREATED", issue=issue_dict(priority="CRITICAL"))
    assert derived_types(evt) == [T.ISSUE_CREATED, T.HIGH_PRIORITY_ISSUE]
    assert resolve_recipients(evt, DIRECTORY) == {
        ADMIN_EN.id: T.HIGH_PRIORITY_ISSUE,
        ADMIN_FR.id: T.HIGH_PRIORITY_ISSUE,
    }


def test_auto_reported_critical_reaches_on_call_admins_as_auto_detected():
    evt = event("ISSUE_CREATED", issue=issue_dict(priority="CRITICAL", is_auto_reported=True))
    assert derived_types(evt) == [T.ISSUE_CREATED, T.HIGH_PRIORITY_ISSUE, T.AUTO_ISSUE_DETECTED]
    assert resolve_recipients(evt, DIRECTORY) == {
        ADMIN_EN.id: T.HIGH_PRIORITY_ISSUE,
        ADMIN_FR.id: T.AUTO_ISSUE_DETECTED,
    }


def test_auto_reported_high_is_not_auto_detected():
    evt = event("ISSUE_CREATED", issue=issue_dict(priority="HIGH", is_auto_reported=True))
    assert T.AUTO_ISSUE_DETECTED not in derived_types(evt)


def test_assigned_goes_to_the_assignee_only():
    evt = event("ISSUE_ASSIGNED", issue=issue_dict(assignee=ref(ASSIGNEE)), actor=ADMIN_EN)
    assert resolve_recipients(evt, DIRECTORY) == {ASSIGNEE.id: T.ISSUE_ASSIGNED}


@pytest.mark.parametrize("kind", ["ISSUE_STATUS_CHANGED", "ISSUE_RESOLVED", "ISSUE_REOPENED"])
def test_status_changes_go_to_reporter_and_assignee(kind):
    evt = event(kind, issue=issue_dict(assignee=ref(ASSIGNEE)), actor=ADMIN_EN)
    assert resolve_recipients(evt, DIRECTORY) == {REPORTER.id: T(kind), ASSIGNEE.id: T(kind)}


def test_comment_goes_to_reporter_assignee_and_earlier_commenters_once_each():
    evt = event(
        "ISSUE_COMMENT_ADDED", issue=issue_dict(assignee=ref(ASSIGNEE)), actor=ADMIN_EN, comment={"body": "Any news?"}
    )
    assert resolve_recipients(evt, DIRECTORY) == {
        REPORTER.id: T.ISSUE_COMMENT_ADDED,
        ASSIGNEE.id: T.ISSUE_COMMENT_ADDED,
        "u-commenter": T.ISSUE_COMMENT_ADDED,
    }


def test_preferences_default_on_and_immediate():
    assert decide(None, critical=False) == decide(Preference(), critical=False)
    assert decide(None, critical=False).send and decide(None, critical=False).frequency == Frequency.IMMEDIATE


def test_disabled_preference_skips_with_a_reason_but_not_for_critical():
    off = Preference(is_enabled=False)
    assert not decide(off, critical=False).send and "preferences" in decide(off, critical=False).reason
    assert decide(off, critical=True).send
    assert decide(Preference(frequency=Frequency.DAILY), critical=True).frequency == Frequency.IMMEDIATE
    assert decide(Preference(frequency=Frequency.HOURLY), critical=False).frequency == Frequency.HOURLY


def test_critical_types():
    assert is_critical(T.AUTO_ISSUE_DETECTED, "LOW")
    assert is_critical(T.SYSTEM_ERROR_SPIKE, None)
    assert is_critical(T.ISSUE_ASSIGNED, "CRITICAL")
    assert not is_critical(T.ISSUE_ASSIGNED, "HIGH")
    assert is_critical(T.ISSUE_OVERDUE, "LOW", on_call=True) and not is_critical(T.ISSUE_OVERDUE, "LOW")


@pytest.mark.parametrize(
    "utc_now, expected",
    [
        (
            datetime(2026, 11, 25, 20, 0, tzinfo=timezone.utc),
            datetime(2026, 11, 26, 4, 0, tzinfo=timezone.utc),
        ),  # 23:00 local
        (
            datetime(2026, 11, 25, 3, 30, tzinfo=timezone.utc),
            datetime(2026, 11, 25, 4, 0, tzinfo=timezone.utc),
        ),  # 06:30 local
        (datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc), None),  # 12:00 local
        (datetime(2026, 11, 25, 4, 0, tzinfo=timezone.utc), None),  # 07:00 local: window over
    ],
)
def test_quiet_hours_across_midnight_in_the_users_zone(utc_now, expected):
    # Antananarivo is UTC+3: quiet 22:00–07:00 local is 19:00–04:00 UTC.
    assert quiet_until(utc_now, "Indian/Antananarivo", time(22), time(7)) == expected


def test_quiet_hours_within_a_day_and_unset():
    now = datetime(2026, 11, 25, 13, 0, tzinfo=timezone.utc)
    assert quiet_until(now, "UTC", time(12), time(14)) == datetime(2026, 11, 25, 14, 0, tzinfo=timezone.utc)
    assert quiet_until(now, "UTC", None, None) is None


def test_nul_characters_are_refused_naming_the_field():
    from notiflow.contracts import InvalidEvent, parse_event
    from tests.factories import event_dict

    raw = event_dict()
    raw["issue"]["title"] = "printer\x00offline"
    raw["context"] = {"trace": ["ok", "bad\x00"]}
    with pytest.raises(InvalidEvent) as caught:
        parse_event(raw)
    assert "issue.title" in str(caught.value) and "context" in str(caught.value)


# ------------------------------------------------------- decide_for_recipient: every per-recipient rule, in order


def _decide(**overrides):
    from notiflow.contracts import Channel
    from workflows.delivery.rules import decide_for_recipient

    facts = dict(
        notification_type="ISSUE_ASSIGNED",
        channel=Channel.EMAIL,
        critical=False,
        forced=False,
        preference=None,
        address="rakoto@example.mg",
        has_template=True,
        now=datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc),
        timezone_name="Indian/Antananarivo",
        quiet_start=None,
        quiet_end=None,
        sent_this_hour=0,
        max_per_hour=30,
    )
    return decide_for_recipient(**(facts | overrides))


def test_decision_sends_at_once_by_default_and_counts_toward_the_cap():
    decision = _decide()
    assert (decision.status, decision.frequency, decision.not_before, decision.counts_toward_cap) == (
        "PENDING",
        "IMMEDIATE",
        None,
        True,
    )


def test_decision_follows_the_preference_unless_critical_or_forced():
    off = Preference(is_enabled=False)
    assert _decide(preference=off).status == "CANCELLED"
    assert _decide(preference=off, critical=True).status == "PENDING"
    assert _decide(preference=off, forced=True).status == "PENDING"
    assert _decide(preference=Preference(True, "DAILY")).frequency == "DAILY"
    assert _decide(preference=Preference(True, "DAILY"), critical=True).frequency == "IMMEDIATE"


def test_decision_needs_an_address_then_a_template():
    assert _decide(address=None) == _decide(address=None, has_template=False)  # no address wins: skipped
    assert _decide(address=None).reason == "no email address"
    missing = _decide(has_template=False)
    assert missing.status == "FAILED" and missing.reason == "no active template for ISSUE_ASSIGNED on EMAIL"


def test_decision_holds_for_quiet_hours_except_critical():
    night = dict(now=datetime(2026, 11, 25, 20, 0, tzinfo=timezone.utc), quiet_start=time(22), quiet_end=time(7))
    assert _decide(**night).not_before == datetime(2026, 11, 26, 4, 0, tzinfo=timezone.utc)  # 07:00 local
    assert _decide(**night, critical=True).not_before is None


def test_decision_past_the_hourly_cap_goes_to_an_hourly_digest():
    capped = _decide(sent_this_hour=30)
    assert (capped.status, capped.frequency, capped.counts_toward_cap) == ("PENDING", "HOURLY", False)
    assert _decide(sent_this_hour=30, critical=True).frequency == "IMMEDIATE"
