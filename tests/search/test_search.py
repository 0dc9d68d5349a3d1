"""Search properties on random tiny models: beam 1 == greedy, batched == one at a time,
n-best sorted and distinct, length limits kept."""

import pytest
import torch
from helpers import random_batch, tiny_model

from seq2seq.data.tokenizer import BOS_ID, EOS_ID
from seq2seq.search import beam_search, greedy_search, max_lengths
from seq2seq.search.beam import BeamOptions

VOCAB = 19


def model_and_batch(seed: int = 0, **kwargs):
    model = tiny_model(VOCAB, seed=seed, **kwargs)
    with torch.no_grad():  # sharpen the output layer so hypotheses end at varied lengths
        model.decoder.project.bias[EOS_ID] += 1.5
    src, lengths = random_batch(6, VOCAB, seed=seed)
    return model, src, lengths, max_lengths(lengths, 1.5, 3)


@pytest.mark.parametrize("input_feeding", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_of_one_equals_greedy(seed: int, input_feeding: bool):
    model, src, lengths, limits = model_and_batch(seed, input_feeding=input_feeding)
    greedy = greedy_search(model, src, lengths, limits, BOS_ID, EOS_ID)
    beam = beam_search(model, src, lengths, limits, BOS_ID, EOS_ID, beam_size=1)
    for g, b in zip(greedy, beam, strict=True):
        assert g[0].tokens == b[0].tokens
        assert g[0].score == pytest.approx(b[0].score, abs=1e-5)


@pytest.mark.parametrize("input_feeding", [False, True])
def test_greedy_batched_equals_one_at_a_time(input_feeding: bool):
    """Greedy drops finished sentences from the batch: what is left must not notice."""
    model, src, lengths, limits = model_and_batch(0, input_feeding=input_feeding)
    with torch.no_grad():  # without the EOS boost these end at EOS or their limits
        model.decoder.project.bias[EOS_ID] -= 1.5
    batched = greedy_search(model, src, lengths, limits, BOS_ID, EOS_ID, return_attention=True)
    assert len({len(hyps[0].tokens) for hyps in batched}) > 2  # they end at different steps
    for row in range(src.size(0)):
        n = int(lengths[row])
        one = src[row : row + 1, :n], lengths[row : row + 1], limits[row : row + 1]
        alone = greedy_search(model, *one, BOS_ID, EOS_ID, return_attention=True)[0][0]
        hyp = batched[row][0]
        assert alone.tokens == hyp.tokens
        assert alone.token_scores == pytest.approx(hyp.token_scores, abs=1e-5)
        assert alone.attention is not None and hyp.attention is not None
        assert hyp.attention.shape == (len(hyp.tokens) + 1, src.size(1))
        torch.testing.assert_close(hyp.attention[:, :n], alone.attention, atol=1e-5, rtol=1e-4)
        assert not hyp.attention[:, n:].any()  # padding gets no attention


@pytest.mark.parametrize("beam_size", [1, 4])
def test_batched_equals_one_at_a_time(beam_size: int):
    model, src, lengths, limits = model_and_batch(3)
    batched = beam_search(
        model, src, lengths, limits, BOS_ID, EOS_ID, beam_size=beam_size, length_penalty=0.6
    )
    for row in range(src.size(0)):
        n = int(lengths[row])
        alone = beam_search(
            model,
            src[row : row + 1, :n],
            lengths[row : row + 1],
            limits[row : row + 1],
            BOS_ID,
            EOS_ID,
            beam_size=beam_size,
            length_penalty=0.6,
        )
        assert alone[0][0].tokens == batched[row][0].tokens
        assert alone[0][0].score == pytest.approx(batched[row][0].score, abs=1e-5)


def test_nbest_sorted_distinct_and_scored():
    model, src, lengths, limits = model_and_batch(4)
    results = beam_search(
        model, src, lengths, limits, BOS_ID, EOS_ID, beam_size=5, nbest=3, length_penalty=1.0
    )
    for hyps in results:
        assert len(hyps) == 3
        scores = [h.score for h in hyps]
        assert scores == sorted(scores, reverse=True)
        assert len({tuple(h.tokens) for h in hyps}) == 3
        for h in hyps:
            assert len(h.token_scores) == len(h.tokens) + 1
            penalty = ((5 + len(h.tokens) + 1) / 6) ** 1.0
            assert h.score == pytest.approx(h.log_prob / penalty, abs=1e-4)


def test_token_scores_are_the_model_log_probs():
    model, src, lengths, limits = model_and_batch(5)
    hyp = beam_search(model, src[:1], lengths[:1], limits[:1], BOS_ID, EOS_ID, beam_size=3)[0][0]
    state = model.init_state(model.encode(src[:1], lengths[:1]))
    expected = []
    with torch.no_grad():
        for token in [BOS_ID, *hyp.tokens]:
            log_probs, state, _ = model.step(torch.tensor([token]), state)
            expected.append(log_probs[0])
    targets = [*hyp.tokens, EOS_ID]
    assert hyp.token_scores == pytest.approx(
        [float(lp[t]) for lp, t in zip(expected, targets, strict=True)], abs=1e-5
    )


def test_length_limit_is_kept():
    model, src, lengths, _ = model_and_batch(6)
    with torch.no_grad():
        model.decoder.project.bias[EOS_ID] -= 50.0  # the model never wants to stop
    limits = torch.full((src.size(0),), 4)
    for search in (
        lambda: greedy_search(model, src, lengths, limits, BOS_ID, EOS_ID),
        lambda: beam_search(model, src, lengths, limits, BOS_ID, EOS_ID, beam_size=3),
    ):
        for hyps in search():
            assert len(hyps[0].tokens) == 4


def test_attention_comes_back_per_output_token():
    model, src, lengths, limits = model_and_batch(7)
    for hyps in beam_search(
        model, src, lengths, limits, BOS_ID, EOS_ID, beam_size=3, return_attention=True
    ):
        attn = hyps[0].attention
        assert attn is not None and attn.shape == (len(hyps[0].tokens) + 1, src.size(1))
        assert torch.allclose(attn.sum(-1), torch.ones(attn.size(0)), atol=1e-5)


def test_max_lengths():
    assert max_lengths(torch.tensor([1, 5, 11]), 1.5, 10).tolist() == [10, 16, 25]


def each_mode(model, src, lengths, limits, **rules):
    """The three loops with the same token rules: greedy, beam 3, one sample."""
    from seq2seq.search import sample_search
    from seq2seq.search.beam import BeamOptions

    prefix = rules.pop("prefix", None)
    options = BeamOptions(beam_size=3, **rules)
    generator = torch.Generator().manual_seed(0)
    return {
        "greedy": greedy_search(
            model, src, lengths, limits, BOS_ID, EOS_ID, prefix=prefix, **rules
        ),
        "beam": beam_search(
            model, src, lengths, limits, BOS_ID, EOS_ID, beam_size=3, options=options, prefix=prefix
        ),
        "sampling": sample_search(
            model, src, lengths, limits, BOS_ID, EOS_ID, generator=generator, prefix=prefix, **rules
        ),
    }


@pytest.mark.parametrize("seed", [0, 1])
def test_every_mode_keeps_min_len_ngram_blocking_and_the_prefix(seed: int):
    """One list of token rules (search/rules.py) serves the three loops: each output of
    each mode is at least min_len long (or at its limit), repeats no token
    (no_repeat_ngram=1), and starts with its sentence's forced prefix."""
    model, src, lengths, _ = model_and_batch(seed)
    limits = torch.full((src.size(0),), 8)
    prefix = torch.zeros(src.size(0), 2, dtype=torch.long)  # PAD-padded
    prefix[:, 0] = 5
    prefix[::2, 1] = 6  # every other sentence: a two-token prefix
    outputs = each_mode(model, src, lengths, limits, min_len=4, no_repeat_ngram=1, prefix=prefix)
    for mode, per_sentence in outputs.items():
        for row, hyps in enumerate(per_sentence):
            wanted = [t for t in prefix[row].tolist() if t]
            for hyp in hyps:
                assert len(hyp.tokens) >= 4, mode
                assert len(set(hyp.tokens)) == len(hyp.tokens), mode
                assert hyp.tokens[: len(wanted)] == wanted, mode


def test_a_length_limit_below_min_len_ends_the_output_there_in_every_mode():
    """The limit wins over min_len (search/rules.py): outputs end at it with a finite
    score, not with padding (greedy) or nothing (beam), as they once did."""
    from seq2seq.search import sample_search

    model, src, lengths, _ = model_and_batch(0)
    limits = torch.tensor([2, 3, 4, 9, 9, 9])
    args = (model, src, lengths, limits, BOS_ID, EOS_ID)
    draws = torch.Generator().manual_seed(0)
    runs = {
        "greedy": greedy_search(*args, min_len=6),
        "beam": beam_search(*args, beam_size=3, options=BeamOptions(beam_size=3, min_len=6)),
        "sampling": sample_search(*args, min_len=6, generator=draws),
    }
    for mode, result in runs.items():
        for row, hyps in enumerate(result):
            assert hyps, mode
            tokens = hyps[0].tokens
            assert len(tokens) == min(6, int(limits[row])) or 6 <= len(tokens) <= 9, mode
            assert 0 not in tokens and hyps[0].score > float("-inf"), mode
