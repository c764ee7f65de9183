"""Property test over the OpenAPI schema: whatever schemathesis generates, valid or not, never gets a 5xx.

Runs against the real uvicorn server (real PostgreSQL, real Temporal dev
server), so a value PostgreSQL refuses, an overflowing date or a malformed
cursor would show up here as a 500.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.api.helpers import add_users, bearer, person

OPERATIONS = [
    ("/api/v1/notifications/preferences", "PUT"),
    ("/api/v1/notifications/templates", "GET"),
    ("/api/v1/notifications/templates", "POST"),
    ("/api/v1/notifications/templates/preview", "POST"),
    ("/api/v1/notifications/queue", "GET"),
    ("/api/v1/notifications/analytics", "GET"),
    ("/api/v1/notifications/audit", "GET"),
    ("/api/v1/notifications/inbox", "GET"),
    ("/api/v1/notifications/inbox/{notification_id}/archive", "POST"),
    ("/api/v1/events", "POST"),
    ("/api/v1/users/{user_id}", "PUT"),
    ("/api/v1/notifications/unsubscribe/{token}", "POST"),
]
EVERYONE = bearer("u-1", "admin", "service")


@pytest.fixture
async def known_user(db) -> None:
    await add_users(db, person("u-1"))


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
@pytest.mark.usefixtures("known_user", "restore_templates")
def test_no_generated_request_gets_a_server_error(live_api, path, method):
    operation = schemathesis.openapi.from_dict(live_api.app.openapi())[path][method]
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    @given(case=cases)
    @settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def never_a_server_error(case):
        response = case.call(base_url=live_api.url, headers=EVERYONE, timeout=10)
        assert response.status_code < 500, f"{case.as_curl_command()}\n→ {response.status_code} {response.text}"

    never_a_server_error()
