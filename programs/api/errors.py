"""Every error leaves as JSON ``{"detail": "<what went wrong and what to do>"}``.

Validation errors add ``errors``: one entry per bad field, named the way the
client wrote it (``preferences[0].frequency``), not as FastAPI's location tuple.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from http import HTTPStatus
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError
from starlette.exceptions import HTTPException
from temporalio.service import RPCError

from notiflow.client import EventConflict
from notiflow.contracts import InvalidEvent
from notiflow.templates.errors import TemplateError
from programs.api.schemas import FieldError, ValidationFailure

log = logging.getLogger(__name__)

#: For the router's own 404/405, which otherwise say only "Not Found".
_ROUTING_MESSAGES = {
    404: "no route {method} {path}; the API is described at /docs",
    405: "{method} is not allowed on {path}; the API is described at /docs",
}

#: For /docs: the shape of a 422 from this API (FastAPI's default differs).
VALIDATION_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"model": ValidationFailure, "description": "a field of the request is not valid"}
}


def _dotted(path: Sequence[Any]) -> str:
    name = ""
    for part in path:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name


def field_errors(errors: Sequence[dict[str, Any]], *, location: str | None = None) -> list[FieldError]:
    """pydantic errors as FieldErrors; ``location`` when the loc has no body/query/path prefix."""
    result = []
    for error in errors:
        loc = list(error["loc"])
        where = location or (str(loc.pop(0)) if loc else "body")
        message = str(error["msg"]).removeprefix("Value error, ")
        result.append(FieldError(field=_dotted(loc), location=where, message=message))
    return result


def _summary(errors: list[FieldError]) -> str:
    parts = []
    for error in errors:
        if error.location == "body":
            parts.append(f"{error.field or 'request body'}: {error.message}")
        else:
            parts.append(f"{error.location} parameter {error.field}: {error.message}")
    return "invalid request — " + "; ".join(parts)


def _invalid(detail: str, errors: list[FieldError]) -> JSONResponse:
    return JSONResponse(ValidationFailure(detail=detail, errors=errors).model_dump(), status_code=422)


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    detail = exc.detail
    template = _ROUTING_MESSAGES.get(exc.status_code)
    if template and detail == HTTPStatus(exc.status_code).phrase:
        detail = template.format(method=request.method, path=request.url.path)
    return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)


async def _request_invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = field_errors(exc.errors())
    return _invalid(_summary(errors), errors)


async def _event_invalid(_request: Request, exc: InvalidEvent) -> JSONResponse:
    return _invalid(str(exc), field_errors(exc.errors, location="body"))


async def _event_conflict(_request: Request, exc: EventConflict) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=409)


async def _template_invalid(_request: Request, exc: TemplateError) -> JSONResponse:
    return JSONResponse({"detail": f"template error: {exc}"}, status_code=422)


async def _temporal_failed(request: Request, exc: RPCError) -> JSONResponse:
    settings = request.app.state.settings
    return JSONResponse(
        {
            "detail": f"Temporal at {settings.temporal_address} refused the request: {exc.message} "
            f"({exc.status.name}); /readyz shows whether it is up"
        },
        status_code=503,
    )


async def _database_error(request: Request, exc: DBAPIError | ConnectionError) -> JSONResponse:
    """Refused or lost connection: an outage (503). A value PostgreSQL cannot take (a NUL character, a
    number out of range): the request's fault (422). Anything else: a bug (500)."""
    if isinstance(exc, ConnectionError) or exc.connection_invalidated:
        log.warning("database unreachable on %s %s: %s", request.method, request.url.path, exc)
        return JSONResponse({"detail": "the database is not reachable; /readyz shows what is down"}, status_code=503)
    cause = exc.orig.__cause__ if exc.orig is not None else None
    if isinstance(exc, DataError) or isinstance(cause, asyncpg.DataError):
        # The driver's words ("invalid input for query argument $2: datetime.datetime(…)") mean nothing to the
        # caller and show internals: they go to the log; fields that can be checked up front are (schemas.py).
        log.warning(
            "value refused by PostgreSQL on %s %s: %s",
            request.method,
            request.url.path,
            str(cause or exc.orig).splitlines()[0],
        )
        return JSONResponse(
            {
                "detail": "a value in this request cannot be stored: a date or number out of range, or "
                "a character the database refuses (such as NUL)"
            },
            status_code=422,
        )
    return await _unexpected(request, exc)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(
        {"detail": "internal error; it has been logged — retry, and report it if it persists"}, status_code=500
    )


#: Which error becomes which answer, most specific first (Starlette picks by the exception's class).
_HANDLERS: list[tuple[type[Exception], Callable[[Request, Any], Awaitable[JSONResponse]]]] = [
    (HTTPException, _http_error),
    (RequestValidationError, _request_invalid),
    (InvalidEvent, _event_invalid),
    (EventConflict, _event_conflict),
    (TemplateError, _template_invalid),
    (RPCError, _temporal_failed),
    (DBAPIError, _database_error),
    (ConnectionError, _database_error),
    (Exception, _unexpected),
]


def install_error_handlers(app: FastAPI) -> None:
    for error, handler in _HANDLERS:
        app.add_exception_handler(error, handler)
