"""Variational ("locked") dropout in the decoder (``model.decoder.locked_dropout``): one
mask per sequence, the same at every step, on the embedding, between the LSTM layers and
at the output; the layer-by-layer LSTM it runs computes what ``nn.LSTM`` does."""

from dataclasses import replace

import pytest
import torch
from helpers import random_batch, tiny_model
from torch import nn

from seq2seq.data.tokenizer import BOS_ID
from seq2seq.kernels.dropout import locked_dropout
from seq2seq.kernels.recurrent_dropout import locked_layers

VOCAB = 23


def test_the_mask_is_one_per_sequence_and_feature():
    x = torch.ones(8, 50, 64)
    torch.manual_seed(0)
    out = locked_dropout(x, 0.5, True)
    assert torch.equal(out, out[:, :1].expand_as(out))  # the same mask at every step
    kept = out[:, 0] != 0
    assert 0.35 < float(kept.float().mean()) < 0.65
    assert torch.allclose(out[:, 0][kept], torch.tensor(2.0))  # kept features scaled by 1/(1-p)
    assert not torch.equal(kept[0], kept[1])  # each sequence its own mask
    assert locked_dropout(x, 0.5, False) is x and locked_dropout(x, 0.0, True) is x


def test_layer_by_layer_equals_nn_lstm_without_dropout():
    torch.manual_seed(0)
    rnn = nn.LSTM(10, 16, num_layers=3, batch_first=True)
    x = torch.randn(4, 7, 10, requires_grad=True)
    h0, c0 = torch.randn(3, 4, 16), torch.randn(3, 4, 16)
    expected, _ = rnn(x, (h0, c0))
    wanted = torch.autograd.grad(expected.square().sum(), [x, rnn.weight_hh_l1])
    got = locked_layers(rnn, x, (h0, c0), {}, True)
    assert torch.allclose(got, expected, atol=1e-6)
    grads = torch.autograd.grad(got.square().sum(), [x, rnn.weight_hh_l1])
    for grad, want in zip(grads, wanted, strict=True):
        assert torch.allclose(grad, want, atol=1e-5)
    with pytest.raises(ValueError, match="unidirectional"):
        locked_layers(nn.LSTM(10, 16, bidirectional=True, batch_first=True), x, (h0, c0), {}, True)


def test_replaced_weights_are_used():
    torch.manual_seed(0)
    rnn = nn.LSTM(6, 8, num_layers=2, batch_first=True)
    x, h0 = torch.randn(2, 5, 6), torch.zeros(2, 2, 8)
    plain = locked_layers(rnn, x, (h0, h0), {}, False)
    zeroed = {"weight_hh_l1": torch.zeros_like(rnn.weight_hh_l1)}
    assert not torch.allclose(locked_layers(rnn, x, (h0, h0), zeroed, False), plain)
    with torch.no_grad():
        rnn.weight_hh_l1.zero_()
    assert torch.allclose(locked_layers(rnn, x, (h0, h0), {}, False), rnn(x, (h0, h0))[0])


def test_the_decoder_drops_whole_features_in_training_and_nothing_in_evaluation():
    model = tiny_model(VOCAB, emb_dropout=0.3, output_dropout=0.3)
    model.decoder.locked_dropout = True
    model.decoder.rnn.dropout = 0.3
    src, lengths = random_batch(6, VOCAB, seed=2)
    tgt_in = torch.randint(4, VOCAB, (6, 8), generator=torch.Generator().manual_seed(3))
    tgt_in[:, 0] = BOS_ID
    with torch.no_grad():
        evaluated = model(src, lengths, tgt_in)
        model.decoder.locked_dropout = False
        assert torch.equal(model(src, lengths, tgt_in), evaluated)  # eval: no dropout at all
        model.decoder.locked_dropout = True
    model.train()
    features = []
    hook = model.decoder.project.register_forward_hook(lambda m, i, o: features.append(i[0]))
    torch.manual_seed(5)
    logits = model(src, lengths, tgt_in)
    hook.remove()
    dropped = features[0] == 0  # (B, T, O): the output dropout's zeros
    assert dropped.any() and torch.equal(dropped, dropped[:, :1].expand_as(dropped))
    assert not torch.allclose(logits, evaluated)
    logits.logsumexp(-1).sum().backward()
    rnn = model.decoder.rnn
    assert all(getattr(rnn, f"weight_ih_l{k}").grad.abs().sum() > 0 for k in range(2))


def test_the_recipe_key_reaches_the_decoder():
    from seq2seq.config import Decoder

    model = tiny_model(VOCAB, decoder=replace(Decoder(hidden_dim=24), locked_dropout=True))
    assert model.decoder.locked_dropout
    with pytest.raises(ValueError, match="input feeding"):
        tiny_model(
            VOCAB, decoder=replace(Decoder(hidden_dim=24), locked_dropout=True, input_feeding=True)
        )
