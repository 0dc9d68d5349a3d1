"""The HTTP API (FastAPI): JSON in and out, versioned under /v1, OpenAPI docs at /docs.

    GET  /                a web page: type text, pick model and search, see the n-best
                          with scores and the attention of a chosen output
    GET  /health          the process answers
    GET  /ready           200 once the models are loaded and the batcher runs, else 503
    GET  /v1/models       the served models: task, languages, search defaults
    POST /v1/translate    {"texts": [...], "model": NAME, "search": {...}, "required":
                           [[phrase, ...], ...], "return_scores": bool, "return_attention": bool}
    POST /v1/generate     {"prompt": TEXT, "model": NAME, "search": {...}, "max_tokens": N}:
                          text generation streamed as server-sent events; music as JSON
                          with the ABC or MusicXML text and the MIDI file (base64)
    POST /v1/expand       {"queries": [{"query": Q, "context": [...]}], "model": NAME, "n": N}:
                          query expansion's rewrites and weighted terms
    GET  /metrics         Prometheus text: requests, errors, batch sizes, queue time, tokens

Every client error is a 4xx whose JSON names the field at fault:
``{"error": {"field": "search.beam_size", "message": "..."}}``; an internal error is a
500 with an error id that the log repeats with the traceback, and the server goes on.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from seq2seq.config import ConfigError
from seq2seq.inference import Translator
from seq2seq.serve.batching import Batcher, QueueFull
from seq2seq.serve.limits import Limits, RequestError
from seq2seq.serve.metrics import Metrics
from seq2seq.serve.models import Registry, Served
from seq2seq.serve.requests import (
    ExpandRequest,
    GenerateRequest,
    TranslateRequest,
    field_of,
    model_and_search,
    parse,
    prepare,
    read_body,
)
from seq2seq.serve.streaming import Streamer

log = logging.getLogger("seq2seq.serve")


@dataclass
class Server:
    """What the routes share."""

    registry: Registry
    limits: Limits
    metrics: Metrics
    batcher: Batcher
    streamer: Streamer
    ready: bool = False


def create_app(
    registry: Registry,
    limits: Limits | None = None,
    api_key: str | None = None,
    cors_origins: tuple[str, ...] = (),
) -> FastAPI:
    limits = limits or Limits()
    metrics = Metrics()
    batcher = Batcher(
        registry.decode,
        limits.max_batch_tokens,
        limits.max_wait_ms / 1000,
        limits.max_queue,
        on_batch=metrics.batch,
        max_delay_s=limits.max_delay_ms / 1000,
    )
    server = Server(registry, limits, metrics, batcher, Streamer())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        server.batcher.start()
        server.ready = True
        try:
            yield
        finally:  # uvicorn has drained the requests in flight (SIGTERM, Ctrl-C)
            server.ready = False
            await server.batcher.stop()
            server.streamer.stop()

    app = FastAPI(title="seq2seq", version="1", lifespan=lifespan)
    if cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["*"])
    _add_error_handlers(app)
    _add_guard(app, metrics, api_key)
    _add_info_routes(app, server)
    _add_translate(app, server)
    _add_generate(app, server)
    _add_expand(app, server)
    return app


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI for a body the route reads itself (to answer its errors its own way)."""
    content = {"application/json": {"schema": model.model_json_schema()}}
    return {"requestBody": {"required": True, "content": content}}


def _add_guard(app: FastAPI, metrics: Metrics, api_key: str | None) -> None:
    """The API key on /v1 and /metrics, and the request counters."""

    @app.middleware("http")
    async def count_and_guard(request: Request, call_next: Any) -> Any:
        path = request.url.path
        endpoint = path if path in KNOWN_PATHS else "other"
        guarded = path.startswith("/v1/") or path == "/metrics"
        if api_key and guarded and not _authorized(request, api_key):
            response: Any = _error(401, "authorization", "a valid bearer token is required")
            response.headers["WWW-Authenticate"] = "Bearer"
            metrics.request(endpoint, 401)
            return response
        try:
            response = await call_next(request)
        except Exception:
            metrics.request(endpoint, 500)  # the 500 itself comes from internal_error
            raise
        metrics.request(endpoint, response.status_code)
        return response


def _add_info_routes(app: FastAPI, server: Server) -> None:
    page = (resources.files("seq2seq.serve") / "page.html").read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> str:
        return page  # plain HTML and a small script: no build step, no CDN

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        body = {"ready": server.ready, "models": list(server.registry.models)}
        return JSONResponse(body, 200 if server.ready else 503)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"models": [served.summary() for served in server.registry.models.values()]}

    @app.get("/metrics", response_class=PlainTextResponse)
    async def prometheus() -> str:
        return server.metrics.render(server.batcher.waiting)


def _add_translate(app: FastAPI, server: Server) -> None:
    limits = server.limits

    @app.post("/v1/translate", openapi_extra=_body_schema(TranslateRequest))
    async def translate(request: Request) -> dict[str, Any]:
        started = time.perf_counter()
        asked = parse(await read_body(request, limits.max_body_bytes), TranslateRequest)
        key, tokens = prepare(server.registry, limits, asked)
        required = asked.required or [[] for _ in asked.texts]
        items = [(text, tuple(p)) for text, p in zip(asked.texts, required, strict=True)]
        try:
            submitted = server.batcher.submit(key, items, tokens)
            results = await asyncio.wait_for(submitted, limits.timeout_s)
        except QueueFull as err:
            raise RequestError(503, "queue", f"{err}; retry shortly") from None
        except TimeoutError:
            raise RequestError(504, "timeout", f"not done within {limits.timeout_s:g} s") from None
        except ConfigError as err:  # a setting that only decoding refuses
            raise RequestError(422, field_of(str(err)), str(err)) from None
        server.metrics.outputs(sum(o["tokens"] + 1 for outputs in results for o in outputs))
        return {
            "model": key.model,
            "results": [{"outputs": outputs} for outputs in results],
            "milliseconds": round((time.perf_counter() - started) * 1000, 1),
        }


