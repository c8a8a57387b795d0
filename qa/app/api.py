"""HTTP server: one FastAPI app with the REST API, the chat UI (``/``) and the embeddable view (``/embed``).

* ``POST /api/ask`` — the same JSON object as ``qa ask --json``.
* ``POST /api/ask/stream`` — server-sent events: ``token`` (many), ``citations`` (once),
  ``done`` (the full result, with its trace); ``error`` if the chain fails mid-way.
* ``GET /api/health``, ``GET /api/documents``, ``GET /api/documents/{id}/text``.
* ``POST /api/feedback`` — rate an answer up/down with a comment (stored next to the index,
  see :mod:`qa.app.feedback`).
* OpenAPI docs at ``/docs``.

Security: an optional bearer token (``QA_API_TOKEN``) protects the API and the UI (browsers
get it once as ``?token=`` and then hold it in an HttpOnly cookie); ``QA_ALLOWED_ORIGINS``
drives CORS and the ``frame-ancestors`` Content-Security-Policy.

Concurrency: answer-chain calls run on a bounded thread pool (``QA_API_WORKERS``) shared by
the API and the UI, so a burst of requests queues instead of oversubscribing the CPU.

Gradio is only imported by :mod:`qa.app.ui` (mounted by :func:`create_app` when ``ui=True``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import html
import json
import logging
import re
from http.cookies import SimpleCookie
from typing import Any, AsyncIterator, Callable, Literal
from urllib.parse import parse_qsl, urlencode

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.middleware.cors import CORSMiddleware

from qa.app.feedback import RecentAnswers, feedback_router
from qa.app.service import Service, error_status
from qa.config import VERSION, Settings

log = logging.getLogger(__name__)

COOKIE = "qa_token"
MAX_BODY_BYTES = 1_000_000
MAX_TURN_CHARS = 20_000


# ----------------------------------------------------------------------------- request / response models


class Turn(BaseModel):
    role: Literal["user", "assistant"]
    content: str = Field(max_length=MAX_TURN_CHARS)


class FilterSpec(BaseModel):
    since: str | None = Field(None, description="Only articles published on or after (YYYY-MM-DD)")
    until: str | None = Field(None, description="Only articles published on or before (YYYY-MM-DD)")
    outlets: list[str] = Field(default_factory=list, max_length=50, description="Only these outlets")
    languages: list[Literal["vi", "en"]] = Field(default_factory=list, description="Only articles in these languages")


class AskRequest(BaseModel):
    question: str = Field(description="The question, in Vietnamese or English")
    history: list[Turn] = Field(default_factory=list, description="Earlier turns, oldest first")
    language: Literal["vi", "en"] | None = Field(None, description="Force the answer language (default: detected)")
    trace: bool = Field(False, description="Include the per-passage retrieval trace")
    filters: FilterSpec | None = Field(None, description="Restrict the articles searched (dates, outlets, languages)")
    as_of: str | None = Field(None, description="The date relative time words are resolved against (YYYY-MM-DD; default today)")

    model_config = {"json_schema_extra": {"examples": [
        {"question": "What did Le Cong Thanh recommend on climate diplomacy?", "history": []},
    ]}}


class Citation(BaseModel):
    model_config = {"extra": "allow"}

    n: int
    doc_id: str
    title: str
    source: str
    chunk_id: str
    text: str
    quote: str
    start: int | None = None
    end: int | None = None
    score: float
    support: dict[str, Any] | None = None  # {"score", "verdict": verified | partial | unverified, "claims", "method"}
    published: str | None = None  # the article's publication date (YYYY-MM-DD or YYYY-MM), when known
    outlet: str | None = None
    also_reported_by: list[dict[str, Any]] = []  # the same story from other outlets / in the other language


class AskResponse(BaseModel):
    model_config = {"extra": "allow"}  # whatever `qa ask --json` gains, the API returns too

    question: str
    answer: str
    refused: bool
    language: str
    citations: list[Citation]
    related: list[dict[str, Any]] = []  # a refusal's closest articles: doc_id, title, published, outlet, source
    timings_ms: dict[str, float]
    trace: dict[str, Any]


class ErrorResponse(BaseModel):
    detail: str


def _filters(req: AskRequest):
    """The request's filters and as-of date (422 on a bad date)."""
    import datetime as dt

    from qa.filters import FilterError, Filters

    try:
        f = Filters.from_json(req.filters.model_dump()) if req.filters else Filters()
        as_of = dt.date.fromisoformat(req.as_of) if req.as_of else None
    except (FilterError, ValueError) as exc:
        raise HTTPException(422, f"bad filter: {exc}") from None
    return f, as_of


