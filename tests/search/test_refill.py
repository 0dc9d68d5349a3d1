"""Rows joining in flight (search/rows.py ``width``): a sentence starts as another ends, the
loop keeps at most ``width`` rows decoding, and every output is the one its sentence gets
alone: greedy, sampling, through a shortlist, and ``decode_ids`` groups of batches."""

from dataclasses import replace

import pytest
import torch
from helpers import random_batch, tiny_model

from seq2seq.config import Search
from seq2seq.data.batching import IdArray
from seq2seq.data.tokenizer import BOS_ID, EOS_ID
from seq2seq.model.decoder_state import DecoderState
from seq2seq.search import greedy_search, max_lengths, sample_search
from seq2seq.search.batches import decode_ids, refills
from seq2seq.search.shortlist import Candidates, Shortlisted

VOCAB = 19


class Counting:
    """A model that records how many rows each step carries."""

    def __init__(self, model) -> None:
        self.model, self.rows = model, []

    def __getattr__(self, name):
        return getattr(self.model, name)

    def step(self, tokens, state, *rest):
        self.rows.append(tokens.numel())
        return self.model.step(tokens, state, *rest)


def _setup(seed: int = 0, batch: int = 12, **kwargs):
    model = tiny_model(VOCAB, seed=seed, **kwargs)
    src, lengths = random_batch(batch, VOCAB, seed=seed)
    return model, src, lengths, max_lengths(lengths, 1.5, 3)


def _alone(model, src, lengths, limits, row):
    n = int(lengths[row])
    one = src[row : row + 1, :n], lengths[row : row + 1], limits[row : row + 1]
    return greedy_search(model, *one, BOS_ID, EOS_ID, return_attention=True)[0][0]


@pytest.mark.parametrize("input_feeding", [False, True])
@pytest.mark.parametrize("width", [1, 3, 5])
def test_greedy_rows_joining_get_what_they_get_alone(width: int, input_feeding: bool):
    model, src, lengths, limits = _setup(input_feeding=input_feeding)
    counting = Counting(model)
    joined = greedy_search(
        counting, src, lengths, limits, BOS_ID, EOS_ID, return_attention=True, width=width
    )
    assert max(counting.rows) == width  # never more rows than asked
    assert len({len(hyps[0].tokens) for hyps in joined}) > 2  # they end at different steps
    for row in range(src.size(0)):
        alone, hyp = _alone(model, src, lengths, limits, row), joined[row][0]
        assert hyp.tokens == alone.tokens
        assert hyp.token_scores == pytest.approx(alone.token_scores, abs=1e-5)
        assert hyp.attention is not None and alone.attention is not None
        n = int(lengths[row])
        torch.testing.assert_close(hyp.attention[:, :n], alone.attention, atol=1e-5, rtol=1e-4)


def test_the_batch_stays_full_while_sentences_wait():
    """Every step before the last sentence has joined carries ``width`` rows, so the
    whole search takes fewer steps than batches of ``width`` decoded one after another."""
    model, src, lengths, limits = _setup(1, batch=16)
    counting = Counting(model)
    greedy_search(counting, src, lengths, limits, BOS_ID, EOS_ID, width=4)
    joined = counting.rows
    total_rows = sum(joined)
    last_full = max(i for i, n in enumerate(joined) if n == 4)
    assert all(n == 4 for n in joined[: last_full + 1])
    batched = Counting(model)
    for start in range(0, 16, 4):
        part = slice(start, start + 4)
        greedy_search(batched, src[part], lengths[part], limits[part], BOS_ID, EOS_ID)
    assert sum(batched.rows) == total_rows  # the same row-steps: each output is the same
    assert len(joined) < len(batched.rows)


def test_min_len_and_each_rows_limit_hold_at_the_rows_own_step():
    model, src, lengths, _ = _setup(2, batch=10)
    limits = torch.tensor([1, 2, 3, 4, 5, 6, 7, 2, 3, 4])
    with torch.no_grad():  # EOS first at once, so that min_len is what keeps rows going
        model.decoder.project.bias[EOS_ID] += 8.0
    hyps = greedy_search(model, src, lengths, limits, BOS_ID, EOS_ID, min_len=2, width=3)
    for row, found in enumerate(hyps):
        assert len(found[0].tokens) == min(2, int(limits[row]))


