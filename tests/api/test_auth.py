"""Bearer JWT: who may call what, and errors a person can act on."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import jwt

from notiflow.tokens import UnsubscribeRequest, make_api_token, make_unsubscribe_token
from tests.api.helpers import ADMIN, JWT_SECRET, SERVICE, add_users, assert_error, bearer, person

PREFERENCES = "/api/v1/notifications/preferences"
TEMPLATES = "/api/v1/notifications/templates"


async def test_a_token_from_make_api_token_identifies_the_user(api, db):
    await add_users(db, person("u-1"))
    response = await api.get(PREFERENCES, headers=bearer("u-1"))
    assert response.status_code == 200, response.text
    assert response.json()["user_id"] == "u-1"


def test_make_api_token_accepts_seconds_or_a_timedelta():
    for ttl in (60, timedelta(minutes=1)):
        claims = jwt.decode(make_api_token(JWT_SECRET, "u-1", ["admin"], ttl), JWT_SECRET, algorithms=["HS256"])
        assert claims["sub"] == "u-1" and claims["roles"] == ["admin"]
        assert claims["exp"] - claims["iat"] == 60


async def test_no_token_is_401_saying_how_to_send_one(api):
    response = await api.get(PREFERENCES)
    assert_error(response, 401, "Authorization: Bearer")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_expired_token_is_401(api):
    response = await api.get(PREFERENCES, headers=bearer("u-1", ttl=-10))
    assert_error(response, 401, "expired")


async def test_token_signed_with_another_secret_is_401(api):
    forged = make_api_token("some-other-secret-of-thirty-two-bytes!", "u-1", ["admin"], 300)
    response = await api.get(TEMPLATES, headers={"Authorization": f"Bearer {forged}"})
    assert_error(response, 401, "NOTIFLOW_JWT_SECRET")


async def test_garbage_token_is_401(api):
    assert_error(await api.get(PREFERENCES, headers={"Authorization": "Bearer not.a.jwt"}), 401, "not valid")


async def test_token_without_expiry_is_401(api):
    token = jwt.encode({"sub": "u-1", "roles": []}, JWT_SECRET, algorithm="HS256")
    assert_error(await api.get(PREFERENCES, headers={"Authorization": f"Bearer {token}"}), 401, "exp")


async def test_roles_claim_must_be_a_list(api):
    token = jwt.encode(
        {"sub": "u-1", "roles": "admin", "exp": datetime.now(timezone.utc) + timedelta(minutes=5)},
        JWT_SECRET,
        algorithm="HS256",
    )
    assert_error(await api.get(TEMPLATES, headers={"Authorization": f"Bearer {token}"}), 401, "roles")


async def test_an_unsubscribe_link_token_cannot_log_in(api, db):
    await add_users(db, person("u-1"))
    token = make_unsubscribe_token(JWT_SECRET, UnsubscribeRequest("u-1", "ISSUE_CREATED", "EMAIL"))
    response = await api.get(PREFERENCES, headers={"Authorization": f"Bearer {token}"})
    assert_error(response, 401, "for 'unsubscribe', not for calling the API")


async def test_tokens_from_other_issuers_without_purpose_are_accepted(api, db):
    await add_users(db, person("u-1"))
    token = jwt.encode(
        {"sub": "u-1", "exp": datetime.now(timezone.utc) + timedelta(minutes=5)}, JWT_SECRET, algorithm="HS256"
    )
    assert (await api.get(PREFERENCES, headers={"Authorization": f"Bearer {token}"})).status_code == 200


async def test_wrong_role_is_403_naming_the_role(api):
    assert_error(await api.get(TEMPLATES, headers=bearer("u-1")), 403, "'admin' role", "none")
    assert_error(await api.get(TEMPLATES, headers=SERVICE), 403, "'admin' role", "service")
    assert_error(await api.put("/api/v1/users/u-9", headers=ADMIN, json={}), 403, "'service' role")


async def test_unknown_route_is_a_json_404(api):
    assert_error(await api.get("/api/v1/nowhere"), 404, "no route GET /api/v1/nowhere", "/docs")
    assert_error(await api.delete("/healthz"), 405, "DELETE is not allowed on /healthz")


async def test_docs_offer_bearer_authorization(api):
    docs = await api.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    schema = (await api.get("/openapi.json")).json()
    scheme = schema["components"]["securitySchemes"]["HTTPBearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert schema["paths"]["/api/v1/notifications/queue"]["get"]["security"] == [{"HTTPBearer": []}]
    event_body = schema["paths"]["/api/v1/events"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert event_body == {"$ref": "#/components/schemas/IssueEvent"}
    assert "event_id" in schema["components"]["schemas"]["IssueEvent"]["properties"]
