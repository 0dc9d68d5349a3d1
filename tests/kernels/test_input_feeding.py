"""The hand-written backward of the input-feeding loop (``feeding.py``) gives autograd's
gradients: against the step-by-step autograd path of ``Decoder``, in float64, for every
parameter, with padding, dot and general attention, and copy attention (whose gradient
also flows into the loop's context and attention outputs)."""

import pytest
import torch
from helpers import random_batch, tiny_model

from seq2seq.data.tokenizer import BOS_ID, PAD_ID
from seq2seq.kernels.input_feeding import InputFeedingLoop
from seq2seq.training.precision import cpu_trains_bf16

VOCAB = 23


def gradients(model, src, lengths, tgt_in, fused: bool) -> tuple[torch.Tensor, dict]:
    model.zero_grad(set_to_none=True)
    state = model.init_state(model.encode(src, lengths))
    decoder = model.decoder
    if fused:
        logits, attn = decoder._fused_feeding_forward(tgt_in, state, project=True)
    else:
        logits, attn = decoder._feeding_forward(tgt_in, state, None, project=True)
    weights = torch.linspace(-1, 1, logits.numel(), dtype=logits.dtype).view_as(logits)
    ((logits * weights).sum() + (attn * attn).sum()).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return logits.detach(), grads


@pytest.mark.parametrize("attention,copy", [("general", False), ("dot", False), ("general", True)])
def test_fused_loop_matches_autograd(attention: str, copy: bool):
    kwargs = {"copy": True, "share_embeddings": True} if copy else {}
    model = tiny_model(VOCAB, attention=attention, input_feeding=True, **kwargs)
    src, lengths = random_batch(4, VOCAB)
    tgt_in = torch.randint(4, VOCAB, (4, 6), generator=torch.Generator().manual_seed(3))
    tgt_in[:, 0] = BOS_ID
    tgt_in[2, 4:] = PAD_ID
    model = model.double().train()  # no dropout in tiny_model: the two paths are deterministic
    ref_logits, ref = gradients(model, src, lengths, tgt_in, fused=False)
    logits, got = gradients(model, src, lengths, tgt_in, fused=True)
    assert torch.allclose(logits, ref_logits, atol=1e-10)
    assert got.keys() == ref.keys()
    for name in ref:
        assert torch.allclose(got[name], ref[name], rtol=1e-9, atol=1e-12), name


def reference_loop(word_gates, feed, h0, c0, keys, memory, mask_bias, drop, combine, *weights):
    """The loop of ``InputFeedingLoop`` written plainly, for autograd to differentiate."""
    hidden, cell = list(h0.unbind(0)), list(c0.unbind(0))
    outs, contexts, attns = [], [], []
    for t in range(word_gates.size(0)):
        x = feed
        for layer in range(h0.size(0)):
            if layer == 0:
                gates = word_gates[t] + torch.cat([x, hidden[0]], 1) @ weights[0].t()
            else:
                x = x * drop[layer - 1, t]
                w, b = weights[2 * layer - 1], weights[2 * layer]
                gates = torch.cat([x, hidden[layer]], 1) @ w.t() + b
            i, f, g, o = gates.chunk(4, 1)
            cell[layer] = torch.sigmoid(f) * cell[layer] + torch.sigmoid(i) * torch.tanh(g)
            hidden[layer] = x = torch.sigmoid(o) * torch.tanh(cell[layer])
        attn = torch.softmax(torch.bmm(keys, x.unsqueeze(2)).squeeze(2) + mask_bias, -1)
        context = torch.bmm(attn.unsqueeze(1), memory).squeeze(1)
        feed = torch.tanh(torch.cat([x, context], 1) @ combine.t())
        outs.append(feed), contexts.append(context), attns.append(attn)
    return torch.stack(outs), torch.stack(contexts), torch.stack(attns)


def test_loop_with_dropout_masks_and_three_layers_matches_autograd():
    gen = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64, requires_grad=True)

    steps, batch, hidden, out_dim, mem, src_len, layers = 5, 3, 4, 6, 7, 8, 3
    weights = [rand(4 * hidden, out_dim + hidden)]
    for _ in range(layers - 1):
        weights += [rand(4 * hidden, 2 * hidden), rand(4 * hidden)]
    mask_bias = torch.zeros(batch, src_len, dtype=torch.float64)
    mask_bias[1, 5:] = float("-inf")
    drop = (torch.rand(layers - 1, steps, batch, hidden, generator=gen) >= 0.3).double() / 0.7
    inputs = [
        rand(steps, batch, 4 * hidden),
        rand(batch, out_dim),
        rand(layers, batch, hidden),
        rand(layers, batch, hidden),
        rand(batch, src_len, hidden),
        rand(batch, src_len, mem),
        mask_bias,
        drop,
        rand(out_dim, hidden + mem),
        *weights,
    ]
    got = InputFeedingLoop.apply(*inputs)
    ref = reference_loop(*inputs)
    probe = [torch.randn(r.shape, generator=gen, dtype=torch.float64) for r in ref]
    differentiable = [x for x in inputs if x.requires_grad]
    got_grads = torch.autograd.grad(
        sum((g * p).sum() for g, p in zip(got, probe, strict=True)), differentiable
    )
    ref_grads = torch.autograd.grad(
        sum((r * p).sum() for r, p in zip(ref, probe, strict=True)), differentiable
    )
    for g, r in zip(got, ref, strict=True):
        assert torch.allclose(g, r, atol=1e-10)
    assert float(got[2][:, 1, 5:].detach().abs().sum()) == 0.0  # padding gets no attention
    for g, r in zip(got_grads, ref_grads, strict=True):
        assert torch.allclose(g, r, atol=1e-9)


@pytest.mark.skipif(not cpu_trains_bf16(), reason="oneDNN trains no bf16 LSTM on this CPU")
def test_bf16_loop_stays_close_to_float32():
    torch.manual_seed(0)
    model = tiny_model(VOCAB, input_feeding=True).train()
    src, lengths = random_batch(4, VOCAB)
    tgt_in = torch.randint(4, VOCAB, (4, 6))
    tgt_in[:, 0] = BOS_ID
    ref_logits, _ = gradients(model, src, lengths, tgt_in, fused=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        state = model.init_state(model.encode(src, lengths))
        logits, _ = model.decoder._fused_feeding_forward(tgt_in, state, project=True)
    assert logits.dtype == torch.bfloat16
    assert torch.allclose(logits.float(), ref_logits, atol=0.05)
