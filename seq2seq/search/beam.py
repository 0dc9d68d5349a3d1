"""Batched beam search over the decoder contract.

All sentences of a batch advance together, K hypotheses each, as one (B*K)-row decoder
state. Each step takes the 2K best continuations per sentence: those ending in EOS among
the first K become finished hypotheses; the first K that do not end in EOS form the next
beam (there are always K: each beam row yields at most one EOS). A sentence leaves the
batch as soon as it has ``nbest`` finished hypotheses that no live one can beat, or at its
length limit, so the rows left to compute shrink as sentences finish.

Finished hypotheses are ranked by log-prob / length_norm(length) + coverage penalty
(see ``hypothesis.py``); the token rules (search/rules.py: minimum length, blocked
repeated n-grams, a forced target prefix, the grammar, the length limit) act on the
log-probs before the top-2K choice, as in every mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from seq2seq.kernels.candidates import top_candidates
from seq2seq.search.constraint import Constraint, ConstraintState, select
from seq2seq.search.contract import Decodable
from seq2seq.search.hypothesis import Hypothesis, coverage_penalty, length_norm
from seq2seq.search.lexical import RequiredPhrases
from seq2seq.search.rules import TokenRules


@dataclass(frozen=True)
class BeamOptions:
    beam_size: int
    nbest: int = 1
    length_norm: str = "gnmt"  # gnmt | average | none
    length_penalty: float = 0.0  # GNMT alpha (>= 0)
    coverage_penalty: float = 0.0  # GNMT beta (>= 0)
    min_len: int = 0  # EOS is forbidden before this many tokens
    no_repeat_ngram: int = 0  # forbid repeating any n-gram of this size (0 = off)


@dataclass
class _Beams:
    """Live hypotheses of the sentences still searching (n sentences, K beams each).

    sent (n,) original sentence index; limit (n,) max tokens before EOS; scores (n, K)
    summed log-probs; seqs (n*K, t) tokens; token_scores (n*K, t); attn (n*K, t, S) or
    None; coverage (n*K, S) attention summed over steps, or None; prefix (n, P) or None.
    """

    sent: torch.Tensor
    limit: torch.Tensor
    scores: torch.Tensor
    seqs: torch.Tensor
    token_scores: torch.Tensor
    attn: torch.Tensor | None
    coverage: torch.Tensor | None
    prefix: torch.Tensor | None
    rules: ConstraintState | None = None  # the constraint's state per row

    def keep(self, rows: torch.Tensor, sentences: torch.Tensor | None = None) -> None:
        """Keep hypothesis rows (n'*K,) in that order; ``sentences`` (n',) when some leave."""
        self.seqs = self.seqs.index_select(0, rows)
        self.token_scores = self.token_scores.index_select(0, rows)
        if self.attn is not None:
            self.attn = self.attn.index_select(0, rows)
        if self.coverage is not None:
            self.coverage = self.coverage.index_select(0, rows)
        self.rules = select(self.rules, rows)
        if sentences is not None:
            self.sent = self.sent.index_select(0, sentences)
            self.limit = self.limit.index_select(0, sentences)
            self.scores = self.scores.index_select(0, sentences)
            if self.prefix is not None:
                self.prefix = self.prefix.index_select(0, sentences)


@torch.no_grad()
def beam_search(
    model: Decodable,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    max_len: torch.Tensor,
    bos: int,
    eos: int,
    *,
    beam_size: int,
    length_penalty: float = 0.0,
    nbest: int = 1,
    return_attention: bool = False,
    options: BeamOptions | None = None,
    prefix: torch.Tensor | None = None,
    pad: int = 0,
    constraint: Constraint | None = None,
) -> list[list[Hypothesis]]:
    """src (B, S); max_len (B,) tokens before EOS; prefix (B, P) forced first target
    tokens, ``pad`` where a sentence's prefix ends. ``options`` overrides the keyword
    shortcuts (beam_size, length_penalty, nbest); ``constraint``: a grammar every
    hypothesis follows. Returns, per sentence in input order, up to ``nbest`` hypotheses
    sorted best first."""
    opt = options or BeamOptions(beam_size=beam_size, nbest=nbest, length_penalty=length_penalty)
    rules = TokenRules(bos, eos, pad, opt.min_len, opt.no_repeat_ngram, constraint)
    phrases = constraint if isinstance(constraint, RequiredPhrases) else None
    batch, k, device = src.size(0), opt.beam_size, src.device
    encoded = model.encode(src, src_lengths)
    everyone = torch.arange(batch, device=device)
    expand = everyone.repeat_interleave(k)
    mask = encoded.mask.index_select(0, expand)  # (B*K, S): for the coverage penalty
    beams = _first_beams(src, max_len, k, prefix, rules, opt, return_attention)
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    # the first step has one hypothesis per sentence (its K rows would be the same):
    # it runs on B rows, and its log-probs and state are copied to the K rows after it
    state = model.init_state(encoded)
    tokens = torch.full((batch,), bos, dtype=torch.long, device=device)
    for t in range(int(beams.limit.max()) + 1):
        log_probs, state, attn = model.step(tokens, state)
        if t == 0:
            log_probs, attn = log_probs.index_select(0, expand), attn.index_select(0, expand)
        _constrain(log_probs, beams, t, rules, k)
        vocab = log_probs.size(-1)
        top_scores, top_index = top_candidates(log_probs, beams.scores, 2 * k)  # (n, 2K)
        top_beam, top_token = top_index // vocab, top_index % vocab
        is_eos = (top_token == eos) & top_scores.isfinite()
        _finish(beams, finished, is_eos[:, :k], top_scores, top_beam, attn, mask, opt, phrases)
        top = (top_scores, top_beam, top_token)
        chosen = _choose(log_probs, beams, top, is_eos, phrases)
        rows, tokens = _advance(beams, *chosen, attn, rules)
        if t == 0:  # from one row per sentence to K, grouped K per source
            state = model.reorder(state, rows // k, sources=everyone)
        else:
            state = model.reorder(state, rows, same_sources=True)

        done = _done(beams, finished, t, opt)
        if bool(done.all()):
            break
        if bool(done.any()):
            tokens, state, mask = _leave(model, beams, ~done, tokens, state, mask)
    return [sorted(hyps, key=lambda h: -h.score)[: opt.nbest] for hyps in finished]


def _leave(
    model: Decodable,
    beams: _Beams,
    alive: torch.Tensor,
    tokens: torch.Tensor,
    state: Any,
    mask: torch.Tensor,
) -> tuple[torch.Tensor, Any, torch.Tensor]:
    """The sentences that are done leave the batch: only those ``alive`` (n,) go on, with
    their K rows of ``beams``, tokens (n*K,), decoder state and source mask (n*K, S)."""
    k = beams.scores.size(1)
    sentences = alive.nonzero().squeeze(1)
    rows = (sentences.unsqueeze(1) * k + torch.arange(k, device=tokens.device)).view(-1)
    beams.keep(rows, sentences=sentences)
    state = model.reorder(state, rows, sources=sentences)
    return tokens.index_select(0, rows), state, mask.index_select(0, rows)


def _first_beams(
    src: torch.Tensor,
    max_len: torch.Tensor,
    k: int,
    prefix: torch.Tensor | None,
    rules: TokenRules,
    opt: BeamOptions,
    return_attention: bool,
) -> _Beams:
    """K empty hypotheses per sentence of src (B, S), only the first of them live."""
    batch, device = src.size(0), src.device
    everyone = torch.arange(batch, device=device)
    expand = everyone.repeat_interleave(k)
    scores = torch.full((batch, k), float("-inf"), device=device)
    scores[:, 0] = 0.0  # at the start all K rows are the same: expand only one
    beams = _Beams(
        sent=everyone,
        limit=max_len.to(device),
        scores=scores,
        seqs=torch.zeros(batch * k, 0, dtype=torch.long, device=device),
        token_scores=torch.zeros(batch * k, 0, device=device),
        attn=torch.zeros(batch * k, 0, src.size(1), device=device) if return_attention else None,
        coverage=torch.zeros(batch * k, src.size(1), device=device)
        if opt.coverage_penalty
        else None,
        prefix=None if prefix is None else prefix.to(device),
        rules=rules.start(src, expand),
    )
    return beams


def _choose(
    log_probs: torch.Tensor,
    beams: _Beams,
    top: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    is_eos: torch.Tensor,
    phrases: RequiredPhrases | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The next beam's (scores, beam, token), each (n, K): the best non-EOS candidates,
    or with required phrases, dynamic beam allocation's choice (lexical.py)."""
    if phrases is None:
        return _next_beam(*top, is_eos, beams.scores.size(1))
    return phrases.allocate(log_probs, beams.scores, beams.rules or {}, top)


