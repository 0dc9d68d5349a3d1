"""Reading a request: the JSON bodies the endpoints take (pydantic models, strict, no
unknown fields), the body read within the size limit, and the checks that turn a request
into a model, a search and a batch key, or into a RequestError naming the field at fault."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ConfigDict, ValidationError

from seq2seq.config import ConfigError
from seq2seq.inference import Translator
from seq2seq.serve.limits import Limits, RequestError
from seq2seq.serve.models import Key, Registry, Served


class TranslateRequest(BaseModel):
    """POST /v1/translate. ``search`` takes any ``search.*`` key of a recipe (beam_size,
    nbest, sampling, temperature, top_k, top_p, seed, length_penalty, ...) except
    batch_size, precision and engine, which the server sets."""

    model_config = ConfigDict(extra="forbid", strict=True)
    texts: list[str]
    model: str | None = None
    search: dict[str, Any] = {}
    # per text, target phrases every output must contain (beam search; see README)
    required: list[list[str]] | None = None
    return_scores: bool = False
    return_attention: bool = False


class GenerateRequest(BaseModel):
    """POST /v1/generate: text generation streams the continuation of ``prompt`` as
    server-sent events; music answers with the whole output and its files (the prompt is
    the recipe's kind: a soprano as events, or the start of an ABC tune). ``max_tokens``
    defaults to the model's search.max_len_b (music: its max_len_a/max_len_b)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    prompt: str
    model: str | None = None
    search: dict[str, Any] = {}
    max_tokens: int | None = None


class Query(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    query: str
    context: list[str] = []  # earlier turns, oldest first (questions, or rewrites: the recipe says)


class ExpandRequest(BaseModel):
    """POST /v1/expand (query expansion models): per query, ``n`` rewrites (beam n-best
    and samples, ranked) and a weighted bag of terms summing to 1."""

    model_config = ConfigDict(extra="forbid", strict=True)
    queries: list[Query]
    model: str | None = None
    search: dict[str, Any] = {}
    n: int = 10


def prepare(registry: Registry, limits: Limits, asked: TranslateRequest) -> tuple[Key, int]:
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
    served, search, translator = model_and_search(registry, limits, asked.model, asked.search)
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


def model_and_search(
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
        raise RequestError(422, field_of(str(err)), str(err)) from None
    limits.check_search(changes)
    return served, search, translator


async def read_body(request: Request, limit: int) -> bytes:
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


def parse(body: bytes, model: type[Parsed]) -> Parsed:
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


def field_of(message: str) -> str:
    """The recipe key a ConfigError names (``search.beam_size``), else ``search``."""
    found = re.search(r"search\.[a-z_]+", message)
    return found.group(0) if found else "search"
