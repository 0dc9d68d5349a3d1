"""Vocabulary shortlists: search scores only the target tokens a batch can plausibly use.

Per batch, the candidates are the special tokens, the ``frequent`` most frequent target
tokens, the ``translations`` likeliest translations (data/lexicon.py) of every source
token of the batch, the source tokens themselves where source and target share a
vocabulary (names, numbers, copying), and any forced prefix's tokens; the set is filled
up with the next most frequent tokens to a multiple of ``ROUND_TO`` (fewer distinct
shapes for the kernels; the candidate top-k's chunks divide it). The output projection,
the log-softmax and the choice of candidates then run over that set (Marian's
``--shortlist``, CTranslate2's vocabulary map do the same).

Search itself does not know: ``Shortlisted`` is the decoder contract over the subset, in
which a token's id is its position in the candidates. The specials have the lowest ids,
and the candidates are sorted, so BOS, EOS and PAD keep their ids in the subset and the
token rules work unchanged; prefixes go in mapped to positions, and outputs come back
mapped to vocabulary ids.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch

from seq2seq.data.lexicon import Lexicon
from seq2seq.data.tokenizer import EOS_ID, PAD_ID
from seq2seq.search.hypothesis import Hypothesis

ROUND_TO = 64
SPECIALS = EOS_ID + 1  # PAD, UNK, BOS, EOS: ids 0-3


@dataclass(frozen=True)
class Shortlist:
    """A run's lexical table with the sizes one search uses. ``copy_source``: the batch's
    own source ids are candidates (source and target share a vocabulary)."""

    lexicon: Lexicon
    vocab: int  # target vocabulary size
    translations: int
    frequent: int
    copy_source: bool

    def candidates(self, src: torch.Tensor, prefix: torch.Tensor | None = None) -> torch.Tensor:
        """src (B, S) source ids (PAD after EOS); prefix (B, P) target ids or None ->
        the sorted target ids (V',) to score, V' a multiple of ROUND_TO (or V)."""
        src = src.cpu()
        chosen = torch.zeros(self.vocab, dtype=torch.bool)
        chosen[:SPECIALS] = True
        chosen[self.lexicon.frequent[: self.frequent]] = True
        sources = src.unique()
        sources = sources[sources < self.lexicon.best.size(0)]
        best = self.lexicon.best[sources, : self.translations].reshape(-1)
        chosen[best[best >= 0]] = True
        if self.copy_source:
            chosen[sources[sources < self.vocab]] = True
        if prefix is not None:
            chosen[prefix.cpu().reshape(-1)] = True
        return self._rounded(chosen).nonzero().squeeze(1)

    def _rounded(self, chosen: torch.Tensor) -> torch.Tensor:
        """``chosen`` (V,) with the next most frequent ids (then the lowest) added until
        its count is a multiple of ROUND_TO or the whole vocabulary."""
        count = int(chosen.sum())
        missing = min(-(-count // ROUND_TO) * ROUND_TO, self.vocab) - count
        if missing <= 0:
            return chosen
        frequent = self.lexicon.frequent
        more = frequent[~chosen[frequent]][:missing]
        chosen[more] = True
        missing -= len(more)
        if missing > 0:
            chosen[(~chosen).nonzero().squeeze(1)[:missing]] = True
        return chosen


class Shortlisted:
    """The decoder contract of ``model`` over target ids ``ids`` (V',) only: step
    returns log-probs (R, V') normalised over them, and takes tokens as positions in
    ``ids``. Encoding, states and reordering are the model's own."""

    def __init__(self, model: Any, ids: torch.Tensor) -> None:
        self.model = model
        self.ids = ids
        self.output = model.output_rows(ids)  # the output layer's rows, gathered once

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> Any:
        return self.model.encode(src, src_lengths)

    def init_state(self, encoded: Any) -> Any:
        return self.model.init_state(encoded)

    def step(self, tokens: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any, torch.Tensor]:
        """tokens (R,) positions -> log-probs (R, V'), next state, attention (R, S)."""
        result: tuple[torch.Tensor, Any, torch.Tensor] = self.model.step(
            self.ids[tokens], state, self.output
        )
        return result

    def reorder(
        self,
        state: Any,
        index: torch.Tensor,
        same_sources: bool = False,
        sources: torch.Tensor | None = None,
    ) -> Any:
        return self.model.reorder(state, index, same_sources, sources)

    def positions(self, tokens: torch.Tensor) -> torch.Tensor:
        """Vocabulary ids (any shape, all among the candidates, PAD allowed) -> their
        positions in ``ids``."""
        inverse = torch.full((int(self.ids.max()) + 1,), -1, dtype=torch.long)
        inverse[self.ids.cpu()] = torch.arange(len(self.ids))
        found = inverse[tokens.cpu()]
        assert PAD_ID == 0 and bool((found >= 0).all()), "every prefix token is a candidate"
        return found.to(tokens.device)

    def vocabulary_ids(self, hyps: list[list[Hypothesis]]) -> list[list[Hypothesis]]:
        """Hypotheses over positions -> the same over vocabulary ids."""
        ids = self.ids.tolist()
        return [[replace(h, tokens=[ids[t] for t in h.tokens]) for h in sent] for sent in hyps]