def _check(req: AskRequest, settings: Settings) -> tuple[str, list[dict]]:
    q = " ".join(req.question.split())
    if not q:
        raise HTTPException(422, "the question is empty")
    if len(req.question) > settings.max_question_chars:
        raise HTTPException(
            422, f"the question is too long ({len(req.question)} characters; the limit is {settings.max_question_chars})"
        )
    if len(req.history) > settings.max_history_turns:
        raise HTTPException(
            422, f"the history is too long ({len(req.history)} turns; the limit is {settings.max_history_turns})"
        )
    return q, [t.model_dump() for t in req.history]


def public_result(result: dict, trace: bool = False) -> dict:
    """What ``qa ask --json`` prints: the per-passage trace only when asked for."""
    data = dict(result)
    if not trace:
        data["trace"] = {k: v for k, v in (data.get("trace") or {}).items() if k != "passages"}
    return data


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode("utf-8")


# ----------------------------------------------------------------------------- security


def parse_origins(value: str | None) -> list[str]:
    return [o.strip().rstrip("/") for o in re.split(r"[,\s]+", value or "") if o.strip()]


def frame_ancestors(origins: list[str]) -> str:
    if "*" in origins:
        return "frame-ancestors *"
    return "frame-ancestors " + " ".join(["'self'", *origins])


def _cookie_value(token: str) -> str:
    return hmac.new(token.encode(), b"qa-ui-session", hashlib.sha256).hexdigest()


