"""Temporal codec server: the web UI sends encrypted payloads here and shows them decrypted.

Temporal's protocol: POST ``{"payloads": [...]}`` (Payloads as protobuf JSON) to
``/codec/encode`` or ``/codec/decode``, answered in the same shape: encoding seals
under the keyring's first key, decoding opens with whichever key of the ring a payload
names (NOTIFLOW_PAYLOAD_KEYS, or NOTIFLOW_CODEC_KEY). Without a key payloads pass through unchanged. The UI calls from the
browser, so these paths (and only these) allow its origin through CORS.

Decoding hands out the plaintext of histories and encoding seals anything under
the production key, so the API serves them to admin tokens only (the UI sends
the operator's token with ``TEMPORAL_CODEC_PASS_ACCESS_TOKEN=true``; the CLI
with ``--codec-auth``). A web UI that cannot pass a token — the dev server's —
uses ``create_codec_app``: the same routes without a token, on a listener of
their own bound to a private address (``notiflow codec``, ``notiflow dev``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response, params
from google.protobuf import json_format
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.api.common.v1 import Payloads

from notiflow.codec import CodecError, codec_for
from notiflow.settings import Settings
from programs.api.auth import ADMIN, ROLE_ERRORS, require_role
from programs.api.deps import AppSettings
from programs.api.errors import install_error_handlers
from programs.api.guard import BodyLimit

PREFIX = "/codec"

_BYTES = {"type": "string", "format": "byte"}
_PAYLOADS = {
    "type": "object",
    "required": ["payloads"],
    "properties": {
        "payloads": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"metadata": {"type": "object", "additionalProperties": _BYTES}, "data": _BYTES},
            },
        }
    },
}
#: The body is parsed by protobuf's JSON parser, as the protocol requires; the shape is still shown in /docs.
_OPENAPI_EXTRA: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": _PAYLOADS}}}
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {"schema": _PAYLOADS}}},
    422: {"description": "not Payloads JSON, or a payload this key cannot open"},
}


async def _payloads(request: Request) -> Payloads:
    try:
        return json_format.Parse(await request.body(), Payloads())
    except (json_format.ParseError, UnicodeDecodeError) as exc:
        raise HTTPException(
            422, f'the body must be Temporal Payloads as protobuf JSON {{"payloads": [...]}}: {exc}'
        ) from None


def _answer(payloads: Payloads) -> Response:
    return Response(json_format.MessageToJson(payloads, indent=None), media_type="application/json")


async def encode(request: Request, settings: AppSettings) -> Response:
    payloads = await _payloads(request)
    codec = codec_for(settings)
    if codec:
        await codec.encode_wrapper(payloads)
    return _answer(payloads)


async def decode(request: Request, settings: AppSettings) -> Response:
    payloads = await _payloads(request)
    codec = codec_for(settings)
    if codec:
        try:
            await codec.decode_wrapper(payloads)
        except CodecError as exc:
            raise HTTPException(422, str(exc)) from None
    return _answer(payloads)


def codec_router(*dependencies: params.Depends, responses: dict[int | str, dict[str, Any]] | None = None) -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["codec"], dependencies=list(dependencies), responses=responses)
    router.add_api_route(
        "/encode",
        encode,
        methods=["POST"],
        summary="Encrypt payloads (the web UI's codec endpoint)",
        openapi_extra=_OPENAPI_EXTRA,
        responses=_RESPONSES,
    )
    router.add_api_route(
        "/decode",
        decode,
        methods=["POST"],
        summary="Decrypt payloads (the web UI's codec endpoint)",
        openapi_extra=_OPENAPI_EXTRA,
        responses=_RESPONSES,
    )
    return router


#: On the API's own listener: admin tokens only.
router = codec_router(Depends(require_role(ADMIN)), responses=ROLE_ERRORS)


def create_codec_app(settings: Settings) -> FastAPI:
    """The codec alone, without a token: serve it only on a private address (127.0.0.1, an internal network)."""
    app = FastAPI(title="notiflow codec", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(CodecCors, origin=settings.public_ui_url)
    install_error_handlers(app)
    app.include_router(codec_router())
    return app


class CodecCors:
    """CORS for the web UI's origin on /codec/* alone; the rest of the API is not meant for browsers elsewhere.

    The UI sends X-Namespace, and Authorization or cookies when configured to pass them.
    """

    def __init__(self, app: ASGIApp, *, origin: str) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=[origin],
            allow_methods=["POST"],
            allow_credentials=True,
            allow_headers=["Content-Type", "X-Namespace", "Authorization"],
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        for_codec = scope["type"] == "http" and scope["path"].startswith(f"{PREFIX}/")
        await (self.cors if for_codec else self.app)(scope, receive, send)
