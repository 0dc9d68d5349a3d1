"""Vocabulary shortlists: search scores only the target tokens a sentence can plausibly use.

A sentence's candidates are the special tokens, the ``frequent`` most frequent target
tokens, the ``translations`` likeliest translations (data/lexicon.py) of each of its
source tokens, its source tokens themselves where source and target share a vocabulary
(names, numbers, copying), and its forced prefix's tokens. A batch computes the output
projection over the union of its sentences' candidates (filled up with the next most
frequent tokens to a multiple of ``ROUND_TO``: fewer distinct shapes for the kernels,
and the candidate top-k's chunks divide it), and each sentence's log-softmax runs over
its own candidates only: a sentence's output does not depend on the sentences batched
with it (what a server batching requests needs). Marian's ``--shortlist`` and
CTranslate2's vocabulary map restrict the output layer the same way.

Search itself does not know: ``Shortlisted`` is the decoder contract over the union, in
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
from seq2seq.model.output_rows import positions_of
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

    def candidates(self, src: torch.Tensor, prefix: torch.Tensor | None = None) -> Candidates:
        """src (B, S) source ids (PAD after EOS); prefix (B, P) target ids or None -> the
        union's sorted ids (V',), V' a multiple of ROUND_TO (or V), and which of them
        each sentence may use (B, V')."""
        src = src.cpu()
        shared = torch.zeros(self.vocab, dtype=torch.bool)
        shared[:SPECIALS] = True
        shared[self.lexicon.frequent[: self.frequent]] = True
        own = shared.repeat(src.size(0), 1)  # (B, V)
        known = src.clamp_max(self.lexicon.best.size(0) - 1)
        best = self.lexicon.best[known, : self.translations].flatten(1)  # (B, S * k)
        rows = torch.arange(src.size(0)).unsqueeze(1)
        own[rows.expand_as(best)[best >= 0], best[best >= 0]] = True
        if self.copy_source:
            inside = src < self.vocab
            own[rows.expand_as(src)[inside], src[inside]] = True
        if prefix is not None:
            prefix = prefix.cpu()
            own[rows.expand_as(prefix), prefix] = True
        ids = self._rounded(own.any(0)).nonzero().squeeze(1)
        return Candidates(ids, own[:, ids])

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


@dataclass(frozen=True)
class Candidates:
    """ids (V',) the batch's sorted candidate ids; allowed (B, V') each sentence's own."""

    ids: torch.Tensor
    allowed: torch.Tensor

    def to(self, device: torch.device) -> Candidates:
        return Candidates(self.ids.to(device), self.allowed.to(device))


@dataclass(frozen=True)
class ShortlistState:
    """The model's state and, per hypothesis row, what its log-probs over the union get
    added (R, V'): 0 on its sentence's own candidates, -inf on the others."""

    inner: Any
    penalty: torch.Tensor


class Shortlisted:
    """The decoder contract of ``model`` over the ``candidates``' ids (V',) only: step
    takes tokens as positions in them and returns log-probs (R, V'), each row's
    normalised over its own sentence's candidates (-inf elsewhere). Encoding is the
    model's own; states carry each row's candidates along through reordering."""

    def __init__(self, model: Any, candidates: Candidates) -> None:
        self.model = model
        self.ids = candidates.ids
        self.allowed = candidates.allowed
        self.output = model.output_rows(self.ids)  # the output layer's rows, gathered once

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> Any:
        return self.model.encode(src, src_lengths)

    def init_state(self, encoded: Any) -> ShortlistState:
        """The model's state for the whole batch the candidates were chosen for."""
        if encoded.mask.size(0) != self.allowed.size(0):
            raise ValueError(
                f"a shortlist's state covers its batch of {self.allowed.size(0)} sources, "
                f"not {encoded.mask.size(0)} (rows joining in flight are not shortlisted)"
            )
        penalty = torch.zeros(self.allowed.shape, device=self.allowed.device)
        return ShortlistState(
            self.model.init_state(encoded), penalty.masked_fill_(~self.allowed, -torch.inf)
        )

    def step(
        self, tokens: torch.Tensor, state: ShortlistState
    ) -> tuple[torch.Tensor, ShortlistState, torch.Tensor]:
        """tokens (R,) positions -> log-probs (R, V'), next state, attention (R, S)."""
        # the model normalises each row over its own candidates: the penalty (-inf on the
        # others) is added to its logits before its one log_softmax, inside the ONNX step
        # graph with that engine (masked_fill_ and logsumexp took 5x as long as an added
        # -inf: 64 rows x 1,700 candidates, 0.61 against 0.11 ms)
        ids = self.ids[tokens]
        log_probs, inner, attn = self.model.step(ids, state.inner, self.output, state.penalty)
        return log_probs, ShortlistState(inner, state.penalty), attn

    def reorder(
        self,
        state: ShortlistState,
        index: torch.Tensor,
        same_sources: bool = False,
        sources: torch.Tensor | None = None,
    ) -> ShortlistState:
        inner = self.model.reorder(state.inner, index, same_sources, sources)
        # a beam's reorder keeps each row within its sentence, whose rows share a penalty
        penalty = state.penalty if same_sources else state.penalty.index_select(0, index)
        return ShortlistState(inner, penalty)

    def join(self, state: ShortlistState, other: ShortlistState) -> ShortlistState:
        """``state``'s rows, then ``other``'s: rows of this one batch (see ``init_state``)."""
        inner = self.model.join(state.inner, other.inner)
        return ShortlistState(inner, torch.cat([state.penalty, other.penalty]))

    def positions(self, tokens: torch.Tensor) -> torch.Tensor:
        """Vocabulary ids (any shape, all among the candidates, PAD allowed) -> their
        positions in ``ids``."""
        found = positions_of(self.ids.cpu(), int(self.ids.max()) + 1)[tokens.cpu()]
        assert PAD_ID == 0 and bool((found >= 0).all()), "every prefix token is a candidate"
        return found.to(tokens.device)

    def vocabulary_ids(self, hyps: list[list[Hypothesis]]) -> list[list[Hypothesis]]:
        """Hypotheses over positions -> the same over vocabulary ids."""
        ids = self.ids.tolist()
        return [[replace(h, tokens=[ids[t] for t in h.tokens]) for h in sent] for sent in hyps]
