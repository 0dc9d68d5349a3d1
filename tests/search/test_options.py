"""Sampling and the beam's options: checked on random tiny models and on a hand-built
model whose probabilities are known."""

from dataclasses import dataclass

import pytest
import torch
from helpers import random_batch, tiny_model

from seq2seq.data.tokenizer import BOS_ID, EOS_ID, PAD_ID
from seq2seq.search import beam_search, greedy_search, max_lengths, sample_search
from seq2seq.search.beam import BeamOptions
from seq2seq.search.sampling import draw, filter_logits

VOCAB = 19
A, B, C = 4, 5, 6


@dataclass
class _Memory:
    mask: torch.Tensor


class TableModel:
    """The decoder contract over a fixed table: p(next | previous token). The state is the
    previous token; attention is uniform over the source."""

    def __init__(self, table: dict[int, dict[int, float]], vocab: int = 8) -> None:
        self.table, self.vocab = table, vocab

    def encode(self, src, lengths):
        return _Memory(src != PAD_ID)

    def init_state(self, memory):
        return (memory.mask, torch.full((memory.mask.size(0),), BOS_ID))

    def reorder(self, state, index, same_sources=False, sources=None):
        return (state[0].index_select(0, index), state[1].index_select(0, index))

    def step(self, tokens, state):
        log_probs = torch.full((tokens.numel(), self.vocab), float("-inf"))
        for row, token in enumerate(tokens.tolist()):
            for nxt, p in self.table.get(token, {EOS_ID: 1.0}).items():
                log_probs[row, nxt] = torch.tensor(p).log()
        mask = state[0].float()
        return log_probs, (state[0], tokens), mask / mask.sum(-1, keepdim=True)


# "" (EOS at once) has p 0.5; "a b" has p 0.5 * 0.9 * 0.95 = 0.43: more likely per token
SHORT_OR_LONG = {
    BOS_ID: {EOS_ID: 0.5, A: 0.5},
    A: {B: 0.9, EOS_ID: 0.1},
    B: {EOS_ID: 0.95, C: 0.05},
}
ONE_SOURCE = (torch.tensor([[7, EOS_ID]]), torch.tensor([2]), torch.tensor([8]))


def run_beam(model, **options):
    src, lengths, limits = ONE_SOURCE
    opt = BeamOptions(beam_size=options.pop("beam_size", 3), **options)
    return beam_search(
        model, src, lengths, limits, BOS_ID, EOS_ID, beam_size=opt.beam_size, options=opt
    )[0]


def run_samples(model, seed: int, **options):
    src, lengths, limits = ONE_SOURCE
    generator = torch.Generator().manual_seed(seed)
    return sample_search(
        model, src, lengths, limits, BOS_ID, EOS_ID, generator=generator, **options
    )[0]


LOOP = {BOS_ID: {A: 1.0}, A: {A: 0.8, B: 0.1, EOS_ID: 0.1}, B: {EOS_ID: 1.0}}


def test_length_penalty_prefers_the_longer_output_when_it_should():
    model = TableModel(SHORT_OR_LONG)
    assert run_beam(model, length_penalty=0.0)[0].tokens == []
    assert run_beam(model, length_penalty=1.0)[0].tokens == [A, B]
    assert run_beam(model, length_norm="average")[0].tokens == [A, B]
    assert run_beam(model, length_norm="none", length_penalty=1.0)[0].tokens == []


def test_min_length_forbids_early_eos():
    model = TableModel(SHORT_OR_LONG)
    best = run_beam(model, min_len=1)[0]
    assert best.tokens == [A, B]


def test_repeated_ngrams_are_blocked():
    model = TableModel(LOOP)
    free = run_beam(model, length_penalty=1.0)[0].tokens
    assert free[:3] == [A, A, A]
    for n in (1, 2, 3):
        tokens = run_beam(model, no_repeat_ngram=n, length_penalty=1.0)[0].tokens
        grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
        assert len(grams) == len(set(grams)), (n, tokens)


def test_repeated_ngrams_are_blocked_in_samples_too():
    """The same rule in sampling: the loop model would repeat A; with blocking no sample
    holds an n-gram twice, and without it some do."""
    model = TableModel(LOOP)

    def samples(n: int) -> list[list[int]]:
        hyps = run_samples(model, 5, num_samples=30, no_repeat_ngram=n)
        return [h.tokens for h in hyps]

    def repeats(tokens: list[int], n: int) -> bool:
        grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
        return len(grams) != len(set(grams))

    assert any(repeats(t, 2) for t in samples(0))
    for n in (1, 2, 3):
        assert not any(repeats(t, n) for t in samples(n)), n


def test_forced_prefix_starts_every_output():
    model = TableModel(SHORT_OR_LONG)
    src, lengths, limits = ONE_SOURCE
    prefix = torch.tensor([[A, B, PAD_ID]])
    for hyp in beam_search(
        model, src, lengths, limits, BOS_ID, EOS_ID, beam_size=3, nbest=2, prefix=prefix
    )[0]:
        assert hyp.tokens[:2] == [A, B]


def test_forced_prefix_starts_every_sample():
    model = TableModel(SHORT_OR_LONG)
    # without the prefix, half the samples are empty
    samples = run_samples(model, 1, num_samples=5, prefix=torch.tensor([[A, PAD_ID]]))
    assert all(hyp.tokens[:1] == [A] for hyp in samples)
    assert all(
        hyp.token_scores[0] == pytest.approx(torch.tensor(0.5).log().item()) for hyp in samples
    )


