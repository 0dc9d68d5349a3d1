"""Batched beam search over the decoder contract.

All sentences of a batch advance together, K hypotheses each, as one (B*K)-row decoder
state. Each step takes the 2K best continuations per sentence: those ending in EOS among
the first K become finished hypotheses; the first K that do not end in EOS form the next
beam (there are always K: each beam row yields at most one EOS). A sentence leaves the
batch as soon as it has ``nbest`` finished hypotheses that no live one can beat, or at its
length limit, so the rows left to compute shrink as sentences finish.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from seq2seq.search.hypothesis import Hypothesis, force_eos, gnmt_length_penalty


@dataclass
class _Beams:
    """Live hypotheses of the sentences still searching (n sentences, K beams each).

    sent (n,) original sentence index; limit (n,) max tokens before EOS; scores (n, K)
    summed log-probs; seqs (n*K, t) tokens; token_scores (n*K, t); attn (n*K, t, S) or None.
    """

    sent: torch.Tensor
    limit: torch.Tensor
    scores: torch.Tensor
    seqs: torch.Tensor
    token_scores: torch.Tensor
    attn: torch.Tensor | None

    def keep(self, rows: torch.Tensor, sentences: torch.Tensor | None = None) -> None:
        """Keep hypothesis rows (n'*K,) in that order; ``sentences`` (n',) when some leave."""
        self.seqs = self.seqs.index_select(0, rows)
        self.token_scores = self.token_scores.index_select(0, rows)
        if self.attn is not None:
            self.attn = self.attn.index_select(0, rows)
        if sentences is not None:
            self.sent = self.sent.index_select(0, sentences)
            self.limit = self.limit.index_select(0, sentences)
            self.scores = self.scores.index_select(0, sentences)


@torch.no_grad()
def beam_search(
    model: torch.nn.Module,
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
) -> list[list[Hypothesis]]:
    """src (B, S); max_len (B,) tokens before EOS. Returns, per sentence in input order,
    up to ``nbest`` hypotheses sorted best first, scored by log-prob / GNMT penalty."""
    batch, k, device = src.size(0), beam_size, src.device
    state = model.init_state(model.encode(src, src_lengths))  # type: ignore[operator]
    state = model.reorder(state, torch.arange(batch, device=device).repeat_interleave(k))  # type: ignore[operator]
    scores = torch.full((batch, k), float("-inf"), device=device)
    scores[:, 0] = 0.0  # at the start all K rows are the same: expand only one
    beams = _Beams(
        sent=torch.arange(batch, device=device),
        limit=max_len.to(device),
        scores=scores,
        seqs=torch.zeros(batch * k, 0, dtype=torch.long, device=device),
        token_scores=torch.zeros(batch * k, 0, device=device),
        attn=torch.zeros(batch * k, 0, src.size(1), device=device) if return_attention else None,
    )
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    tokens = torch.full((batch * k,), bos, dtype=torch.long, device=device)
    for t in range(int(beams.limit.max()) + 1):
        n = beams.scores.size(0)
        log_probs, state, attn = model.step(tokens, state)  # type: ignore[operator]
        vocab = log_probs.size(-1)
        force_eos(log_probs, (beams.limit <= t).repeat_interleave(k), eos)
        candidates = (beams.scores.unsqueeze(-1) + log_probs.view(n, k, vocab)).view(n, k * vocab)
        top_scores, top_index = candidates.topk(2 * k, dim=1)  # (n, 2K)
        top_beam, top_token = top_index // vocab, top_index % vocab
        is_eos = (top_token == eos) & top_scores.isfinite()
        _finish(beams, finished, is_eos[:, :k], top_scores, top_beam, attn, length_penalty, k)

        # next beam: the first K continuations that are not EOS (a stable sort keeps rank)
        order = (is_eos.long() * 2 * k + torch.arange(2 * k, device=device)).argsort(dim=1)[:, :k]
        next_scores = top_scores.gather(1, order)
        next_beam = top_beam.gather(1, order)
        rows = (torch.arange(n, device=device).unsqueeze(1) * k + next_beam).view(-1)
        step_scores = (next_scores - beams.scores.gather(1, next_beam)).view(-1, 1)
        tokens = top_token.gather(1, order).view(-1)
        beams.keep(rows)
        beams.seqs = torch.cat([beams.seqs, tokens.unsqueeze(1)], dim=1)
        beams.token_scores = torch.cat([beams.token_scores, step_scores], dim=1)
        if beams.attn is not None:
            beams.attn = torch.cat(
                [beams.attn, attn.float().index_select(0, rows).unsqueeze(1)], dim=1
            )
        beams.scores = next_scores
        state = model.reorder(state, rows)  # type: ignore[operator]

        done = _done(beams, finished, t, nbest, length_penalty)
        if bool(done.all()):
            break
        if bool(done.any()):
            alive = (~done).nonzero().squeeze(1)
            alive_rows = (alive.unsqueeze(1) * k + torch.arange(k, device=device)).view(-1)
            beams.keep(alive_rows, sentences=alive)
            tokens = tokens.index_select(0, alive_rows)
            state = model.reorder(state, alive_rows)  # type: ignore[operator]
    return [sorted(hyps, key=lambda h: -h.score)[:nbest] for hyps in finished]


def _finish(
    beams: _Beams,
    finished: list[list[Hypothesis]],
    eos_mask: torch.Tensor,
    top_scores: torch.Tensor,
    top_beam: torch.Tensor,
    attn: torch.Tensor,
    alpha: float,
    k: int,
) -> None:
    """Turn EOS candidates (eos_mask (n, K) over the first K ranks) into hypotheses."""
    for b, j in eos_mask.nonzero().tolist():
        beam = int(top_beam[b, j])
        row = b * k + beam
        total = float(top_scores[b, j])
        tokens = beams.seqs[row].tolist()
        token_scores = [*beams.token_scores[row].tolist(), total - float(beams.scores[b, beam])]
        attention = None
        if beams.attn is not None:
            attention = torch.cat([beams.attn[row], attn[row].float().unsqueeze(0)]).cpu()
        score = total / float(gnmt_length_penalty(len(tokens) + 1, alpha))
        finished[int(beams.sent[b])].append(Hypothesis(tokens, score, token_scores, attention))


def _done(
    beams: _Beams, finished: list[list[Hypothesis]], t: int, nbest: int, alpha: float
) -> torch.Tensor:
    """(n,) True where a sentence is at its limit or its nbest-th finished hypothesis
    already beats the best score any live hypothesis could still reach.

    Log-probs only fall as tokens are added, so a live hypothesis ends with raw score <=
    its current one; dividing by the largest penalty it could meet bounds its final score.
    """
    at_limit = beams.limit <= t
    best_live = beams.scores.max(dim=1).values  # (n,)
    current = float(gnmt_length_penalty(t + 2, alpha))
    at_max = gnmt_length_penalty(beams.limit.float() + 1, alpha)
    bound = best_live / torch.maximum(at_max, torch.full_like(at_max, current))  # type: ignore[arg-type]
    done = at_limit.clone()
    for b, sent in enumerate(beams.sent.tolist()):
        hyps = finished[sent]
        if not done[b] and len(hyps) >= nbest:
            kth = sorted((h.score for h in hyps), reverse=True)[nbest - 1]
            done[b] = kth >= float(bound[b])
    return done