def _next_beam(
    top_scores: torch.Tensor,
    top_beam: torch.Tensor,
    top_token: torch.Tensor,
    is_eos: torch.Tensor,
    k: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """From the (n, 2K) best candidates, per sentence the first K that do not end in EOS
    (a stable sort keeps their rank): their (scores, beam, token), each (n, K)."""
    arange = torch.arange(2 * k, device=top_scores.device)
    order = (is_eos.long() * 2 * k + arange).argsort(dim=1)[:, :k]
    return top_scores.gather(1, order), top_beam.gather(1, order), top_token.gather(1, order)


def _advance(
    beams: _Beams,
    next_scores: torch.Tensor,
    next_beam: torch.Tensor,
    next_token: torch.Tensor,
    attn: torch.Tensor,
    rules: TokenRules,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Extend hypotheses next_beam (n, K) of each sentence by next_token (n, K), to
    summed log-probs next_scores (n, K). Returns the hypothesis rows they extend (n*K,)
    and their tokens (n*K,)."""
    n, k = beams.scores.shape
    device = next_scores.device
    rows = (torch.arange(n, device=device).unsqueeze(1) * k + next_beam).view(-1)
    step_scores = (next_scores - beams.scores.gather(1, next_beam)).view(-1, 1)
    tokens = next_token.view(-1)
    beams.keep(rows)
    beams.rules = rules.advance(beams.rules, tokens)
    beams.seqs = torch.cat([beams.seqs, tokens.unsqueeze(1)], dim=1)
    beams.token_scores = torch.cat([beams.token_scores, step_scores], dim=1)
    if beams.attn is not None or beams.coverage is not None:
        step_attn = attn.float().index_select(0, rows)
        if beams.attn is not None:
            beams.attn = torch.cat([beams.attn, step_attn.unsqueeze(1)], dim=1)
        if beams.coverage is not None:
            beams.coverage = beams.coverage + step_attn
    beams.scores = next_scores
    return rows, tokens


def _constrain(log_probs: torch.Tensor, beams: _Beams, t: int, rules: TokenRules, k: int) -> None:
    """The token rules (search/rules.py) on the (n*K, V) log-probs of step t; the
    sentences' limits and prefixes repeated for their K rows."""
    prefix = None if beams.prefix is None else beams.prefix.repeat_interleave(k, dim=0)
    at_limit = (beams.limit <= t).repeat_interleave(k)
    rules.apply(log_probs, t, at_limit, lambda: beams.seqs, prefix, beams.rules)


def _finish(
    beams: _Beams,
    finished: list[list[Hypothesis]],
    eos_mask: torch.Tensor,
    top_scores: torch.Tensor,
    top_beam: torch.Tensor,
    attn: torch.Tensor,
    mask: torch.Tensor,
    opt: BeamOptions,
    phrases: RequiredPhrases | None = None,
) -> None:
    """Turn EOS candidates (eos_mask (n, K) over the first K ranks) into hypotheses; one
    that misses a required phrase (``phrases``: it was forced to end at its length limit)
    scores -inf, below every one that has them all. Gathered for all of a step's
    candidates at once, then read as plain lists: one tensor read per step, not several
    per hypothesis."""
    found = eos_mask.nonzero()
    if found.size(0) == 0:
        return
    sentence, rank = found[:, 0], found[:, 1]
    beam = top_beam[sentence, rank]
    rows = sentence * opt.beam_size + beam
    # in float64, as Python floats were: rankings and scores as a hypothesis at a time
    totals = top_scores[sentence, rank].double()
    last = totals - beams.scores[sentence, beam].double()  # the EOS token's own log-prob
    # every live hypothesis holds t tokens at step t: one length for all of them
    norm = float(length_norm(beams.seqs.size(1) + 1, opt.length_norm, opt.length_penalty))
    scores = totals / norm
    if beams.coverage is not None:
        coverage = beams.coverage.index_select(0, rows) + attn.float().index_select(0, rows)
        penalty = coverage_penalty(coverage, mask.index_select(0, rows), opt.coverage_penalty)
        scores = scores + penalty.double()
    if phrases is not None and beams.rules is not None:
        unmet = phrases.unmet(beams.rules).index_select(0, rows)
        scores = scores.masked_fill(unmet, float("-inf"))
    seqs = beams.seqs.index_select(0, rows).tolist()
    token_scores = beams.token_scores.index_select(0, rows).tolist()
    owners = beams.sent.index_select(0, sentence).tolist()
    for i, (owner, score, eos_score) in enumerate(
        zip(owners, scores.tolist(), last.tolist(), strict=True)
    ):
        attention = None
        if beams.attn is not None:
            row = int(rows[i])
            attention = torch.cat([beams.attn[row], attn[row].float().unsqueeze(0)]).cpu()
        hyp = Hypothesis(seqs[i], score, [*token_scores[i], eos_score], attention)
        finished[owner].append(hyp)


def _done(
    beams: _Beams, finished: list[list[Hypothesis]], t: int, opt: BeamOptions
) -> torch.Tensor:
    """(n,) True where a sentence is at its limit or its nbest-th finished hypothesis
    already beats the best score any live hypothesis could still reach.

    Log-probs only fall as tokens are added, so a live hypothesis ends with a summed
    log-prob <= its current one (< 0); the length norm is non-decreasing, so dividing by
    the norm at the longest allowed length bounds its final score from above. The coverage
    penalty is <= 0, so it never raises that bound.
    """
    best_live = beams.scores.max(dim=1).values  # (n,)
    bound = best_live / length_norm(beams.limit + 1, opt.length_norm, opt.length_penalty)
    done = (beams.limit <= t).tolist()
    # plain lists: one conversion per step, not one tensor read per sentence
    for b, (sent, reach) in enumerate(zip(beams.sent.tolist(), bound.tolist(), strict=True)):
        hyps = finished[sent]
        if not done[b] and len(hyps) >= opt.nbest:
            kth = sorted((h.score for h in hyps), reverse=True)[opt.nbest - 1]
            done[b] = kth >= reach
    return torch.tensor(done, dtype=torch.bool, device=beams.scores.device)