def test_coverage_penalty_is_added_to_the_score():
    model = tiny_model(VOCAB)
    src, lengths = random_batch(3, VOCAB, seed=2)
    limits = max_lengths(lengths, 1.5, 3)
    opt = BeamOptions(beam_size=3, length_penalty=0.6, coverage_penalty=0.4)
    results = beam_search(
        model, src, lengths, limits, BOS_ID, EOS_ID, beam_size=3, options=opt, return_attention=True
    )
    for row, hyps in enumerate(results):
        hyp = hyps[0]
        assert hyp.attention is not None
        coverage = hyp.attention.sum(0)[: int(lengths[row])]
        expected = hyp.log_prob / ((5 + len(hyp.tokens) + 1) / 6) ** 0.6
        expected += 0.4 * float(coverage.clamp(1e-6, 1.0).log().sum())
        assert hyp.score == pytest.approx(expected, abs=1e-4)


def test_top_k_one_sampling_is_greedy():
    """Also once samples leave the batch at different steps (their EOS or limit)."""
    model = tiny_model(VOCAB, seed=3)
    src, lengths = random_batch(5, VOCAB, seed=3)
    limits = max_lengths(lengths, 1.5, 3)
    greedy = greedy_search(model, src, lengths, limits, BOS_ID, EOS_ID, return_attention=True)
    sampled = sample_search(
        model,
        src,
        lengths,
        limits,
        BOS_ID,
        EOS_ID,
        top_k=1,
        num_samples=2,
        generator=torch.Generator().manual_seed(0),
        return_attention=True,
    )
    assert len({len(g[0].tokens) for g in greedy}) > 1
    for g, s in zip(greedy, sampled, strict=True):
        for h in s:
            assert h.tokens == g[0].tokens
            assert h.token_scores == pytest.approx(g[0].token_scores, abs=1e-5)
            assert h.attention is not None and g[0].attention is not None
            torch.testing.assert_close(h.attention, g[0].attention, atol=1e-5, rtol=1e-4)


def test_seeded_sampling_is_reproducible():
    model = tiny_model(VOCAB, seed=4)
    src, lengths = random_batch(4, VOCAB, seed=4)
    limits = max_lengths(lengths, 1.5, 3)

    def draw(seed: int):
        out = sample_search(
            model,
            src,
            lengths,
            limits,
            BOS_ID,
            EOS_ID,
            num_samples=3,
            temperature=1.5,
            generator=torch.Generator().manual_seed(seed),
        )
        return [[h.tokens for h in hyps] for hyps in out]

    assert draw(11) == draw(11)
    assert draw(11) != draw(12)
    for hyps in sample_search(model, src, lengths, limits, BOS_ID, EOS_ID, num_samples=3):
        scores = [h.score for h in hyps]
        assert scores == sorted(scores, reverse=True)


def test_draw_follows_the_distribution_and_never_draws_a_zero():
    probs = torch.tensor(
        [[0.5, 0.0, 0.3, 0.2, 0.0], [0.0, 0.0, 0.0, 0.0, 2.0], [1.0, 1.0, 0.0, 0.0, 0.0]]
    )
    gen = torch.Generator().manual_seed(3)
    n = 20_000
    drawn = torch.stack([draw(probs, gen) for _ in range(n)])  # (n, 3)
    counts = torch.stack([torch.bincount(drawn[:, row], minlength=5) for row in range(3)])
    assert not counts[probs == 0].any()  # zero-probability tokens never come out
    expected = probs / probs.sum(1, keepdim=True) * n
    # within 5 standard deviations of a binomial count
    assert ((counts - expected).abs() <= 5 * (expected * (1 - expected / n)).sqrt() + 1).all()
    again = torch.stack([draw(probs, torch.Generator().manual_seed(3)) for _ in range(3)])
    assert torch.equal(again[0], drawn[0]) and torch.equal(again[1], again[0])
    # the largest uniform draw, scaled, may round up to the total: still a positive token
    top = 1.0 - 2.0**-53
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch, "rand", lambda shape, **kw: torch.full(shape, top, dtype=kw["dtype"]))
        assert draw(torch.tensor([[0.1, 0.7, 0.0], [0.3, 0.0, 0.0]])).tolist() == [1, 0]


def test_filter_logits_top_k_and_top_p():
    log_probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log()
    assert filter_logits(log_probs, 1.0, 2, 1.0).isfinite().tolist() == [[True, True, False, False]]
    assert filter_logits(log_probs, 1.0, 0, 0.7).isfinite().tolist() == [[True, True, False, False]]
    assert filter_logits(log_probs, 1.0, 0, 0.5).isfinite().tolist() == [
        [True, False, False, False]
    ]
    assert filter_logits(log_probs, 1.0, 0, 0.01).isfinite().tolist() == [
        [True, False, False, False]
    ]
    flat = filter_logits(log_probs, 100.0, 0, 1.0).softmax(-1)
    assert float(flat.max() - flat.min()) < 0.02  # a high temperature flattens


def test_sampling_never_draws_pad_or_bos():
    model = tiny_model(VOCAB, seed=6)
    src, lengths = random_batch(4, VOCAB, seed=6)
    limits = max_lengths(lengths, 1.5, 3)
    drawn = sample_search(
        model,
        src,
        lengths,
        limits,
        BOS_ID,
        EOS_ID,
        num_samples=8,
        temperature=50.0,
        generator=torch.Generator().manual_seed(1),
    )
    tokens = {t for hyps in drawn for h in hyps for t in h.tokens}
    assert len(tokens) > 5 and not tokens & {PAD_ID, BOS_ID}
