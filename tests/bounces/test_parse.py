"""Reading reports (pure): RFC 3464 DSNs, RFC 5965 abuse reports, other bounces, garbage; VERP codes."""

from __future__ import annotations

import uuid

from activities.bounces.compose import abuse_report, delivery_status_notification
from activities.bounces.parse import ARF, COMPLAINT, DSN, HARD, NONE, SOFT, UNKNOWN, classify, parse_report
from activities.bounces.suppression import normalise_address
from notiflow.verp import code_from_address, envelope_sender, queue_id_of, verp_code
from tests.bounces.samples import POSTFIX_DSN, QMAIL_BOUNCE

ORIGINAL = (
    b"From: notiflow@test.local\r\nTo: someone@remote.example\r\nSubject: hi\r\n"
    b"Message-ID: <0b7a4c1e-1111-4222-8333-444455556666@test.local>\r\n\r\nbody\r\n"
)


def test_a_postfix_dsn_gives_the_recipient_status_diagnostic_and_original_message_id():
    raw = POSTFIX_DSN.format(to="bounces@notiflow.test", rcpt="Someone@Remote.example", message_id="<abc@test.local>")
    report = parse_report(raw.encode())
    assert report.kind == DSN and report.parser == "rfc3464" and report.message_id == "<abc@test.local>"
    (rcpt,) = report.recipients
    assert rcpt.address == "Someone@Remote.example" and rcpt.action == "failed" and rcpt.status == "5.1.1"
    assert rcpt.diagnostic.startswith("smtp; 550 5.1.1") and "virtual mailbox table" in rcpt.diagnostic
    assert report.bounce_type == HARD


def test_a_delayed_dsn_is_a_soft_bounce():
    raw = delivery_status_notification(
        original=ORIGINAL,
        envelope_sender="b@x",
        recipient="someone@remote.example",
        status="4.2.2",
        diagnostic="452 4.2.2 Mailbox full",
    )
    report = parse_report(raw)
    assert report.kind == DSN and report.recipients[0].action == "delayed" and report.bounce_type == SOFT


def test_an_arf_report_is_a_complaint_but_not_spam_is_not():
    report = parse_report(abuse_report(original=ORIGINAL, recipient="someone@remote.example", to="b@x"))
    assert report.kind == ARF and report.feedback_type == "abuse" and report.bounce_type == COMPLAINT
    assert report.message_id == "<0b7a4c1e-1111-4222-8333-444455556666@test.local>"
    assert report.recipients[0].address == "someone@remote.example"
    not_spam = parse_report(abuse_report(original=ORIGINAL, recipient="x@y", to="b@x", feedback_type="not-spam"))
    assert not_spam.bounce_type == NONE


def test_a_non_standard_bounce_is_read_by_flufl_bounce_and_its_quoted_message_id_found():
    raw = QMAIL_BOUNCE.format(rcpt="nobody@remote.example", message_id="<q@test.local>").encode()
    report = parse_report(raw)
    assert report.kind == UNKNOWN and report.parser == "flufl.bounce" and report.message_id == "<q@test.local>"
    assert [(r.address, r.bounce_type) for r in report.recipients] == [("nobody@remote.example", HARD)]


def test_garbage_is_unknown_with_a_reason_and_never_raises():
    for raw in (b"", b"\x00\xff\xfe garbage", b"Subject: hello\r\n\r\njust a note", b"Content-Type: multipart/report"):
        report = parse_report(raw)
        assert report.kind == UNKNOWN and report.recipients == [] and report.problem


def test_classification_by_status_class_and_action():
    assert classify("failed", "5.1.1") == HARD
    assert classify("failed", "4.4.7") == SOFT
    assert classify("delayed", "4.2.2") == SOFT
    assert classify("delivered", "2.0.0") == NONE
    assert classify("failed", None) == HARD


def test_verp_codes_name_the_row_and_only_our_addresses_carry_them():
    queue_id = uuid.uuid4()
    sender = envelope_sender(str(queue_id), "bounces@notiflow.test", "notiflow@test.local")
    local, domain = sender.split("@")
    assert local == f"bounces+{verp_code(queue_id)}" and domain == "notiflow.test" and len(verp_code(queue_id)) == 26
    ours, code = code_from_address(sender.upper(), "bounces@notiflow.test")  # a system that folds the case
    assert ours and queue_id_of(code) == queue_id
    assert code_from_address("bounces@notiflow.test", "bounces@notiflow.test") == (True, None)
    assert code_from_address("postmaster@notiflow.test", "bounces@notiflow.test") == (False, None)
    assert code_from_address("bounces+x@other.test", "bounces@notiflow.test") == (False, None)
    assert queue_id_of("not-a-code") is None
    assert envelope_sender(str(queue_id), None, "notiflow@test.local") == "notiflow@test.local"


def test_addresses_are_listed_in_one_form():
    assert normalise_address("EMAIL", " Someone@Remote.Example ") == "someone@remote.example"
    assert normalise_address("SMS", "034 12 345 67") == "+261341234567"
