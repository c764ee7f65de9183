"""When a long-running workflow should continue as new: Temporal's suggestion, or our own lower bound."""

from __future__ import annotations

from temporalio import workflow

#: Well below Temporal's limits; replaying a short history also keeps a restarted worker fast.
HISTORY_LIMIT = 2_000


def should_continue_as_new() -> bool:
    info = workflow.info()
    return info.is_continue_as_new_suggested() or info.get_current_history_length() > HISTORY_LIMIT
