"""The HTTP API (FastAPI): JSON in and out, versioned under /v1, OpenAPI docs at /docs.

    GET  /                a web page: type text, pick model and search, see the n-best
                          with scores and the attention of a chosen output
    GET  /health          the process answers
    GET  /ready           200 once the models are loaded and the batcher runs, else 503
    GET  /v1/models       the served models: task, languages, search defaults
    POST /v1/translate    {"texts": [...], "model": NAME, "search": {...}, "required":
                           [[phrase, ...], ...], "return_scores": bool, "return_attention": bool}
    POST /v1/generate     {"prompt": TEXT, "model": NAME, "search": {...}, "max_tokens": N}:
                          text generation streamed as server-sent events
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
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, ValidationError

from seq2seq.config import ConfigError
from seq2seq.inference import Translator
from seq2seq.serve.batching import Batcher, QueueFull
from seq2seq.serve.limits import Limits, RequestError
from seq2seq.serve.metrics import Metrics
from seq2seq.serve.models import Key, Registry, Served
from seq2seq.serve.streaming import Streamer

log = logging.getLogger("seq2seq.serve")


class TranslateRequest(BaseModel):
    """POST /v1/translate. ``search`` takes any ``search.*`` key of a recipe (beam_size,
    nbest, sampling, temperature, top_k, top_p, seed, length_penalty, ...) except
    batch_size and precision, which the server sets."""

    model_config = ConfigDict(extra="forbid", strict=True)
    texts: list[str]
    model: str | None = None
    search: dict[str, Any] = {}
    # per text, target phrases every output must contain (beam search; see README)
    required: list[list[str]] | None = None
    return_scores: bool = False
    return_attention: bool = False


class GenerateRequest(BaseModel):
    """POST /v1/generate (text generation models): the continuation of ``prompt``,
    streamed as server-sent events; ``max_tokens`` defaults to the model's
    search.max_len_b."""

    model_config = ConfigDict(extra="forbid", strict=True)
    prompt: str
    model: str | None = None
    search: dict[str, Any] = {}
    max_tokens: int | None = None


@dataclass
class Server:
    """What the routes share."""

    registry: Registry
    limits: Limits
    metrics: Metrics
    batcher: Batcher
    streamer: Streamer
    ready: bool = False


class Query(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    query: str
    context: list[str] = []  # the conversation's earlier questions, oldest first


class ExpandRequest(BaseModel):
    """POST /v1/expand (query expansion models): per query, ``n`` rewrites (beam n-best
    and samples, ranked) and a weighted bag of terms summing to 1."""

    model_config = ConfigDict(extra="forbid", strict=True)
    queries: list[Query]
    model: str | None = None
    search: dict[str, Any] = {}
    n: int = 10


def create_app(
    registry: Registry,
    limits: Limits | None = None,
    api_key: str | None = None,
    cors_origins: tuple[str, ...] = (),
) -> FastAPI:
    limits = limits or Limits()
    metrics = Metrics()
    batcher = Batcher(
        registry.decode, limits.max_batch_tokens, limits.max_wait_ms / 1000, limits.max_queue
    )
    batcher.on_batch = metrics.batch
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
        asked = _parse(await _read_body(request, limits.max_body_bytes), TranslateRequest)
        key, tokens = _prepare(server.registry, limits, asked)
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
            raise RequestError(422, _field_of(str(err)), str(err)) from None
        server.metrics.outputs(sum(o["tokens"] + 1 for outputs in results for o in outputs))
        return {
            "model": key.model,
            "results": [{"outputs": outputs} for outputs in results],
            "milliseconds": round((time.perf_counter() - started) * 1000, 1),
        }


def _add_generate(app: FastAPI, server: Server) -> None:
    limits = server.limits

    @app.post(
        "/v1/generate",
        response_class=StreamingResponse,
        openapi_extra=_body_schema(GenerateRequest),
    )
    async def generate(request: Request) -> StreamingResponse:
        asked = _parse(await _read_body(request, limits.max_body_bytes), GenerateRequest)
        found = _model_and_search(server.registry, limits, asked.model, asked.search)
        served, _, translator = found
        most = asked.max_tokens or int(translator.search.max_len_b)
        if not 0 < most <= limits.max_output_tokens:
            cap = limits.max_output_tokens
            raise RequestError(422, "max_tokens", f"{most} is not in 1..{cap}")
        try:
            pieces = served.task.stream(translator, asked.prompt, most)
        except ConfigError as err:
            raise RequestError(422, "model", str(err)) from None
        events = server.streamer.events(pieces, server.metrics.outputs)
        return StreamingResponse(events, media_type="text/event-stream")


def _add_expand(app: FastAPI, server: Server) -> None:
    limits = server.limits

    @app.post("/v1/expand", openapi_extra=_body_schema(ExpandRequest))
    async def expand(request: Request) -> dict[str, Any]:
        asked = _parse(await _read_body(request, limits.max_body_bytes), ExpandRequest)
        if not 1 <= len(asked.queries) <= limits.max_texts:
            message = f"{len(asked.queries)} queries; give 1 to {limits.max_texts}"
            raise RequestError(422, "queries", message)
        for i, query in enumerate(asked.queries):
            if not query.query.strip():
                raise RequestError(422, f"queries.{i}.query", "an empty query")
        if not 1 <= asked.n <= limits.max_beam:
            raise RequestError(422, "n", f"{asked.n} is not in 1..{limits.max_beam}")
        found = _model_and_search(server.registry, limits, asked.model, asked.search)
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


def _prepare(registry: Registry, limits: Limits, asked: TranslateRequest) -> tuple[Key, int]:
    """The batch key of a valid request and its source tokens; a RequestError naming the
    field otherwise."""
    limits.check_texts(asked.texts)
    if asked.required is not None:
        if len(asked.required) != len(asked.texts):
            message = f"{len(asked.required)} phrase lists for {len(asked.texts)} texts"
            raise RequestError(422, "required", message)
        for i, phrases in enumerate(asked.required):
            for j, phrase in enumerate(phrases):
                if not phrase.strip():
                    raise RequestError(422, f"required.{i}.{j}", "an empty phrase")
    served, search, translator = _model_and_search(registry, limits, asked.model, asked.search)
    # checked here: in a shared batch a decoding error would reach the other requests
    beam_search = not (translator.search.sampling or translator.search.constrained)
    if asked.required and any(asked.required) and not beam_search:
        raise RequestError(422, "required", "needs beam search without search.constrained")
    lengths = [len(ids) for ids in translator.src_tok.encode(asked.texts)]
    for i, length in enumerate(lengths):
        if length > limits.max_input_tokens:
            raise RequestError(
                422,
                f"texts.{i}",
                f"{length} tokens, more than this server's {limits.max_input_tokens}",
            )
    key = Key(served.name, search, asked.return_scores, asked.return_attention)
    return key, sum(lengths)


def _model_and_search(
    registry: Registry, limits: Limits, model: str | None, changes: dict[str, Any]
) -> tuple[Served, tuple[tuple[str, Any], ...], Translator]:
    """The model a request names, its search changes as a key, and the translator with
    them; a RequestError naming the field when either is wrong."""
    try:
        served = registry.get(model)
    except KeyError:
        known = ", ".join(registry.models)
        raise RequestError(422, "model", f"no model '{model}' (served: {known})") from None
    for name, value in changes.items():
        if isinstance(value, list | dict):
            raise RequestError(422, f"search.{name}", "takes a single value")
    search = tuple(sorted(changes.items()))
    try:
        translator = registry.translator(served.name, search)
    except ConfigError as err:
        raise RequestError(422, _field_of(str(err)), str(err)) from None
    limits.check_search(changes)
    return served, search, translator


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise RequestError(413, "body", f"{declared} bytes, more than this server's {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, "body", f"more than this server's {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


Parsed = TypeVar("Parsed", bound=BaseModel)


def _parse(body: bytes, model: type[Parsed]) -> Parsed:
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RequestError(400, "body", f"not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise RequestError(422, "body", "must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        raise RequestError(422, field, first["msg"]) from None


def _field_of(message: str) -> str:
    """The recipe key a ConfigError names (``search.beam_size``), else ``search``."""
    found = re.search(r"search\.[a-z_]+", message)
    return found.group(0) if found else "search"


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

    @app.exception_handler(Exception)
    async def internal_error(request: Request, err: Exception) -> JSONResponse:
        error_id = uuid.uuid4().hex[:12]
        log.error("internal error %s on %s", error_id, request.url.path, exc_info=err)
        return _error(500, None, "internal error", id=error_id)
