"""Our dropout: torch's distribution (keep with 1 - p, scale by 1 / (1 - p)), a mask the
gradient follows, and the identity outside training."""

import pytest
import torch

from seq2seq.kernels.dropout import Dropout, dropout


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_keeps_one_minus_p_and_scales_the_kept(p: float):
    torch.manual_seed(0)
    x = torch.ones(200_000)
    y = dropout(x, p, training=True)
    kept = y != 0
    assert float(kept.float().mean()) == pytest.approx(1 - p, abs=0.01)
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / (1 - p)))
    assert float(y.mean()) == pytest.approx(1.0, abs=0.02)  # the expectation is kept


def test_gradient_follows_the_mask():
    torch.manual_seed(0)
    x = torch.randn(50, 40, dtype=torch.bfloat16, requires_grad=True)
    y = dropout(x, 0.3, training=True)
    assert y.dtype == torch.bfloat16
    y.sum().backward()
    assert torch.equal(x.grad != 0, y != 0)  # x has no zeros: y is zero exactly where dropped
    assert torch.allclose(
        x.grad[y != 0].float(), torch.full_like(x.grad[y != 0].float(), 1 / 0.7), rtol=1e-2
    )


def test_identity_in_eval_and_at_zero():
    x = torch.randn(4, 5)
    module = Dropout(0.4).eval()
    assert module(x) is x
    assert dropout(x, 0.0, training=True) is x
    assert float(dropout(x, 1.0, training=True).abs().sum()) == 0.0
    with pytest.raises(ValueError, match="dropout probability"):
        Dropout(1.5)


def test_the_mask_is_uniform_and_independent_across_its_packed_elements():
    """Four elements share one 64-bit draw: each position of the four keeps 1 - p, and
    neighbours are independent (their joint keep rate is the product)."""
    torch.manual_seed(1)
    kept = dropout(torch.ones(400_000), 0.3, training=True) != 0
    lanes = kept.view(-1, 4).float()
    for lane in range(4):
        assert float(lanes[:, lane].mean()) == pytest.approx(0.7, abs=0.005)
    both = (lanes[:, 0] * lanes[:, 1]).mean()
    assert float(both) == pytest.approx(0.49, abs=0.005)
    torch.manual_seed(1)
    again = dropout(torch.ones(400_000), 0.3, training=True) != 0
    assert torch.equal(kept, again)  # seeded: reproducible
