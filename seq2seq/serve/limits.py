"""What one request may ask of the server, and the one-line errors when it asks more.

Every limit has a command-line flag (``seq2seq serve --help``). A search setting a
request sends is checked twice: as a recipe's would be (type, range, the nearest name
for a typo: ``with_search``), then against the server's own caps below, which keep one
request from holding the decoder for minutes (a recipe may allow beam 1000; a server
should not)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# search settings a request may not change: the server chose them
SERVER_OWNED = ("batch_size", "precision", "engine")


class RequestError(Exception):
    """A client error: HTTP ``status``, the request ``field`` at fault, a message."""

    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.status = status
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1_000_000
    max_texts: int = 64  # texts per request
    max_input_tokens: int = 256  # source tokens per text
    timeout_s: float = 60.0  # per request, queueing included
    max_queue: int = 256  # requests waiting before 503
    max_batch_tokens: int = 4096  # source tokens decoded together
    max_wait_ms: float = 5.0  # how long a batch waits for the next request to join it
    max_delay_ms: float = 50.0  # the most a batch waits for company in all
    max_beam: int = 32  # beam_size and nbest
    max_output_tokens: int = 512  # max_len_b and min_len

    def check_search(self, changes: dict[str, Any]) -> None:
        """The server's caps on a request's search settings (after their recipe checks)."""
        for key in SERVER_OWNED:
            if key in changes:
                raise RequestError(422, f"search.{key}", "set by the server, not per request")
        for key, cap in (
            ("beam_size", self.max_beam),
            ("nbest", self.max_beam),
            ("max_len_b", self.max_output_tokens),
            ("min_len", self.max_output_tokens),
        ):
            value = changes.get(key)
            if isinstance(value, int) and value > cap:
                raise RequestError(422, f"search.{key}", f"{value} is over this server's {cap}")
        scale = changes.get("max_len_a")
        if isinstance(scale, int | float) and scale > 4:
            raise RequestError(422, "search.max_len_a", f"{scale} is over this server's 4")

    def check_texts(self, texts: list[str]) -> None:
        if not texts:
            raise RequestError(422, "texts", "give at least one text")
        if len(texts) > self.max_texts:
            raise RequestError(
                422, "texts", f"{len(texts)} texts, more than this server's {self.max_texts}"
            )
