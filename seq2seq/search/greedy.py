"""Greedy search over the decoder contract."""

from __future__ import annotations

import torch

from seq2seq.data.tokenizer import PAD_ID
from seq2seq.search.constraint import Constraint, apply, select
from seq2seq.search.contract import Decodable
from seq2seq.search.hypothesis import Hypothesis, OutputBuffer, forbid_specials, force_eos


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
) -> list[list[Hypothesis]]:
    """Pick the most likely token at each step (of those ``constraint`` allows). src (B, S);
    max_len (B,) tokens before EOS. Returns one single-hypothesis list per sentence, in
    input order.

    A sentence leaves the batch at its EOS: the rows still decoding are ``alive`` (their
    batch rows), and each step writes its tokens into an ``OutputBuffer`` at those rows.
    """
    batch, device = src.size(0), src.device
    state = model.init_state(model.encode(src, src_lengths))
    tokens = torch.full((batch,), bos, dtype=torch.long, device=device)
    limit = max_len.to(device)
    steps = int(limit.max()) + 1
    alive = torch.arange(batch, device=device)
    rules = constraint.start(src, alive) if constraint is not None else None
    out = OutputBuffer(batch, steps, src.size(1), eos, device, return_attention)
    for t in range(steps):
        log_probs, state, attn = model.step(tokens, state)
        forbid_specials(log_probs, PAD_ID, bos)
        apply(log_probs, constraint, rules, exempt=limit <= t)
        force_eos(log_probs, limit <= t, eos)
        score, tokens = log_probs.max(dim=-1)
        if constraint is not None and rules is not None:
            rules = constraint.advance(rules, tokens)
        out.write(alive, t, tokens, score, attn)
        ended = tokens == eos
        if bool(ended.all()):
            break
        if bool(ended.any()):
            keep = (~ended).nonzero().squeeze(1)
            alive, tokens, limit = alive[keep], tokens[keep], limit[keep]
            state = model.reorder(state, keep)
            rules = select(rules, keep)
    return out.hypotheses()
