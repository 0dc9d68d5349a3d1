"""The row loop: greedy search and sampling are one loop with a different selector.

Each search row (a sentence, or one of its samples) extends its own output one token at
a time: the model steps, the token rules (rules.py) mask the log-probs, the selector
picks a token per row (greedy: the most likely; sampling: a draw), and a row leaves the
batch at its EOS. Beam search (beam.py) keeps K hypotheses per sentence and chooses among
their 2K best continuations instead; it applies the same token rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any, Protocol

import torch

from seq2seq.search.constraint import select
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
    device = src.device
    rows = torch.arange(src.size(0), device=device)  # each row's source row
    limit = max_len.to(device)
    if copies > 1:
        rows = rows.repeat_interleave(copies)
        limit = limit.index_select(0, rows)
    waiting = None
    started = None  # (n,) the step at which each row began, when rows begin apart
    grammar = None
    if 0 < width < rows.numel():
        if prefix is not None or rules.constraint is not None or rules.no_repeat_ngram:
            raise ValueError("rows join in flight only without a prefix, grammar or n-gram rule")
        waiting = Waiting(model, src, src_lengths, rows, width)
        state, alive = waiting.take(None, 0, device)
        started = torch.zeros_like(alive)
    else:
        state = model.init_state(model.encode(src, src_lengths))
        if copies > 1:
            state = model.reorder(state, rows)
        if prefix is not None:
            prefix = prefix.to(device).index_select(0, rows)
        grammar = rules.start(src, rows)
        alive = torch.arange(rows.numel(), device=device)  # rows decoding: they leave at EOS
    tokens = torch.full((alive.numel(),), rules.bos, dtype=torch.long, device=device)
    t = 0
    while True:
        log_probs, state, attn = model.step(tokens, state)
        steps = t if started is None else t - started  # each row's own step
        at_limit = limit[alive] <= steps
        rules.apply(log_probs, steps, at_limit, partial(out.history, alive, t), prefix, grammar)
        tokens, scores = choose(log_probs)
        grammar = rules.advance(grammar, tokens)
        out.write(alive, steps, tokens, scores, attn)
        yield alive, tokens
        ended = (tokens == rules.eos) | at_limit  # at its limit a row chose EOS, or had none left
        if bool(ended.all()):
            if not waiting:
                return
            state, alive = waiting.take(None, 0, device)
            tokens, started = torch.full_like(alive, rules.bos), torch.full_like(alive, t + 1)
        elif bool(ended.any()):
            keep = (~ended).nonzero().squeeze(1)
            alive, tokens = alive[keep], tokens[keep]
            started = None if started is None else started[keep]
            prefix = None if prefix is None else prefix[keep]
            state = model.reorder(state, keep)
            grammar = select(grammar, keep)
        if waiting and started is not None and alive.numel() <= width * 3 // 4:
            state, new = waiting.take(state, alive.numel(), device)
            alive = torch.cat([alive, new])
            tokens = torch.cat([tokens, torch.full_like(new, rules.bos)])
            started = torch.cat([started, torch.full_like(new, t + 1)])
        t += 1
