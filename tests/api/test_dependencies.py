"""The API's per-request plumbing: no thread hop for a dependency, a bearer token verified once."""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from notiflow.settings import Settings
from notiflow.tokens import InvalidApiToken, _verified_api_token, make_api_token, read_api_token
from programs.api.app import create_app
from tests.api.helpers import JWT_SECRET


def _routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)  # FastAPI's wrapper of an included router
        if included is not None:
            yield from _routes(included.routes)


def _dependencies(dependant) -> Iterator[Any]:
    for dependency in dependant.dependencies:
        yield dependency.call
        yield from _dependencies(dependency)


def _is_async(call: Any) -> bool:
    """A coroutine or async-generator function, or an object whose call is one (HTTPBearer)."""
    targets = [call] if inspect.isfunction(call) or inspect.ismethod(call) else [call, type(call).__call__]
    return any(inspect.iscoroutinefunction(t) or inspect.isasyncgenfunction(t) for t in targets)


def test_every_dependency_of_every_route_is_a_coroutine(api_settings: Settings):
    """FastAPI runs a plain ``def`` dependency on a worker thread for every request that uses it."""
    app: FastAPI = create_app(api_settings)
    routes = list(_routes(app.routes))
    assert len(routes) > 50, "the included routers were not found"
    plain = {
        f"{route.path}: {getattr(call, '__qualname__', call)}"
        for route in routes
        for call in _dependencies(route.dependant)
        if call is not None and not _is_async(call)
    }
    assert not plain, f"dependencies that run on a thread per request (make them async def): {sorted(plain)}"


def test_a_remembered_token_still_expires():
    expires = int(time.time()) + 2  # 1–2 s from now
    token = jwt.encode({"sub": "u-1", "roles": [], "exp": expires}, JWT_SECRET, algorithm="HS256")
    hits = _verified_api_token.cache_info().hits
    assert read_api_token(JWT_SECRET, token).user_id == "u-1"
    assert read_api_token(JWT_SECRET, token).user_id == "u-1"
    assert _verified_api_token.cache_info().hits == hits + 1, "the second read should not verify the token again"
    time.sleep(max(0.0, expires - time.time()) + 0.05)
    with pytest.raises(InvalidApiToken, match="expired"):
        read_api_token(JWT_SECRET, token)


def test_a_refused_token_is_not_remembered_and_a_remembered_one_needs_its_own_secret():
    token = make_api_token(JWT_SECRET, "u-1", [], 60)
    assert read_api_token(JWT_SECRET, token).user_id == "u-1"
    size = _verified_api_token.cache_info().currsize
    for _ in range(2):
        with pytest.raises(InvalidApiToken, match="NOTIFLOW_JWT_SECRET"):
            read_api_token("another-secret-of-thirty-two-bytes!!", token)
    assert _verified_api_token.cache_info().currsize == size
