"""The browser pages: the admin console at /admin and, in `notiflow dev`, the tracker demo page at /demo; and
the push service worker at /notiflow-sw.js (the root, so its scope covers every page of this origin).

Both are prebuilt by Vite from ``web/`` into ``programs/api/static/`` (``make web``; ``make dev`` and
``make test`` do it when the sources changed) and ship in the Python package: serving them needs no Node.js,
and nothing is built at start-up. Both call the API on their own origin; nothing comes from another host.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from notiflow.tokens import make_api_token

STATIC = Path(__file__).parent / "static"
NOT_BUILT = (
    "the browser pages are not built: run `make web` (npm ci && npm run build in web/), "
    "which `make dev` and `make test` do by themselves"
)
#: Pages are small and rebuilt often; the hashed assets under /static/assets may be cached for good.
NO_CACHE = {"Cache-Control": "no-cache"}
#: Who /demo signs in as: the "demo user" `notiflow dev` prints a token for (programs/dev/seed.py).
DEMO_USER_ID = "u-agent"
#: The Web Push service worker (web/src/notiflow-sw.js), copied unchanged by the build.
SERVICE_WORKER = STATIC / "assets" / "notiflow-sw.js"
SERVICE_WORKER_HEADERS = {**NO_CACHE, "Service-Worker-Allowed": "/"}
DEMO_SESSION_SECONDS = 12 * 3600


def _page(name: str):
    async def page() -> Response:
        index = STATIC / name / "index.html"
        if not index.is_file():
            return JSONResponse({"detail": NOT_BUILT}, status_code=503)
        return FileResponse(index, headers=NO_CACHE)

    return page


async def _service_worker() -> Response:
    """``notiflow-sw.js``: shows push notifications and opens the issue on a click. No-cache, so a new build
    reaches browsers at their next visit (they also check a worker's script themselves at least daily)."""
    if not SERVICE_WORKER.is_file():
        return JSONResponse({"detail": NOT_BUILT}, status_code=503)
    return FileResponse(SERVICE_WORKER, media_type="text/javascript", headers=SERVICE_WORKER_HEADERS)


def install_frontend(app: FastAPI, *, demo: bool) -> None:
    """Serve /admin (always), /notiflow-sw.js (always) and /demo (only when ``demo``: the dev stack, never
    ``notiflow api``)."""
    app.mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static")
    app.add_api_route("/notiflow-sw.js", _service_worker, methods=["GET"], include_in_schema=False)
    pages = {"admin": "the admin console (sign in with an admin token)"}
    if demo:
        pages["demo"] = "a demo of the issue tracker with the notification bell and settings (development only)"
    for name, summary in pages.items():
        for path in (f"/{name}", f"/{name}/"):  # assets are addressed from /static: either path works
            app.add_api_route(path, _page(name), methods=["GET"], include_in_schema=False, summary=summary)
    if demo:
        app.add_api_route("/demo/session", _demo_session, methods=["GET"], include_in_schema=False)


async def _demo_session(request: Request) -> dict[str, str]:
    """The demo user's token, for /demo: signed with the stack's secret, the development one or the operator's
    own. Only the dev stack (``notiflow dev``, a machine of one's own) installs this route."""
    secret = request.app.state.settings.jwt_secret
    return {"user_id": DEMO_USER_ID, "token": make_api_token(secret, DEMO_USER_ID, [], DEMO_SESSION_SECONDS)}
