"""int8 inference: ``Int8Linear`` stays within its quantization error bound, and an int8
model's search step follows the float32 one."""

import pytest
import torch
import torch.nn.functional as F
from helpers import random_batch, tiny_model

from seq2seq.data.tokenizer import BOS_ID
from seq2seq.kernels import int8
from seq2seq.kernels.int8 import Int8Linear, int8_supported
from seq2seq.model.quantize import quantize_int8

pytestmark = pytest.mark.skipif(not int8_supported(), reason="needs oneDNN's int8 kernels")


def error_bound(
    x: torch.Tensor, weight: torch.Tensor, input_bound: float, levels: float = 127.0
) -> torch.Tensor:
    """Worst-case |int8 - float| per output (N, out): each factor is off by at most half
    its quantization step (x: input_bound / 127, W: max |W_n| / levels per output row)."""
    x_step = input_bound / 127
    w_step = weight.abs().amax(dim=1) / levels  # (out,)
    first = x.abs().sum(1, keepdim=True) * (w_step / 2)  # |x| . dW
    second = (x_step / 2) * weight.abs().sum(1)  # dx . |W|
    return first + second + x.size(1) * (x_step / 2) * (w_step / 2)


@pytest.mark.parametrize(
    "bias,input_bound,levels", [(True, 1.0, 127.0), (False, 1.0, 127.0), (True, 3.0, 63.0)]
)
def test_int8_linear_is_within_its_quantization_bound(
    bias: bool, input_bound: float, levels: float, monkeypatch: pytest.MonkeyPatch
):
    if levels > int8.weight_levels():
        pytest.skip("127-step weights saturate vpmaddubsw on this CPU (no VNNI): it uses 63")
    monkeypatch.setattr(int8, "weight_levels", lambda: levels)  # 63: CPUs without VNNI
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(37, 50, generator=gen) * torch.rand(37, 1, generator=gen)
    b = torch.randn(37, generator=gen) if bias else None
    layer = Int8Linear(weight, b, input_bound=input_bound)
    x = (torch.rand(11, 50, generator=gen) * 2 - 1) * input_bound
    out = layer(x)
    ref = F.linear(x, weight, b)
    assert out.dtype == torch.float32 and out.shape == (11, 37)
    error = (out - ref).abs()
    assert (error <= error_bound(x, weight, input_bound, levels) + 1e-5).all(), error.max()
    assert error.max() < 0.05 * ref.abs().max()  # and it is not trivially loose
    assert not torch.equal(out, ref)  # it did quantize


def test_int8_linear_shapes_and_dtypes():
    gen = torch.Generator().manual_seed(1)
    layer = Int8Linear(torch.randn(8, 6, generator=gen), torch.randn(8, generator=gen))
    x = torch.randn(3, 4, 6, generator=gen)
    out = layer(x)
    assert out.shape == (3, 4, 8)
    # a row's result does not depend on the other rows of the call
    assert torch.equal(out[1], layer(x[1])) and torch.equal(out[2, :1], layer(x[2, :1]))
    many = torch.rand(45, 6, generator=gen) * 2 - 1  # padded to 64 rows inside
    assert torch.equal(layer(many)[:10], layer(many[:10])) and layer(many).shape == (45, 8)
    # beyond the bound, inputs are clipped to it
    assert torch.equal(layer(x * 5), layer((x * 5).clamp(-1, 1)))
    assert layer(x.to(torch.bfloat16)).dtype == torch.float32
    assert layer(torch.zeros(0, 6)).shape == (0, 8)
    zeros = layer(torch.zeros(2, 6))  # a zero input has no scale of its own: bias only
    torch.testing.assert_close(zeros, layer.bias.expand(2, 8))


@pytest.mark.parametrize(
    "input_feeding,options",
    [
        (False, {}),
        (True, {}),
        (True, {"attention": "bahdanau", "copy": True}),
        (False, {"tie_embeddings": True, "attention": "dot"}),
    ],
)
def test_int8_model_steps_like_the_float_model(input_feeding: bool, options: dict):
    model = tiny_model(seed=3, input_feeding=input_feeding, **options)
    quantized = quantize_int8(model)
    assert isinstance(quantized.decoder.project, Int8Linear)
    assert isinstance(model.decoder.project, torch.nn.Linear)  # the original is untouched
    src, lengths = random_batch(6, 23, seed=2)
    tokens = torch.full((6,), BOS_ID)
    with torch.no_grad():
        states = [m.init_state(m.encode(src, lengths)) for m in (model, quantized)]
        for _ in range(5):
            (ref, states[0], _), (got, states[1], _) = (
                m.step(tokens, s) for m, s in zip((model, quantized), states, strict=True)
            )
            assert got.dtype == torch.float32
            assert (got - ref).abs().max() < 0.05  # log-probs; translations: test_cli
            tokens = ref.argmax(-1)
    assert quantized.decoder._step_weights is not None
    assert isinstance(quantized.decoder._step_weights.first, Int8Linear)


def test_int8_model_with_a_bf16_encoder_keeps_a_shared_embedding_float32():
    model = tiny_model(seed=4, share_embeddings=True)
    assert model.encoder.embedding is model.decoder.embedding
    quantized = quantize_int8(model, bf16_encoder=True)
    assert quantized.encoder.embedding.weight.dtype == torch.bfloat16
    assert quantized.decoder.embedding.weight.dtype == torch.float32
    assert model.encoder.embedding.weight.dtype == torch.float32  # the original is untouched
    src, lengths = random_batch(4, 23, seed=5)
    with torch.no_grad():
        encoded = quantized.encode(src, lengths)
        assert encoded.memory.dtype == torch.float32
        assert all(t.dtype == torch.float32 for t in encoded.final)
        reference = model.encode(src, lengths)
        torch.testing.assert_close(encoded.memory, reference.memory, atol=0.05, rtol=0.05)
        log_probs, _, _ = quantized.step(torch.full((4,), BOS_ID), quantized.init_state(encoded))
    assert log_probs.dtype == torch.float32 and log_probs.isfinite().all()


def test_int8_ensemble_of_one_model_twice_steps_like_that_model():
    from seq2seq.model.ensemble import Ensemble

    model = tiny_model(seed=6, input_feeding=True)
    single, pair = quantize_int8(model), quantize_int8(Ensemble([model, model]))
    assert all(isinstance(m.decoder.project, Int8Linear) for m in pair.members)
    src, lengths = random_batch(3, 23, seed=7)
    tokens = torch.full((3,), BOS_ID)
    with torch.no_grad():
        one, _, _ = single.step(tokens, single.init_state(single.encode(src, lengths)))
        two, _, _ = pair.step(tokens, pair.init_state(pair.encode(src, lengths)))
    torch.testing.assert_close(two, one)
