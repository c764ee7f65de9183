"""Where ``queue_rows`` runs: a thread for a small plan, a process of the worker's own for a large slice.

Deciding and rendering is pure CPU (~0.7 ms per person, e-mail + in-app). In a thread it shares the worker's GIL
with the event loop that sends: while a 2,000-person slice was planned beside the sending, the loop ran about
half the time (perf: the loop thread 54 % busy, the planning threads 28 %, the event loop 8 ms late on every
wake-up). In a process of its own it runs on another core. Any other plan stays in a thread: the round trip to
the process (pickling the context and the rendered rows) is not worth it for an event's handful of people or a
single fan-out, and a worker that never plans a large audience never starts the process.

The process is started in the background once a large audience's first slice is planned, in a thread (``spawn``:
the worker has the Temporal core's threads, which a ``fork`` would copy half-made; starting it takes ~1.5 s of
imports, which the first mail should not wait for); the later slices are made in the process. It stops with
the worker. If it dies (killed, out of memory), the slice's attempt fails retryably and the next one starts a
fresh process.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime

from temporalio.exceptions import ApplicationError

from activities.delivery.planning import PlanningContext, queue_rows
from activities.delivery.rows import QueueRow
from notiflow.runs import NotificationRequest
from notiflow.settings import Settings
from workflows.delivery.types import DeliveryPlan


class Planner:
    """Runs ``queue_rows`` off the event loop, in a thread or (a large audience's slices of at least
    ``NOTIFLOW_PLANNING_PROCESS_FROM`` people) in the planning process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._process: ProcessPoolExecutor | None = None

    def in_process(self, people: int) -> bool:
        """Whether a plan of this many people is made in the planning process."""
        return 0 < self.settings.planning_process_from <= people

    def start(self) -> None:
        """Start the planning process in the background, unless it runs or is turned off (a large audience's
        later slices will want it)."""
        if self.settings.planning_process_from and self._process is None:
            self._process = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
            self._process.submit(int)  # a first task starts the process now

    async def queue_rows(
        self, request: NotificationRequest, context: PlanningContext, now: datetime
    ) -> tuple[list[QueueRow], DeliveryPlan]:
        """In the planning process if it was started and the plan is large; in a thread otherwise."""
        if self._process is None or not self.in_process(len(context.recipients)):
            return await asyncio.to_thread(queue_rows, request, context, self.settings, now)
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._process, queue_rows, request, context, self.settings, now
            )
        except BrokenProcessPool:
            self.close()  # the next attempt starts a new one
            raise ApplicationError("the planning process died; planning again", type="PlanningProcessDied") from None

    def close(self) -> None:
        if self._process is not None:
            self._process.shutdown(wait=False, cancel_futures=True)
            self._process = None
