"""Greedy search over the decoder contract."""

from __future__ import annotations

import torch

from seq2seq.data.tokenizer import PAD_ID
from seq2seq.search.constraint import Constraint, apply
from seq2seq.search.hypothesis import Hypothesis, collect_outputs, forbid_specials, force_eos


@torch.no_grad()
def greedy_search(
    model: torch.nn.Module,
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
    """
    batch = src.size(0)
    state = model.init_state(model.encode(src, src_lengths))  # type: ignore[operator]
    tokens = torch.full((batch,), bos, dtype=torch.long, device=src.device)
    limit = max_len.to(src.device)
    done = torch.zeros(batch, dtype=torch.bool, device=src.device)
    rules = constraint.start(src, torch.arange(batch)) if constraint is not None else None
    out_tokens, out_scores, out_attn = [], [], []
    for t in range(int(limit.max()) + 1):
        log_probs, state, attn = model.step(tokens, state)  # type: ignore[operator]
        forbid_specials(log_probs, PAD_ID, bos)
        apply(log_probs, constraint, rules, exempt=limit <= t)
        force_eos(log_probs, limit <= t, eos)
        score, tokens = log_probs.max(dim=-1)
        if constraint is not None and rules is not None:
            rules = constraint.advance(rules, tokens)
        out_tokens.append(tokens)
        out_scores.append(score)
        if return_attention:
            out_attn.append(attn)
        done |= tokens == eos
        if bool(done.all()):
            break
    return collect_outputs(torch.stack(out_tokens, 1), torch.stack(out_scores, 1), out_attn, eos)
