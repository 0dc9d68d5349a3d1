"""The chunked top-k of beam candidates equals the plain one."""

import pytest
import torch

from seq2seq.kernels.candidates import chunk_width, top_candidates


def plain(log_probs: torch.Tensor, scores: torch.Tensor, count: int):
    n, k = scores.shape
    candidates = scores.unsqueeze(-1) + log_probs.view(n, k, -1)
    return candidates.view(n, -1).topk(count, dim=1)


@pytest.mark.parametrize("vocab", [8000, 640, 37])
@pytest.mark.parametrize("k", [1, 5])
def test_same_values_and_indices_as_the_full_topk(vocab: int, k: int):
    generator = torch.Generator().manual_seed(vocab + k)
    n = 6
    log_probs = torch.randn(n * k, vocab, generator=generator).log_softmax(-1)
    scores = -5 * torch.rand(n, k, generator=generator)
    scores[0, 1:] = float("-inf")  # the first step: only one live beam
    log_probs[3, :] = float("-inf")  # a row with every token forbidden
    values, index = top_candidates(log_probs, scores, 2 * k)
    expected_values, expected_index = plain(log_probs, scores, 2 * k)
    torch.testing.assert_close(values, expected_values, rtol=0, atol=0)
    finite = expected_values.isfinite()  # random floats: no ties among finite values
    assert torch.equal(index[finite], expected_index[finite])
    # each index points at its value
    flat = (scores.unsqueeze(-1) + log_probs.view(n, k, vocab)).view(n, -1)
    torch.testing.assert_close(flat.gather(1, index), values, rtol=0, atol=0)


def test_a_sentence_whose_best_tokens_share_one_chunk():
    """All of the best candidates in one chunk of one beam: that chunk is enough."""
    k, vocab = 3, 640
    log_probs = torch.full((k, vocab), -20.0)
    log_probs[1, 130:136] = torch.tensor([-0.1, -0.2, -0.3, -0.4, -0.5, -0.6])
    values, index = top_candidates(log_probs, torch.zeros(1, k), 2 * k)
    assert index[0].tolist() == [vocab + 130 + i for i in range(6)]
    torch.testing.assert_close(values[0], log_probs[1, 130:136])


def test_chunk_width_divides_the_vocabulary_or_gives_up():
    assert chunk_width(8000) == 64
    assert 8000 % chunk_width(8000) == 0
    assert chunk_width(37) is None  # a prime: the plain top-k is used
    assert chunk_width(64) is None  # too few chunks to pay
