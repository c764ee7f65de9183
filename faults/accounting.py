"""Counting what happened, from the SMTP server's side.

The truth about a delivery is what the mail server accepted, not what notiflow
recorded: that is the only count that catches both a lost mail (recorded SENT or
FAILED but never accepted) and a duplicate (accepted twice). So every figure here
starts from the SMTP ledger — one line per accepted (Message-ID, recipient) — and
uses ``notification_queue`` only to name each Message-ID (notiflow's Message-ID
is the queue row's id) and to find rows recorded FAILED for mail that arrived.

A *key* is (issue id, notification type, recipient address): one notification
one person must get once. A scenario says which keys it expects.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

from faults.processes import Receipt, Stack

Key = tuple[str, str, str]

_LOCAL_PART = re.compile(r"^<?([^@>]+)@")


@dataclass
class Tally:
    expected: int
    #: expected keys the SMTP server accepted at least once
    delivered: int
    lost: int
    #: receipts beyond the first of the same key (same Message-ID or not)
    duplicates: int
    #: keys accepted that the scenario did not expect
    unexpected: int
    #: rows FAILED although the SMTP server accepted their Message-ID
    wrongly_failed: int
    rows_by_status: dict[str, int] = field(default_factory=dict)
    #: when each expected key was first accepted (wall clock)
    first_at: dict[Key, float] = field(default_factory=dict)
    failed_reasons: list[str] = field(default_factory=list)
    duplicate_same_message_id: int = 0
    #: (previous copy accepted at, this copy accepted at) for each receipt beyond the first of its key
    duplicate_times: list[tuple[float, float]] = field(default_factory=list)

    @property
    def last_delivery_at(self) -> float | None:
        return max(self.first_at.values()) if self.first_at else None


async def tally(stack: Stack, issue_ids: set[str], expected: set[Key], *, since: float = 0.0) -> Tally:
    """Join the SMTP ledger with the queue rows of ``issue_ids``; EMAIL only."""
    rows = await stack.db.fetch(
        "SELECT id::text AS id, issue_id, notification_type, lower(address) AS address, status, error_message, "
        "provider_message_id FROM notification_queue WHERE delivery_method = 'EMAIL' AND issue_id = ANY($1::text[])",
        list(issue_ids),
    )
    by_message_id: dict[str, dict] = {}
    for row in rows:
        by_message_id[row["id"]] = dict(row)
        if row["provider_message_id"]:
            by_message_id[_local_part(row["provider_message_id"])] = dict(row)

    receipts_by_key: dict[Key, list[Receipt]] = defaultdict(list)
    received_ids: set[str] = set()
    for receipt in stack.smtp.receipts():
        if receipt.at < since:
            continue
        row = by_message_id.get(_local_part(receipt.message_id))
        if row is None:
            continue  # another scenario's mail
        received_ids.add(row["id"])
        receipts_by_key[(row["issue_id"], row["notification_type"], receipt.recipient)].append(receipt)

    duplicates = sum(len(r) - 1 for r in receipts_by_key.values())
    same_mid = sum(len(r) - len({x.message_id for x in r}) for r in receipts_by_key.values())
    statuses: dict[str, int] = defaultdict(int)
    for row in rows:
        statuses[row["status"]] += 1
    failed = [row for row in rows if row["status"] == "FAILED"]
    wrongly = [row for row in failed if row["id"] in received_ids]
    first_at = {key: min(r.at for r in receipts) for key, receipts in receipts_by_key.items() if key in expected}
    reasons = sorted({(row["error_message"] or "")[:160] for row in failed})
    return Tally(
        expected=len(expected),
        delivered=len(first_at),
        lost=len(expected - set(first_at)),
        duplicates=duplicates,
        unexpected=len(set(receipts_by_key) - expected),
        wrongly_failed=len(wrongly),
        rows_by_status=dict(statuses),
        first_at=first_at,
        failed_reasons=reasons,
        duplicate_same_message_id=same_mid,
        duplicate_times=sorted(pair for r in receipts_by_key.values() for pair in _pairs(sorted(x.at for x in r))),
    )


def _pairs(times: list[float]) -> list[tuple[float, float]]:
    return list(zip(times, times[1:], strict=False))  # consecutive pairs: one fewer by design


def _local_part(message_id: str) -> str:
    found = _LOCAL_PART.match(message_id.strip())
    return found.group(1) if found else message_id.strip()