def _add_generate(app: FastAPI, server: Server) -> None:
    limits = server.limits

    @app.post("/v1/generate", openapi_extra=_body_schema(GenerateRequest))
    async def generate(request: Request) -> Any:
        asked = parse(await read_body(request, limits.max_body_bytes), GenerateRequest)
        served, _, translator = model_and_search(server.registry, limits, asked.model, asked.search)
        if asked.max_tokens is not None and not 0 < asked.max_tokens <= limits.max_output_tokens:
            cap = limits.max_output_tokens
            raise RequestError(422, "max_tokens", f"{asked.max_tokens} is not in 1..{cap}")
        if served.task.generates == "stream":
            most = asked.max_tokens or int(translator.search.max_len_b)
            pieces = served.task.stream(translator, asked.prompt, most)
            events = server.streamer.events(pieces, server.metrics.outputs)
            return StreamingResponse(events, media_type="text/event-stream")
        if served.task.generates == "documents":
            return await _documents(server, served, translator, asked)
        message = f"task {served.task.name} does not generate; use /v1/translate"
        raise RequestError(422, "model", message)


async def _documents(
    server: Server, served: Served, translator: Translator, asked: GenerateRequest
) -> dict[str, Any]:
    """/v1/generate for a task whose outputs are files (music): the whole output as JSON,
    decoded and written in the decode thread between batches."""
    started = time.perf_counter()
    if asked.max_tokens:
        translator = translator.with_search(max_len_a=0.0, max_len_b=asked.max_tokens)
    try:
        source = served.task.source_from_prompt(translator, asked.prompt)
    except ConfigError as err:
        raise RequestError(422, "prompt", str(err).removeprefix("prompt: ")) from None
    (length,) = [len(ids) for ids in translator.src_tok.encode([source])]
    if length > server.limits.max_input_tokens:
        cap = server.limits.max_input_tokens
        raise RequestError(422, "prompt", f"{length} tokens, more than this server's {cap}")

    def work() -> dict[str, Any]:
        (output,) = served.task.outputs(translator, [source])
        shown = served.task.show(translator, source, output)
        return {
            "output": output,
            "text": shown,
            **served.task.documents(translator, source, output),
        }

    try:
        result = await asyncio.wait_for(server.batcher.call(work), server.limits.timeout_s)
    except TimeoutError:
        raise RequestError(
            504, "timeout", f"not done within {server.limits.timeout_s:g} s"
        ) from None
    server.metrics.outputs(len(result["output"].split()) + 1)
    elapsed = round((time.perf_counter() - started) * 1000, 1)
    return {"model": served.name, **result, "milliseconds": elapsed}


def _add_expand(app: FastAPI, server: Server) -> None:
    limits = server.limits

    @app.post("/v1/expand", openapi_extra=_body_schema(ExpandRequest))
    async def expand(request: Request) -> dict[str, Any]:
        asked = parse(await read_body(request, limits.max_body_bytes), ExpandRequest)
        if not 1 <= len(asked.queries) <= limits.max_texts:
            message = f"{len(asked.queries)} queries; give 1 to {limits.max_texts}"
            raise RequestError(422, "queries", message)
        for i, query in enumerate(asked.queries):
            if not query.query.strip():
                raise RequestError(422, f"queries.{i}.query", "an empty query")
        if not 1 <= asked.n <= limits.max_beam:
            raise RequestError(422, "n", f"{asked.n} is not in 1..{limits.max_beam}")
        found = model_and_search(server.registry, limits, asked.model, asked.search)
        served, _, translator = found
        pairs = [(q.query, list(q.context)) for q in asked.queries]
        try:
            work = server.batcher.call(lambda: served.task.expand(translator, pairs, asked.n))
            results = await asyncio.wait_for(work, limits.timeout_s)
        except TimeoutError:
            raise RequestError(504, "timeout", f"not done within {limits.timeout_s:g} s") from None
        except ConfigError as err:
            raise RequestError(422, "model", str(err)) from None
        return {"model": served.name, "expansions": results}


KNOWN_PATHS = frozenset(
    {
        "/",
        "/v1/generate",
        "/v1/expand",
        "/health",
        "/ready",
        "/v1/models",
        "/v1/translate",
        "/metrics",
    }
)


def _authorized(request: Request, api_key: str) -> bool:
    given = request.headers.get("authorization", "")
    scheme, _, token = given.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), api_key.encode())


def _error(status: int, field: str | None, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"field": field, "message": message, **extra}}, status)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestError)
    async def client_error(request: Request, err: RequestError) -> JSONResponse:
        response = _error(err.status, err.field, err.message)
        if err.status == 503:
            response.headers["Retry-After"] = "1"
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        # routing's own errors (404 unknown path, 405 wrong method) in our error shape
        response = _error(err.status_code, None, str(err.detail))
        for name, value in (err.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(Exception)
    async def internal_error(request: Request, err: Exception) -> JSONResponse:
        error_id = uuid.uuid4().hex[:12]
        log.error("internal error %s on %s", error_id, request.url.path, exc_info=err)
        return _error(500, None, "internal error", id=error_id)