def test_samples_joining_draw_within_their_limits_and_repeat_with_a_seed():
    model, src, lengths, limits = _setup(3)
    runs = []
    for _ in range(2):
        gen = torch.Generator().manual_seed(5)
        runs.append(
            sample_search(
                model, src, lengths, limits, BOS_ID, EOS_ID, num_samples=3, generator=gen, width=4
            )
        )
    assert [[h.tokens for h in s] for s in runs[0]] == [[h.tokens for h in s] for s in runs[1]]
    for row, samples in enumerate(runs[0]):
        assert len(samples) == 3
        assert all(len(h.tokens) <= int(limits[row]) for h in samples)
        assert [h.score for h in samples] == sorted((h.score for h in samples), reverse=True)
        for h in samples:
            assert h.score == pytest.approx(sum(h.token_scores), abs=1e-5)


def test_joining_is_refused_where_rows_follow_a_shared_step():
    model, src, lengths, limits = _setup()
    with pytest.raises(ValueError, match="prefix, grammar or n-gram"):
        greedy_search(model, src, lengths, limits, BOS_ID, EOS_ID, no_repeat_ngram=2, width=3)
    cfg = Search(beam_size=1)

    def joins(changed: Search = cfg, **given: bool) -> bool:
        flags = {"prefixes": False, "rules": False, "shortlist": False, **given}
        return refills(changed, **flags)

    assert joins()
    assert joins(replace(cfg, beam_size=4, sampling=True))
    assert not joins(replace(cfg, refill=0))
    assert not joins(replace(cfg, beam_size=4))
    assert not joins(replace(cfg, no_repeat_ngram=3))
    assert not joins(prefixes=True)
    assert not joins(rules=True)
    assert not joins(shortlist=True)


def test_states_join_row_after_row_and_refuse_a_beams_groups():
    model, src, lengths, _ = _setup(input_feeding=True, copy=True)
    state = model.init_state(model.encode(src, lengths))
    first = model.reorder(state, torch.tensor([3, 1]))
    second = model.reorder(state, torch.tensor([0]))
    joined = model.join(first, second)
    expected = model.reorder(state, torch.tensor([3, 1, 0]))
    for name in ("hidden", "cell", "feed", "memory", "keys", "mask", "src"):
        torch.testing.assert_close(getattr(joined, name), getattr(expected, name))
    beams = state.select(torch.tensor([0, 0, 1, 1]), sources=torch.tensor([0, 1]))
    assert isinstance(beams, DecoderState) and beams.group == 2
    with pytest.raises(ValueError, match="grouped"):
        model.join(beams, second)


def test_a_shortlist_is_not_refilled():
    """A shortlist's candidates are its batch's: rows cannot join from other sources
    (``decode_ids`` does not refill with a shortlist, test_joining_is_refused...)."""
    model, src, lengths, limits = _setup(4, batch=8)
    allowed = torch.ones(8, VOCAB, dtype=torch.bool)
    listed = Shortlisted(model, Candidates(torch.arange(VOCAB), allowed))
    with pytest.raises(ValueError, match="shortlist's state covers its batch of 8"):
        greedy_search(listed, src, lengths, limits, BOS_ID, EOS_ID, width=3)


def test_decode_ids_in_groups_equals_batch_by_batch():
    model = tiny_model(VOCAB, seed=6)
    src, lengths = random_batch(40, VOCAB, seed=6, max_len=12)
    rows = [src[i, : int(lengths[i])].tolist() for i in range(40)]
    cfg = Search(beam_size=1, batch_size=4, max_len_a=1.0, max_len_b=4)
    device = torch.device("cpu")
    grouped = decode_ids(model, IdArray.from_lists(rows), replace(cfg, refill=4), device)
    plain = decode_ids(model, IdArray.from_lists(rows), replace(cfg, refill=0), device)
    assert [h[0].tokens for h in grouped] == [h[0].tokens for h in plain]
