"""The fault-injection suite in small, so CI guards it (`make faults` is the full one).

Same helpers as `python -m faults` (faults/): a Temporal dev server on a SQLite
file, `notiflow worker` as its own process, an SMTP server in its own process and
a database of our own, each faulted for real — `kill -9` of the worker, the mail
server gone for 20 s, the database refusing connections mid fan-out. Counts are
taken at the SMTP server (Message-ID × recipient), never from notiflow's own
records. About two minutes on a 2-core machine; no fixed dates (events are
stamped from the clock when built).

A missing service fails with how to provide it (PostgreSQL, the temporal CLI);
nothing here is skipped.
"""

from __future__ import annotations

import pytest

from faults import scenarios
from faults.processes import Stack, WorkerConfig
from faults.scenarios import Row

#: Small pool: the duplicate bound after a kill -9 is the sends in flight, at most this many.
POOL = 4
RECIPIENTS = 60
#: People per slice in the sliced stack: RECIPIENTS is three slices.
SLICE = 25

pytestmark = pytest.mark.timeout(150)


@pytest.fixture(scope="module")
async def stack():
    config = WorkerConfig(
        pool_size=POOL, retry_initial_seconds=0.5, retry_max_seconds=2.0, delivery_deadline_seconds=600
    )
    async with Stack(config) as running:
        await scenarios.seed_directory(running, admin_count=RECIPIENTS, staff_count=10)
        yield running


def assert_durable(row: Row) -> None:
    details = f"{row.fault}: " + "; ".join(row.extra_failures + row.notes)
    assert row.lost == 0, f"{row.lost} of {row.expected} mails never reached the SMTP server — {details}"
    assert row.duplicates <= row.duplicate_bound, (
        f"{row.duplicates} duplicates, at most {row.duplicate_bound} allowed — {details}"
    )
    assert row.wrongly_failed == 0, f"{row.wrongly_failed} rows FAILED although the mail was accepted — {details}"
    assert not row.extra_failures, details


async def test_worker_kill9_twice_during_a_fanout_loses_nothing(stack):
    """Two crashes mid-send: every recipient mailed; duplicates only for sends in flight at each kill
    (≤ pool size per kill), resent with the same Message-ID; no delivery attempt burnt to FAILED."""
    row = await scenarios.worker_kill9(stack, recipients=RECIPIENTS, kills=2, pace=0.3, timeout=90)
    assert_durable(row)
    assert row.duplicates <= POOL * 2


async def test_smtp_down_20s_is_waited_out(stack):
    """Mail published while the server is down arrives once it is back, within the 2 s retry cap."""
    row = await scenarios.smtp_down(stack, outage=20, events=5, timeout=60)
    assert_durable(row)
    assert row.duplicates == 0
    assert row.recover_seconds is not None and row.recover_seconds < 15, row


async def test_database_refused_mid_fanout_fails_nothing_and_resends_nothing(stack):
    """Answers arriving while the database refuses connections are held and recorded when it returns:
    no row FAILED for accepted mail, no second send."""
    row = await scenarios.database_refused(stack, recipients=RECIPIENTS, outage=5, after=15, pace=0.2, timeout=60)
    assert_durable(row)
    assert row.duplicates == 0


@pytest.fixture
async def sliced_stack():
    """A stack whose worker plans and sends audiences of more than 25 people in slices (DeliverPagesWorkflow)."""
    config = WorkerConfig(
        pool_size=POOL,
        retry_initial_seconds=0.5,
        retry_max_seconds=2.0,
        delivery_deadline_seconds=600,
        extra={"NOTIFLOW_DELIVERY_PAGE_SIZE": str(SLICE)},
    )
    async with Stack(config) as running:
        await scenarios.seed_directory(running, admin_count=RECIPIENTS, staff_count=10)
        yield running


async def test_worker_kill9_twice_during_a_sliced_fanout_loses_nothing(sliced_stack):
    """The same crashes while slices are planned and sent (three slices of 25, two planned at once): nothing lost,
    no slice planned twice into a second send."""
    row = await scenarios.worker_kill9(sliced_stack, recipients=RECIPIENTS, kills=2, pace=0.3, timeout=90)
    assert_durable(row)
    assert row.duplicates <= POOL * 2