_TOKEN_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>qa — sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;display:flex;min-height:90vh;align-items:center;justify-content:center;background:#f8fafc}}
form{{background:#fff;padding:2rem;border-radius:12px;box-shadow:0 1px 4px #0002;max-width:22rem}}
input{{width:100%;padding:.5rem;margin:.5rem 0 1rem;box-sizing:border-box}}button{{padding:.5rem 1rem}}</style></head>
<body><form method="get" action="{action}"><h2>Access token required</h2>
<p>{message}</p><label>Token <input type="password" name="token" autofocus></label>
<button type="submit">Open</button></form></body></html>"""


class GuardMiddleware:
    """Bearer-token check, request size limit and security headers, for every path (pure ASGI).

    A browser gets in once with ``?token=…`` (then an HttpOnly cookie holds it); API clients
    send ``Authorization: Bearer …``. OpenAPI docs stay readable without the token.
    """

    OPEN_PATHS = ("/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc")

    def __init__(self, app, token: str | None, origins: list[str]) -> None:
        self.app = app
        self.token = token or None
        self.cookie = _cookie_value(token) if token else None
        self.csp = frame_ancestors(origins).encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in (b"content-security-policy", b"x-frame-options")]
                headers += [
                    (b"content-security-policy", self.csp),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"strict-origin-when-cross-origin"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        hdrs = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        length = hdrs.get("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
            resp = JSONResponse({"detail": f"request body too large (limit {MAX_BODY_BYTES} bytes)"}, status_code=413)
            await resp(scope, receive, send_with_headers)
            return

        if self.token and scope["method"] != "OPTIONS" and scope["path"] not in self.OPEN_PATHS:
            verdict = self._authorise(scope, hdrs)
            if verdict is not True:
                await verdict(scope, receive, send_with_headers)
                return
        await self.app(scope, receive, send_with_headers)

    def _authorise(self, scope, hdrs: dict[str, str]):
        assert self.token is not None and self.cookie is not None
        auth = hdrs.get("authorization", "")
        if auth.lower().startswith("bearer ") and hmac.compare_digest(auth[7:].strip().encode(), self.token.encode()):
            return True
        jar = SimpleCookie()
        try:
            jar.load(hdrs.get("cookie", ""))
        except Exception:
            pass
        if COOKIE in jar and hmac.compare_digest(jar[COOKIE].value.encode(), self.cookie.encode()):
            return True
        path: str = scope["path"]
        is_api = path.startswith("/api/") or "/gradio_api/" in path or path.endswith("/config")
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = next((v for k, v in query if k == "token"), None)
        if given is not None and not is_api and scope["method"] == "GET":
            if hmac.compare_digest(given.encode(), self.token.encode()):
                # set the cookie, then drop the token from the address bar
                rest = urlencode([(k, v) for k, v in query if k != "token"])
                secure = hdrs.get("x-forwarded-proto", scope.get("scheme", "http")) == "https"
                cookie = f"{COOKIE}={self.cookie}; Path=/; HttpOnly; " + ("SameSite=None; Secure" if secure else "SameSite=Lax")
                from starlette.responses import RedirectResponse

                resp = RedirectResponse((scope.get("root_path", "") + path) + (f"?{rest}" if rest else ""), status_code=303)
                resp.headers.append("set-cookie", cookie)
                return resp
        if is_api or "text/html" not in hdrs.get("accept", ""):
            return JSONResponse(
                {"detail": "missing or invalid token: send 'Authorization: Bearer <QA_API_TOKEN>'"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        message = "That token is not valid." if given is not None else "This assistant is protected by an access token."
        from starlette.responses import HTMLResponse

        return HTMLResponse(_TOKEN_PAGE.format(action=html.escape(path), message=html.escape(message)), status_code=401)


# ----------------------------------------------------------------------------- the app


def create_app(settings: Settings, *, ui: bool = True, service: Service | None = None) -> FastAPI:
    """The whole server. ``ui=False`` leaves out the Gradio UI (API only)."""
    service = service or Service(settings)
    origins = parse_origins(settings.allowed_origins)
    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        service.close()

    app = FastAPI(
        lifespan=lifespan,
        title="qa — news articles QA (vi/en)",
        version=VERSION,
        description=(
            "Questions over the indexed news articles, answered with numbered citations `[n]`. "
            "When `QA_API_TOKEN` is set, send `Authorization: Bearer <token>`."
        ),
    )
    app.state.service = service
    recent = app.state.recent_answers = RecentAnswers()  # traces for POST /api/feedback
    app.state.startup_problem = service.try_open()
    if app.state.startup_problem:
        log.warning("no usable index yet: %s", app.state.startup_problem)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        parts = []
        for e in exc.errors():
            loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
            parts.append(f"{loc}: {e.get('msg')}" if loc else str(e.get("msg")))
        return JSONResponse({"detail": "invalid request — " + "; ".join(parts)}, status_code=422)

    def _fail(exc: BaseException):
        status, message = error_status(exc)
        if status == 500:
            log.exception("request failed", exc_info=exc)
        raise HTTPException(status, message) from exc

    errors = {422: {"model": ErrorResponse}, 401: {"model": ErrorResponse}, 503: {"model": ErrorResponse}}

    @app.post("/api/ask", response_model=AskResponse, responses=errors, tags=["ask"])
    async def ask(req: AskRequest) -> dict:
        """Answer a question with cited passages (the same object as `qa ask --json`)."""
        question, history = _check(req, settings)
        filters, as_of = _filters(req)
        try:
            engine = service.engine()
            result = await asyncio.wrap_future(service.submit(
                lambda: engine.ask(question, history, req.language, filters=filters, as_of=as_of)))
        except Exception as exc:
            _fail(exc)
        recent.remember(result)
        return public_result(result, req.trace)

    @app.post(
        "/api/ask/stream",
        responses={**errors, 200: {"content": {"text/event-stream": {}}, "description": (
            "Server-sent events: `token` {text} (many), then `citations` {citations}, then `done` "
            "(the full result, as /api/ask, with its trace); `error` {detail, status} if it fails. "
            "The `done` answer is authoritative: render it in place of the streamed tokens."
        )}},
        tags=["ask"],
    )
    async def ask_stream(req: AskRequest, request: Request):
        """Answer a question, streaming the tokens (server-sent events)."""
        question, history = _check(req, settings)
        filters, as_of = _filters(req)
        try:
            service.engine()
        except Exception as exc:
            _fail(exc)

        async def events() -> AsyncIterator[bytes]:
            try:
                async for ev in service.astream(question, history, req.language, filters, as_of):
                    kind = ev.get("type")
                    if kind == "read_as":
                        yield _sse("read_as", {"question": ev["question"], "language": ev.get("language")})
                    elif kind == "token":
                        yield _sse("token", {"text": ev["text"]})
                    elif kind == "citations":
                        yield _sse("citations", {"citations": ev["citations"]})
                    elif kind == "done":
                        recent.remember(ev["result"])
                        yield _sse("done", public_result(ev["result"], req.trace))
            except Exception as exc:
                status, message = error_status(exc)
                if status == 500:
                    log.exception("stream failed", exc_info=exc)
                yield _sse("error", {"detail": message, "status": status})

        return StreamingResponse(
            events(), media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.get("/api/health", tags=["index"])
    async def health():
        """Index present, document and chunk counts, models in use (503 while there is no index)."""
        data = await run_in_threadpool(service.health)
        return JSONResponse(data, status_code=200 if data["status"] == "ok" else 503)

    @app.get("/api/documents", responses=errors, tags=["index"])
    async def documents() -> list[dict]:
        """The indexed documents."""
        try:
            return await run_in_threadpool(service.documents)
        except Exception as exc:
            _fail(exc)

    @app.get("/api/feeds", responses=errors, tags=["index"])
    async def feeds() -> dict:
        """The feeds `qa sync` ingests: last sync, status, last error, items (read-only)."""
        try:
            return await run_in_threadpool(service.feeds)
        except Exception as exc:
            _fail(exc)

    @app.get("/api/documents/{doc_id}/text", response_class=PlainTextResponse, responses=errors, tags=["index"])
    async def document_text(doc_id: str):
        """The cleaned text of one document, as plain text (what the passages were cut from)."""
        try:
            text = await run_in_threadpool(service.document_text, doc_id)
        except Exception as exc:
            _fail(exc)
        if text is None:
            raise HTTPException(404, f"no such document: {doc_id}")
        return PlainTextResponse(text, headers={"Content-Disposition": "inline"})

    app.include_router(feedback_router(settings, recent))

    if ui:
        from qa.app.ui import mount_ui  # the only place gradio comes in

        mount_ui(app, service)

    # outermost first: CORS answers preflights before the guard; the guard wraps everything else
    app.add_middleware(GuardMiddleware, token=settings.api_token, origins=origins)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_credentials="*" not in origins,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["*"],
        max_age=600,
    )
    return app


def public_url(settings: Settings, path: str = "/") -> str:
    host = settings.host
    if host in ("0.0.0.0", "::", ""):
        import socket

        host = socket.gethostname()
    return f"http://{host}:{settings.port}{path}"


def serve(settings: Settings, *, echo: Callable[[str], None] = print) -> None:
    """Run the server (blocking) and print where to open it."""
    import uvicorn

    app = create_app(settings)
    if app.state.startup_problem:
        echo(f"warning: {app.state.startup_problem}")
    url = public_url(settings)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)

    original = server.startup

    async def startup(sockets=None):
        await original(sockets=sockets)
        if server.started:
            echo(f"qa is running: open {url}  (embed: {url}embed/ , API docs: {url}docs)")

    server.startup = startup  # type: ignore[method-assign]
    server.run()
