"""Liveness (/healthz: the process answers) and readiness (/readyz: its dependencies answer)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse
from sqlalchemy import text
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

from programs.api.deps import State
from programs.api.schemas import NotReady, Readiness
from programs.api.state import ApiState

router = APIRouter(tags=["health"])

CHECK_TIMEOUT_SECONDS = 3.0
OK = "ok"


async def _check(probe: Awaitable[None]) -> str:
    try:
        await asyncio.wait_for(probe, CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT_SECONDS:g} s"
    except HTTPException as exc:
        return str(exc.detail)
    except Exception as exc:  # any failure is the answer to "is it up?"
        return f"{type(exc).__name__}: {exc}"
    return OK


async def _database(state: ApiState) -> None:
    async with state.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def _temporal(state: ApiState) -> None:
    client = await state.temporal.client()
    await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=state.settings.temporal_namespace),
        timeout=timedelta(seconds=CHECK_TIMEOUT_SECONDS),
    )


async def _inbox_listener(state: ApiState) -> None:
    if not state.inbox.is_listening:
        raise RuntimeError("LISTEN connection is down and reconnecting; live inbox updates are paused")


@router.get("/healthz", summary="The process is up (no I/O)")
async def healthz() -> dict[str, str]:
    return {"status": OK}


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": NotReady}},
    summary="Database, Temporal and the inbox listener all answer",
)
async def readyz(state: State) -> Readiness | JSONResponse:
    names = ("database", "temporal", "inbox_listener")
    results = await asyncio.gather(_check(_database(state)), _check(_temporal(state)), _check(_inbox_listener(state)))
    checks = dict(zip(names, results, strict=True))
    failing = [f"{name}: {result}" for name, result in checks.items() if result != OK]
    if failing:
        body = NotReady(detail="not ready — " + "; ".join(failing), checks=checks)
        return JSONResponse(body.model_dump(), status_code=503)
    return Readiness(status="ready", checks=checks)
