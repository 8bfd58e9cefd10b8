"""The FastAPI application of ``editkit serve``: one static page and a small JSON/image API.

Routes (``{sid}`` is a session id the page gets from ``POST /api/sessions``; nothing is shared
between sessions):

    GET  /                                  the page (and /static/<one of its files>)
    GET  /api/info                          model name, directions with recommended ranges, limits
    POST /api/sessions                      new session -> {"id"}
    POST /api/sessions/{sid}/end            end it now (the page calls this when it is closed)
    POST /api/sessions/{sid}/photo          body: the image file's bytes -> faces found
    GET  /api/sessions/{sid}/original       the photo as decoded (PNG)
    POST /api/sessions/{sid}/preview        {"face", "method", "edits": [[k, s], ...]} -> PNG of the changed
                                            region; header X-Editkit-Patch: x,y,width,height
    POST /api/sessions/{sid}/download       same body -> the edited photo file (attachment)
    POST /api/sessions/{sid}/gif            {"face", "method", "direction"} -> traversal GIF
    POST /api/sessions/{sid}/refine         {"face"} -> starts the faithful inversion
    GET  /api/sessions/{sid}/refine         its progress

Errors are JSON ``{"error": "one line"}`` with status 400 (bad input), 404 (no such session), 413
(too large) or 500, never a traceback.
"""
from __future__ import annotations

import contextlib
import logging
import threading
import urllib.parse
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.middleware.trustedhost import TrustedHostMiddleware

from ..errors import BadInputError, EditkitError
from .service import EditorService
from .state import SessionGone

log = logging.getLogger("editkit.web")

#: The page's files, read once from the package; the only files any route serves.
STATIC = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
          "style.css": "text/css; charset=utf-8"}
_CSP = ("default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class TooLarge(Exception):
    pass


def _static_files() -> dict[str, bytes]:
    root = resources.files("editkit.web") / "static"
    return {name: (root / name).read_bytes() for name in STATIC}


def create_app(service: EditorService, host: str = "127.0.0.1", sweep_every: float = 60.0) -> FastAPI:
    """The app for ``service``; on a loopback ``host`` only requests addressed to localhost are served."""
    sessions = service.sessions
    stop = threading.Event()

    def sweeper() -> None:
        while not stop.wait(sweep_every):
            sessions.sweep()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        threading.Thread(target=sweeper, daemon=True, name="editkit-session-sweep").start()
        try:
            yield
        finally:
            stop.set()
            sessions.close()

    app = FastAPI(title="editkit", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    if host in LOOPBACK:  # refuses DNS-rebinding pages that reach the local server under another name
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost", "[::1]", "::1"])
    files = _static_files()

    @app.middleware("http")
    async def headers(request: Request, call_next):
        resp = await call_next(request)
        resp.headers["Content-Security-Policy"] = _CSP
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.exception_handler(SessionGone)
    async def _gone(request: Request, exc: SessionGone):
        return JSONResponse({"error": "this session has ended (closed or idle too long): open the photo again"},
                            status_code=404)

    @app.exception_handler(EditkitError)
    async def _expected(request: Request, exc: EditkitError):
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        return JSONResponse({"error": "bad request: the body must be a JSON object"}, status_code=400)

    @app.exception_handler(TooLarge)
    async def _too_large(request: Request, exc: TooLarge):
        return JSONResponse({"error": str(exc)}, status_code=413)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):
        log.exception("internal error on %s", request.url.path)
        return JSONResponse({"error": f"internal error: {type(exc).__name__}: {exc}".splitlines()[0]},
                            status_code=500)

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(files["index.html"])

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in files:  # a fixed set of names: no route maps a request to a server path
            return JSONResponse({"error": "not found"}, status_code=404)
        return Response(files[name], media_type=STATIC[name])

    @app.get("/api/info")
    def info() -> dict:
        return service.info()

    @app.post("/api/sessions")
    def new_session() -> dict:
        return {"id": sessions.create().id}

    @app.post("/api/sessions/{sid}/end")
    def end_session(sid: str) -> dict:
        return {"ended": sessions.end(sid)}

    @app.post("/api/sessions/{sid}/photo")
    async def photo(sid: str, request: Request) -> Any:
        session = sessions.get(sid)
        name = urllib.parse.unquote(request.headers.get("x-filename", "photo"))
        limit = service.max_upload
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise TooLarge(f"{_name(name)}: file too large ({int(declared) / 2**20:.1f} MiB; the limit is "
                           f"{limit / 2**20:.0f} MiB)")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"{_name(name)}: file too large (over the limit of {limit / 2**20:.0f} MiB)")
            chunks.append(chunk)
        data = b"".join(chunks)
        if not data:
            raise BadInputError("empty file (0 bytes)", _name(name))
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(service.upload, session, name, data)

    @app.get("/api/sessions/{sid}/original")
    def original(sid: str) -> Response:
        return Response(service.original_png(sessions.get(sid)), media_type="image/png")

    def _edit_args(body: dict) -> tuple[int, str, list]:
        method = str(body.get("method") or service.fast_method or service.refine_method)
        if method not in ("encoder", "hybrid", "optimize"):
            raise BadInputError(f"unknown method {method!r}")
        return _int(body.get("face", 0), "face"), method, service.edits(body.get("edits", []))

    @app.post("/api/sessions/{sid}/preview")
    def preview(sid: str, body: dict) -> Response:
        session = sessions.get(sid)
        face, method, edits = _edit_args(body)
        png, (x, y, w, h), notes = service.preview_patch(session, face, method, edits)
        return Response(png, media_type="image/png",
                        headers={"X-Editkit-Patch": f"{x},{y},{w},{h}",
                                 "X-Editkit-Warnings": urllib.parse.quote("; ".join(notes)),
                                 "X-Editkit-Command": service.command(session, face, method, edits)})

    @app.post("/api/sessions/{sid}/download")
    def download(sid: str, body: dict) -> Response:
        session = sessions.get(sid)
        face, method, edits = _edit_args(body)
        name, media, data = service.download(session, face, method, edits)
        return Response(data, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @app.post("/api/sessions/{sid}/gif")
    def gif(sid: str, body: dict) -> Response:
        session = sessions.get(sid)
        face, method, _ = _edit_args({**body, "edits": []})
        name, data = service.gif(session, face, method, _int(body.get("direction"), "direction"),
                                 _int(body.get("frames", 24), "frames"))
        return Response(data, media_type="image/gif", headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @app.post("/api/sessions/{sid}/refine")
    def refine(sid: str, body: dict) -> dict:
        session = sessions.get(sid)
        service.start_refine(session, _int(body.get("face", 0), "face"))
        return service.refine_status(session)

    @app.get("/api/sessions/{sid}/refine")
    def refine_status(sid: str) -> dict:
        return service.refine_status(sessions.get(sid))

    return app


def _name(name: str) -> str:
    from .service import safe_name

    return safe_name(name)


def _int(value: Any, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadInputError(f"{what} must be an integer, got {value!r}") from None
