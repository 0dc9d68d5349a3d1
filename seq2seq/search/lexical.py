"""Terminology constraints: required target phrases, by dynamic beam allocation.

Post & Vilar (2018), "Fast Lexically Constrained Decoding with Dynamic Beam Allocation".
Each sentence may require a few phrases (token-id sequences) in its output. A search row
tracks which phrases it has met and how far into one it is; its *progress* is the number
of required tokens it has produced so far (met phrases' lengths plus the depth into the
one under way). At every step of beam search:

1. EOS is forbidden to rows that have not met every phrase (``allowed``), so a finished
   hypothesis has them all, except one forced to end at its length limit (its score is
   then -inf, so it ranks below every hypothesis that meets them: ``unmet``); and right
   after a phrase, a piece that would continue its last word ("kick" + "ing") is
   forbidden where the vocabulary marks word starts (``continuation``), so a phrase
   stands as whole words;
2. the candidates are the usual 2K best continuations, each row's single best token, and
   each row's tokens that make progress (the next token of the phrase under way, or the
   first token of each phrase not met yet), without duplicates;
3. the K beam slots are split into banks by progress (0 .. T, T the sentence's required
   tokens): K // (T+1) each, the remainder to the most advanced banks; a bank with fewer
   candidates than slots hands the rest down to the next bank below. Within a bank the
   best scores win.

The most advanced bank always holds a slot, and its best row always has a candidate one
token further, so some hypothesis completes every phrase within T steps of the start:
that is why the length limit of a constrained sentence is raised by T (search_batch).
A phrase is matched as a token sequence (its encoding on its own, as the target tokenizer
gives it); where two unmet phrases start with the same token, the first listed is taken
up. A search row's state is a dict of tensors (the ``Constraint`` protocol), so beam
search moves it with the decoder state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from seq2seq.search.constraint import ConstraintState, select

Phrases = Sequence[Sequence[int]]  # one sentence's required phrases, as token ids


class RequiredPhrases:
    """The required phrases of one batch: ``phrases[b]`` lists sentence b's (may be empty).

    ``vocab``: the target vocabulary size; ``eos``: its EOS id; ``continuation`` (V,) bool:
    the pieces that continue a word (sentencepiece's without the "▁" word start), or None.
    """

    def __init__(
        self,
        phrases: Sequence[Phrases],
        vocab: int,
        eos: int,
        continuation: torch.Tensor | None = None,
    ) -> None:
        count = max((len(p) for p in phrases), default=0)
        longest = max((len(tokens) for p in phrases for tokens in p), default=1)
        table = torch.full((len(phrases), max(count, 1), longest), -1, dtype=torch.long)
        for b, sentence in enumerate(phrases):
            for c, tokens in enumerate(sentence):
                if not tokens:
                    raise ValueError(f"sentence {b + 1}: required phrase {c + 1} is empty")
                table[b, c, : len(tokens)] = torch.tensor(list(tokens))
        self.table = table  # (B, C, L) token ids, -1 past a phrase's end
        self.lengths = (table >= 0).sum(-1)  # (B, C); 0 where a sentence has fewer phrases
        self.total = self.lengths.sum(-1)  # (B,) required tokens per sentence
        self.vocab = vocab
        self.eos = eos
        self.continuation = continuation

    def to(self, device: torch.device) -> RequiredPhrases:
        self.table = self.table.to(device)
        self.lengths = self.lengths.to(device)
        self.total = self.total.to(device)
        return self

    # ---- the Constraint protocol ---------------------------------------------------
    def start(self, src: torch.Tensor, rows: torch.Tensor) -> ConstraintState:
        """Nothing met yet (a sentence's missing phrase slots count as met)."""
        rows = rows.to(self.table.device)
        return {
            "sent": rows,
            "met": self.lengths.index_select(0, rows) == 0,
            "phrase": torch.full_like(rows, -1),
            "depth": torch.zeros_like(rows),
            "ended": torch.zeros_like(rows, dtype=torch.bool),  # the last token ended a phrase
        }

    def allowed(self, state: ConstraintState) -> torch.Tensor:
        """(N, V): every token, except EOS for a row that has not met every phrase, and
        a word's continuation right after a phrase."""
        allowed = torch.ones(state["sent"].size(0), self.vocab, dtype=torch.bool)
        allowed[:, self.eos] = state["met"].all(1).cpu()
        if self.continuation is not None:
            ended = state["ended"].cpu()
            allowed[ended] &= ~self.continuation.cpu()
        return allowed

    def advance(self, state: ConstraintState, tokens: torch.Tensor) -> ConstraintState:
        """Each row (N,) after emitting ``tokens`` (N,): continue the phrase under way,
        complete it, or drop it (a wrong token) and perhaps take up another."""
        sent, met = state["sent"], state["met"].clone()
        phrase, depth = state["phrase"], state["depth"]
        table = self.table.index_select(0, sent)  # (N, C, L)
        lengths = self.lengths.index_select(0, sent)  # (N, C)
        rows = torch.arange(sent.size(0), device=sent.device)
        under_way = phrase >= 0
        current = phrase.clamp(min=0)
        expected = table[rows, current, depth.clamp(max=table.size(2) - 1)]
        goes_on = under_way & (tokens == expected)
        depth = torch.where(goes_on, depth + 1, torch.zeros_like(depth))
        phrase = torch.where(goes_on, phrase, torch.full_like(phrase, -1))
        complete = goes_on & (depth == lengths[rows, current])
        met[rows[complete], current[complete]] = True
        phrase = torch.where(complete, torch.full_like(phrase, -1), phrase)
        depth = torch.where(complete, torch.zeros_like(depth), depth)
        # a token that continues nothing may start a phrase not met yet
        starts = (~goes_on).unsqueeze(1) & ~met & (table[:, :, 0] == tokens.unsqueeze(1))
        first = starts.long().argmax(1)  # the first listed phrase it starts
        starting = starts.any(1)
        single = starting & (lengths[rows, first] == 1)
        met[rows[single], first[single]] = True
        longer = starting & ~single
        phrase = torch.where(longer, first, phrase)
        depth = torch.where(longer, torch.ones_like(depth), depth)
        ended = complete | single
        return {"sent": sent, "met": met, "phrase": phrase, "depth": depth, "ended": ended}

    # ---- what beam search asks besides -----------------------------------------------
    def progress(self, state: ConstraintState) -> torch.Tensor:
        """(N,) required tokens produced: met phrases' lengths + depth into the current."""
        lengths = self.lengths.index_select(0, state["sent"])
        return (lengths * state["met"]).sum(1) + state["depth"]

    def unmet(self, state: ConstraintState) -> torch.Tensor:
        """(N,) True where a row has not met every phrase."""
        return ~state["met"].all(1)

    def allocate(
        self,
        log_probs: torch.Tensor,
        scores: torch.Tensor,
        state: ConstraintState,
        top: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The next beam: log_probs (n*K, V) masked by the token rules; scores (n, K);
        state of the n*K rows; top = the (n, 2K) best candidates' (scores, beam, token).
        Returns the K chosen non-EOS continuations per sentence as (scores, beam, token),
        each (n, K); a slot no candidate fills has score -inf."""
        n, k = scores.shape
        cand_scores, cand_beam, cand_token = self._candidates(log_probs, scores, state, top)
        rows = (torch.arange(n, device=scores.device).unsqueeze(1) * k + cand_beam).view(-1)
        after = self.advance(select(state, rows) or {}, cand_token.view(-1))
        bank = self.progress(after).view(n, -1)  # (n, W) progress after each candidate
        order = cand_scores.argsort(dim=1, descending=True, stable=True)
        cand_scores, cand_beam = cand_scores.gather(1, order), cand_beam.gather(1, order)
        cand_token, bank = cand_token.gather(1, order), bank.gather(1, order)
        usable = cand_scores.isfinite()
        sent_total = self.total.index_select(0, state["sent"].view(n, k)[:, 0])
        taken = _taken(bank, usable, _bank_sizes(sent_total, k, int(self.total.max()) + 1))
        # rank among its bank's candidates, best first
        banks = torch.nn.functional.one_hot(bank, taken.size(1)) * usable.unsqueeze(-1)
        rank = (banks.cumsum(1) - 1).gather(2, bank.unsqueeze(-1)).squeeze(-1)
        chosen = usable & (rank < taken.gather(1, bank))
        pick = (~chosen).long().argsort(dim=1, stable=True)[:, :k]  # chosen, best first
        next_scores = cand_scores.gather(1, pick).masked_fill(~chosen.gather(1, pick), -torch.inf)
        return next_scores, cand_beam.gather(1, pick), cand_token.gather(1, pick)

    def _candidates(
        self,
        log_probs: torch.Tensor,
        scores: torch.Tensor,
        state: ConstraintState,
        top: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(n, W) scores, beam, token of the distinct non-EOS candidates: the 2K best, each
        row's best, and each row's tokens that make progress; -inf where not usable."""
        n, k = scores.shape
        device = scores.device
        beams = torch.arange(k, device=device)
        best_two = log_probs.topk(2, dim=-1)  # (n*K, 2): the best non-EOS is one of them
        second = best_two.indices[:, 0] == self.eos
        best_token = torch.where(second, best_two.indices[:, 1], best_two.indices[:, 0])
        best_lp = torch.where(second, best_two.values[:, 1], best_two.values[:, 0])
        wanted, usable = self._wanted(state)  # (n*K, C)
        wanted_lp = log_probs.gather(1, wanted.clamp(min=0)).masked_fill(~usable, -torch.inf)
        c = wanted.size(1)
        top_scores, top_beam, top_token = top
        cand_scores = torch.cat(
            [
                top_scores,
                scores + best_lp.view(n, k).to(scores.dtype),
                (scores.unsqueeze(-1) + wanted_lp.view(n, k, c).to(scores.dtype)).view(n, -1),
            ],
            dim=1,
        )
        cand_beam = torch.cat(
            [top_beam, beams.expand(n, k), beams.repeat_interleave(c).expand(n, k * c)], dim=1
        )
        cand_token = torch.cat(
            [top_token, best_token.view(n, k), wanted.clamp(min=0).view(n, k * c)], dim=1
        )
        cand_scores = cand_scores.masked_fill(cand_token == self.eos, -torch.inf)
        # a (beam, token) pair listed twice keeps one entry (unusable ones get keys of
        # their own, so that they never stand in for a usable twin)
        key = cand_beam * self.vocab + cand_token
        spare = k * self.vocab + torch.arange(key.size(1), device=device)
        key = torch.where(cand_scores.isfinite(), key, spare)
        sorted_key, where = key.sort(dim=1, stable=True)
        repeat = torch.zeros_like(sorted_key, dtype=torch.bool)
        repeat[:, 1:] = sorted_key[:, 1:] == sorted_key[:, :-1]
        repeated = torch.zeros_like(repeat).scatter(1, where, repeat)
        return cand_scores.masked_fill(repeated, -torch.inf), cand_beam, cand_token

    def _wanted(self, state: ConstraintState) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, C) per row and phrase, the token that would make progress, and whether
        there is one: the next token of the phrase under way, or else the first token
        of each phrase not met."""
        table = self.table.index_select(0, state["sent"])  # (N, C, L)
        phrase, depth = state["phrase"], state["depth"]
        under_way = (phrase >= 0).unsqueeze(1)
        columns = torch.arange(table.size(1), device=table.device).unsqueeze(0)
        at = torch.where(columns == phrase.unsqueeze(1), depth.unsqueeze(1), 0)
        tokens = table.gather(2, at.clamp(max=table.size(2) - 1).unsqueeze(-1)).squeeze(-1)
        usable = torch.where(under_way, columns == phrase.unsqueeze(1), ~state["met"])
        return tokens, usable & (tokens >= 0)


@dataclass(frozen=True)
class Requirements:
    """The required phrases of every sentence of a decoding job (``phrases[i]`` for
    sentence i, perhaps none); ``vocab`` and ``eos`` of the target side."""

    phrases: Sequence[Phrases]
    vocab: int
    eos: int
    continuation: torch.Tensor | None = None  # (V,) bool, see RequiredPhrases

    def for_batch(self, indices: Sequence[int]) -> RequiredPhrases | None:
        """The batch of sentences ``indices``'s constraint; None when none requires any."""
        chosen = [self.phrases[i] for i in indices]
        if not any(chosen):
            return None
        return RequiredPhrases(chosen, self.vocab, self.eos, self.continuation)


def word_continuations(pieces: Sequence[str]) -> torch.Tensor | None:
    """(V,) bool: the pieces that continue a word, for a sentencepiece vocabulary (where
    "▁" starts a word: a piece without it that begins with a letter or digit); None for a
    vocabulary without word starts (exact symbols, characters)."""
    if not any(piece.startswith("▁") for piece in pieces):
        return None
    return torch.tensor([not p.startswith("▁") and p[:1].isalnum() for p in pieces])


def _bank_sizes(total: torch.Tensor, k: int, banks: int) -> torch.Tensor:
    """(n, banks) slots per progress bank: K // (T+1) each of banks 0..T, the remainder
    one each to the most advanced banks; total (n,) is T per sentence."""
    count = total + 1  # banks in use per sentence
    base = (k // count).unsqueeze(1)
    extra = (k % count).unsqueeze(1)
    index = torch.arange(banks, device=total.device).unsqueeze(0)
    used = index < count.unsqueeze(1)
    return torch.where(used, base + (index >= count.unsqueeze(1) - extra).long(), 0)


def _taken(bank: torch.Tensor, usable: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
    """(n, banks) slots each bank fills: its own size plus what the banks above could not
    fill, at most the candidates it has. bank (n, W) progress; usable (n, W) bool."""
    have = torch.zeros_like(sizes).scatter_add(1, bank, usable.long())
    taken = torch.zeros_like(sizes)
    spare = torch.zeros_like(sizes[:, 0])
    for b in range(sizes.size(1) - 1, -1, -1):
        offered = sizes[:, b] + spare
        taken[:, b] = torch.minimum(offered, have[:, b])
        spare = offered - taken[:, b]
    return taken
