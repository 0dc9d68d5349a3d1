"""Greedy search over the decoder contract."""

from __future__ import annotations

from functools import partial

import torch

from seq2seq.data.tokenizer import PAD_ID
from seq2seq.search.constraint import Constraint, select
from seq2seq.search.contract import Decodable
from seq2seq.search.hypothesis import Hypothesis, OutputBuffer
from seq2seq.search.rules import TokenRules


@torch.no_grad()
def greedy_search(
    model: Decodable,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    max_len: torch.Tensor,
    bos: int,
    eos: int,
    return_attention: bool = False,
    constraint: Constraint | None = None,
    *,
    min_len: int = 0,
    no_repeat_ngram: int = 0,
    prefix: torch.Tensor | None = None,
) -> list[list[Hypothesis]]:
    """Pick the most likely token at each step, of those the token rules allow
    (search/rules.py: ``min_len``, ``no_repeat_ngram``, ``prefix`` (B, P) PAD-padded,
    ``constraint``). src (B, S); max_len (B,) tokens before EOS. Returns one
    single-hypothesis list per sentence, in input order.

    A sentence leaves the batch at its EOS: the rows still decoding are ``alive`` (their
    batch rows), and each step writes its tokens into an ``OutputBuffer`` at those rows.
    """
    rules = TokenRules(bos, eos, PAD_ID, min_len, no_repeat_ngram, constraint)
    batch, device = src.size(0), src.device
    state = model.init_state(model.encode(src, src_lengths))
    tokens = torch.full((batch,), bos, dtype=torch.long, device=device)
    limit = max_len.to(device)
    steps = int(limit.max()) + 1
    alive = torch.arange(batch, device=device)
    grammar = rules.start(src, alive)
    prefix = None if prefix is None else prefix.to(device)
    out = OutputBuffer(batch, steps, src.size(1), eos, device, return_attention)
    for t in range(steps):
        log_probs, state, attn = model.step(tokens, state)
        rules.apply(
            log_probs,
            t,
            limit <= t,
            partial(out.history, alive, t),
            prefix,
            grammar,
        )
        score, tokens = log_probs.max(dim=-1)
        grammar = rules.advance(grammar, tokens)
        out.write(alive, t, tokens, score, attn)
        ended = tokens == eos
        if bool(ended.all()):
            break
        if bool(ended.any()):
            keep = (~ended).nonzero().squeeze(1)
            alive, tokens, limit = alive[keep], tokens[keep], limit[keep]
            prefix = None if prefix is None else prefix[keep]
            state = model.reorder(state, keep)
            grammar = select(grammar, keep)
    return out.hypotheses()
