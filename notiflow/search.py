"""notiflow's search attributes: how runs are found in the web UI. No personal data in any of them.

Workflows import these keys inside the sandbox, so this module imports nothing but temporalio.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

ISSUE_ID = SearchAttributeKey.for_keyword("IssueId")
NOTIFICATION_TYPE = SearchAttributeKey.for_keyword("NotificationType")
ISSUE_PRIORITY = SearchAttributeKey.for_keyword("IssuePriority")
#: SENT / PARTIAL / FAILED, set when a notifying run ends: `DeliveryOutcome="FAILED"` finds every run that lost one.
DELIVERY_OUTCOME = SearchAttributeKey.for_keyword("DeliveryOutcome")

#: Registered on the dev server (`--search-attribute`) and in tests. No personal data.
SEARCH_ATTRIBUTES = (ISSUE_ID, NOTIFICATION_TYPE, ISSUE_PRIORITY, DELIVERY_OUTCOME)


def search_attributes(
    *, issue_id: str | None = None, notification_type: str | None = None, priority: str | None = None
) -> TypedSearchAttributes:
    pairs = [
        SearchAttributePair(key, value)
        for key, value in ((ISSUE_ID, issue_id), (NOTIFICATION_TYPE, notification_type), (ISSUE_PRIORITY, priority))
        if value
    ]
    return TypedSearchAttributes(pairs)


def dev_server_search_attribute_args() -> list[str]:
    args: list[str] = []
    for key in SEARCH_ATTRIBUTES:
        args += ["--search-attribute", f"{key.name}=Keyword"]
    return args
