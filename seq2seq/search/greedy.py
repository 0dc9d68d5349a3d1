"""Greedy search over the decoder contract: the row loop choosing the most likely token."""

from __future__ import annotations

import torch

from seq2seq.data.tokenizer import PAD_ID
from seq2seq.search.constraint import Constraint
from seq2seq.search.contract import Decodable
from seq2seq.search.hypothesis import Hypothesis, OutputBuffer
from seq2seq.search.rows import most_likely, row_steps
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
    width: int = 0,
) -> list[list[Hypothesis]]:
    """Pick the most likely token at each step, of those the token rules allow
    (search/rules.py: ``min_len``, ``no_repeat_ngram``, ``prefix`` (B, P) PAD-padded,
    ``constraint``). src (B, S); max_len (B,) tokens before EOS. Returns one
    single-hypothesis list per sentence, in input order. ``width`` > 0: at most that many
    sentences decode at once, the next joining as one ends (rows.py).

    The loop is sampling's (rows.py) with the most likely token as its choice.
    """
    rules = TokenRules(bos, eos, PAD_ID, min_len, no_repeat_ngram, constraint)
    out = OutputBuffer(
        src.size(0), int(max_len.max()) + 1, src.size(1), eos, src.device, return_attention
    )
    steps = row_steps(
        model, src, src_lengths, max_len, rules, most_likely, out, prefix=prefix, width=width
    )
    for _ in steps:
        pass
    return out.hypotheses()
