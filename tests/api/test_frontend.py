"""/admin is served from the package's built files; /demo and its session only by the dev stack, whatever its secret."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from notiflow.settings import DEV_JWT_SECRET
from notiflow.tokens import read_api_token
from programs.api.app import create_app
from programs.api.frontend import STATIC
from tests.api.helpers import asgi_client


async def test_the_console_is_served_and_the_demo_is_not_outside_dev(api: httpx.AsyncClient):
    built = (STATIC / "admin" / "index.html").is_file()
    response = await api.get("/admin")
    assert response.status_code == (200 if built else 503)
    if built:
        assert response.headers["content-type"].startswith("text/html") and "/static/assets/" in response.text
        assert "http" not in response.text.replace("http-equiv", "")  # nothing from another host
    else:
        assert "make web" in response.json()["detail"]
    assert (await api.get("/demo")).status_code == 404
    assert (await api.get("/demo/session")).status_code == 404


async def test_the_api_never_serves_the_demo_even_with_the_development_secret(api_settings, db):
    app = create_app(api_settings.model_copy(update={"jwt_secret": DEV_JWT_SECRET}))
    async with asgi_client(app) as client:
        assert (await client.get("/demo")).status_code == 404
        assert (await client.get("/demo/session")).status_code == 404


@pytest.mark.parametrize("secret", [DEV_JWT_SECRET, "an-operator's-own-secret-of-more-than-32-bytes"])
async def test_the_dev_stacks_demo_signs_in_as_the_demo_user_whatever_the_secret(api_settings, db, secret):
    app = create_app(api_settings.model_copy(update={"jwt_secret": secret}), demo=True)
    async with asgi_client(app) as client:
        session = (await client.get("/demo/session")).json()
        assert read_api_token(secret, session["token"]).user_id == "u-agent"
        assert (await client.get("/demo")).status_code in (200, 503)


async def test_the_push_service_worker_is_served_at_the_root_uncached(api: httpx.AsyncClient):
    """/notiflow-sw.js from the built package (web/src/notiflow-sw.js unchanged): scope the whole origin."""
    response = await api.get("/notiflow-sw.js")
    if not (STATIC / "assets" / "notiflow-sw.js").is_file():
        assert response.status_code == 503 and "make web" in response.json()["detail"]
        return
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == "text/javascript"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["service-worker-allowed"] == "/"
    source = Path(__file__).parents[2] / "web" / "src" / "notiflow-sw.js"
    assert response.text == source.read_text()
    assert 'addEventListener("notificationclick"' in response.text
