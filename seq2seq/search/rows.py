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
from typing import Protocol

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
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The loop, one step at a time: after each step it yields (rows, tokens), the rows
    of ``out`` (B * copies, steps) still decoding and the tokens they chose (EOS
    included), so a caller can stream them; ``out`` collects everything. src (B, S);
    max_len (B,) tokens before EOS; ``copies``: rows per sentence (samples); prefix
    (B, P) forced first tokens, PAD-padded."""
    device = src.device
    state = model.init_state(model.encode(src, src_lengths))
    rows = torch.arange(src.size(0), device=device)
    limit = max_len.to(device)
    if copies > 1:
        rows = rows.repeat_interleave(copies)
        state = model.reorder(state, rows)
        limit = limit.index_select(0, rows)
    if prefix is not None:
        prefix = prefix.to(device).index_select(0, rows)
    tokens = torch.full((rows.numel(),), rules.bos, dtype=torch.long, device=device)
    grammar = rules.start(src, rows)
    alive = torch.arange(rows.numel(), device=device)  # rows still decoding: they leave at EOS
    for t in range(int(limit.max()) + 1):
        log_probs, state, attn = model.step(tokens, state)
        rules.apply(log_probs, t, limit <= t, partial(out.history, alive, t), prefix, grammar)
        tokens, scores = choose(log_probs)
        grammar = rules.advance(grammar, tokens)
        out.write(alive, t, tokens, scores, attn)
        yield alive, tokens
        ended = tokens == rules.eos
        if bool(ended.all()):
            return
        if bool(ended.any()):
            keep = (~ended).nonzero().squeeze(1)
            alive, tokens, limit = alive[keep], tokens[keep], limit[keep]
            prefix = None if prefix is None else prefix[keep]
            state = model.reorder(state, keep)
            grammar = select(grammar, keep)
