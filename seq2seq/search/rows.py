"""The row loop: greedy search and sampling are one loop with a different selector.

Each search row (a sentence, or one of its samples) extends its own output one token at
a time: the model steps, the token rules (rules.py) mask the log-probs, the selector
picks a token per row (greedy: the most likely; sampling: a draw), and a row leaves the
batch at its EOS. Beam search (beam.py) keeps K hypotheses per sentence and chooses among
their 2K best continuations instead; it applies the same token rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Protocol

import torch

from seq2seq.search.constraint import ConstraintState, select
from seq2seq.search.contract import Decodable
from seq2seq.search.hypothesis import OutputBuffer
from seq2seq.search.rules import TokenRules


class Selector(Protocol):
    def __call__(self, log_probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, V) masked log-probs -> the chosen tokens (N,) and their log-probs (N,)."""
        ...


def most_likely(log_probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy's selector."""
    score, tokens = log_probs.max(dim=-1)
    return tokens, score


class Waiting:
    """Rows not started yet, for a loop that keeps at most ``width`` rows decoding, handed
    out in row order. Their sources are encoded ``width`` rows at a time, when the rows
    are needed, each chunk padded to its own longest source: encoding a whole group at
    once pads every source to the group's longest (test2016 in chunks of 512: 0.46-0.58 s,
    of 64: 0.27 s) and keeps its memory for the whole search."""

    def __init__(
        self,
        model: Decodable,
        src: torch.Tensor,
        src_lengths: torch.Tensor,
        sentences: torch.Tensor,
        width: int,
    ) -> None:
        """src (B, S), src_lengths (B,) on CPU; sentences (N,) each row's source row,
        non-decreasing (a sentence's copies are adjacent)."""
        self.model, self.src, self.src_lengths, self.width = model, src, src_lengths, width
        self.sentences = sentences.cpu()
        self.next = 0  # the next row to hand out
        self.chunk: Any = None  # the state of rows chunk_start ... chunk_start + width - 1
        self.chunk_start = 0

    def __bool__(self) -> bool:
        return self.next < self.sentences.numel()

    def take(self, state: Any | None, alive: int, device: torch.device) -> tuple[Any, torch.Tensor]:
        """Rows to fill the loop up to ``width`` beside its ``alive`` rows: the state with
        theirs after (``state`` None: theirs alone) and their ids (n,)."""
        end = min(self.sentences.numel(), self.next + self.width - alive)
        new = torch.arange(self.next, end, device=device)
        while self.next < end:
            if self.chunk is None or self.next >= self.chunk_start + self.width:
                self._encode(self.next)
            stop = min(end, self.chunk_start + self.width)
            index = torch.arange(self.next - self.chunk_start, stop - self.chunk_start)
            joining = self.model.reorder(self.chunk, index.to(device))
            state = joining if state is None else self.model.join(state, joining)
            self.next = stop
        return state, new

    def _encode(self, start: int) -> None:
        """The state of rows start ... start + width - 1 before their first step."""
        sentences = self.sentences[start : start + self.width]
        own, row_of = torch.unique_consecutive(sentences, return_inverse=True)
        lengths = self.src_lengths.index_select(0, own)
        src = self.src.index_select(0, own.to(self.src.device))[:, : int(lengths.max())]
        state = self.model.init_state(self.model.encode(src, lengths))
        if own.numel() != sentences.numel():  # samples: a sentence's copies
            state = self.model.reorder(state, row_of.to(self.src.device))
        self.chunk, self.chunk_start = state, start


@dataclass
class _Live:
    """The rows decoding now: their rows of the output (n,), the tokens they feed next
    (n,), the model's state, and where rows began apart, the step each began at (n,).
    A prefix (n, P) and a grammar's state follow the rows when all began together."""

    rows: torch.Tensor
    tokens: torch.Tensor
    state: Any
    started: torch.Tensor | None = None
    prefix: torch.Tensor | None = None
    grammar: ConstraintState | None = None

    def steps(self, t: int) -> int | torch.Tensor:
        """The step each row is at when the loop is at step t: t, or (n,)."""
        return t if self.started is None else t - self.started

    def without(self, model: Decodable, ended: torch.Tensor, tokens: torch.Tensor) -> _Live:
        """The rows that did not end (ended (n,) bool), feeding ``tokens`` (n,) next."""
        keep = (~ended).nonzero().squeeze(1)
        if keep.numel() == tokens.numel():
            return replace(self, tokens=tokens)
        return _Live(
            self.rows[keep],
            tokens[keep],
            model.reorder(self.state, keep) if keep.numel() else None,
            None if self.started is None else self.started[keep],
            None if self.prefix is None else self.prefix[keep],
            select(self.grammar, keep),
        )

    def joined(self, waiting: Waiting, t: int, bos: int) -> _Live:
        """These rows and the waiting ones that fill the loop, which begin at step t."""
        state, new = waiting.take(self.state, self.rows.numel(), self.rows.device)
        began = torch.full_like(new, t)
        started = began if self.started is None else torch.cat([self.started, began])
        tokens = torch.cat([self.tokens, torch.full_like(new, bos)])
        return _Live(torch.cat([self.rows, new]), tokens, state, started)


def _all_at_once(
    model: Decodable,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    rows: torch.Tensor,
    rules: TokenRules,
    prefix: torch.Tensor | None,
) -> _Live:
    """Every row starting together: rows (N,) each row's source row."""
    state = model.init_state(model.encode(src, src_lengths))
    if rows.numel() != src.size(0):  # samples: a sentence's copies
        state = model.reorder(state, rows)
    if prefix is not None:
        prefix = prefix.to(src.device).index_select(0, rows)
    tokens = torch.full_like(rows, rules.bos)
    alive = torch.arange(rows.numel(), device=src.device)
    return _Live(alive, tokens, state, prefix=prefix, grammar=rules.start(src, rows))


@torch.no_grad()
def row_steps(
    model: Decodable,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    max_len: torch.Tensor,
    rules: TokenRules,
    choose: Selector,
    out: OutputBuffer,
    copies: int = 1,
    prefix: torch.Tensor | None = None,
    width: int = 0,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The loop, one step at a time: after each step it yields (rows, tokens), the rows
    of ``out`` (B * copies, steps) still decoding and the tokens they chose (EOS
    included), so a caller can stream them; ``out`` collects everything. src (B, S);
    max_len (B,) tokens before EOS; ``copies``: rows per sentence (samples); prefix
    (B, P) forced first tokens, PAD-padded.

    ``width`` > 0 keeps at most that many rows decoding: the first ``width`` start, and
    when a quarter of them have ended the next waiting rows take their places, so the
    batch stays nearly full while its long outputs finish (sorted batches otherwise
    spend their last steps on a few rows; joining by the quarter, not row by row,
    copies the state less often). Rows then sit at different steps, which n-gram
    blocking, a prefix and a grammar do not follow: ``width`` needs all three off.
    """
    rows = torch.arange(src.size(0), device=src.device)  # each row's source row
    limit = max_len.to(src.device)
    if copies > 1:
        rows = rows.repeat_interleave(copies)
        limit = limit.index_select(0, rows)
    waiting = None
    if 0 < width < rows.numel():
        if prefix is not None or rules.constraint is not None or rules.no_repeat_ngram:
            raise ValueError("rows join in flight only without a prefix, grammar or n-gram rule")
        waiting = Waiting(model, src, src_lengths, rows, width)
        none = rows[:0]
        live = _Live(none, none, None, started=none).joined(waiting, 0, rules.bos)
    else:
        live = _all_at_once(model, src, src_lengths, rows, rules, prefix)
    t = 0
    while True:
        log_probs, live.state, attn = model.step(live.tokens, live.state)
        steps = live.steps(t)
        at_limit = limit[live.rows] <= steps
        history = partial(out.history, live.rows, t)
        rules.apply(log_probs, steps, at_limit, history, live.prefix, live.grammar)
        tokens, scores = choose(log_probs)
        live.grammar = rules.advance(live.grammar, tokens)
        out.write(live.rows, steps, tokens, scores, attn)
        yield live.rows, tokens
        ended = (tokens == rules.eos) | at_limit  # at its limit a row chose EOS, or had none left
        if bool(ended.all()) and not waiting:
            return
        live = live.without(model, ended, tokens)
        if waiting and live.rows.numel() <= width * 3 // 4:
            live = live.joined(waiting, t + 1, rules.bos)
        t += 1
