"""DropConnect on the decoder's recurrent weights (``model.decoder.weight_drop``): in
training it zeroes a share of each hidden-to-hidden matrix, on every decoder path; in
evaluation, and after training steps, the model computes what it did without it."""

import pytest
import torch
from helpers import random_batch, tiny_model

from seq2seq.data.tokenizer import BOS_ID

VOCAB = 23
# the decoder's three teacher-forcing paths: one nn.LSTM call (no input feeding), the
# fused input-feeding loop (product scores), the stepped one (bahdanau)
PATHS = [("general", False), ("general", True), ("bahdanau", True)]


def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    src, lengths = random_batch(6, VOCAB, seed=2)
    tgt_in = torch.randint(4, VOCAB, (6, 8), generator=torch.Generator().manual_seed(3))
    tgt_in[:, 0] = BOS_ID
    return src, lengths, tgt_in


def zero_gradient_share(model, src, lengths, tgt_in) -> list[float]:
    """Per decoder layer, the share of its hidden-to-hidden weights without gradient."""
    model.zero_grad()
    model(src, lengths, tgt_in).logsumexp(-1).sum().backward()
    rnn = model.decoder.rnn
    grads = [getattr(rnn, f"weight_hh_l{k}").grad for k in range(rnn.num_layers)]
    return [float((g == 0).float().mean()) for g in grads]


@pytest.mark.parametrize("attention,input_feeding", PATHS)
def test_weight_drop_masks_the_recurrent_weights_in_training_only(
    attention: str, input_feeding: bool
):
    model = tiny_model(VOCAB, attention=attention, input_feeding=input_feeding)
    src, lengths, tgt_in = batch()
    with torch.no_grad():
        before = model(src, lengths, tgt_in)
    model.train()  # tiny_model has no other dropout: training is deterministic without it
    assert max(zero_gradient_share(model, src, lengths, tgt_in)) < 0.05

    model.decoder.weight_drop = 0.5
    torch.manual_seed(7)
    shares = zero_gradient_share(model, src, lengths, tgt_in)
    assert all(0.4 < share < 0.6 for share in shares), shares
    with torch.no_grad():
        first, second = model(src, lengths, tgt_in), model(src, lengths, tgt_in)
    assert not torch.allclose(first, second)  # a fresh mask per batch

    model.eval()  # evaluation: the weights as they are, and they were left as they were
    with torch.no_grad():
        after = model(src, lengths, tgt_in)
    assert torch.equal(before, after)


def test_the_recipe_key_reaches_the_decoder():
    from dataclasses import replace

    from seq2seq.config import Decoder

    model = tiny_model(VOCAB, decoder=replace(Decoder(hidden_dim=24), weight_drop=0.3))
    assert model.decoder.weight_drop == 0.3
