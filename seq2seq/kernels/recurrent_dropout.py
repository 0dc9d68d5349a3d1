"""Regularisers of an ``nn.LSTM`` that its own ``dropout`` cannot express.

Weight drop (DropConnect on the hidden-to-hidden matrices, AWD-LSTM): ``weight_dropped``
gives masked copies of those matrices, to run the module with (``functional_call``).

``nn.LSTM``'s dropout between layers draws a fresh mask at every step. Variational
("locked") dropout (Gal & Ghahramani 2016; AWD-LSTM, Merity et al. 2018) draws one mask
per sequence and keeps it for every step, so a dropped feature stays dropped for the
whole sequence. The layers are the module's own weights (or weight-dropped copies of
them) run with ``torch.lstm`` one layer at a time: oneDNN's fused kernel, as one call
would use. ``tests/model/test_locked_dropout.py`` checks it equals ``nn.LSTM`` without
dropout (outputs and gradients).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from seq2seq.kernels.dropout import locked_dropout

_NAMES = ("weight_ih_l{}", "weight_hh_l{}", "bias_ih_l{}", "bias_hh_l{}")


def weight_dropped(rnn: nn.LSTM, p: float) -> dict[str, torch.Tensor]:
    """Each layer's hidden-to-hidden matrix (4H, H) with DropConnect, by its ``nn.LSTM``
    name: one mask per call, i.e. per batch, shared by every time step; kept entries
    scaled by 1 / (1 - p), so evaluation uses the weights as they are."""
    return {
        f"weight_hh_l{k}": F.dropout(weights[1], p, True)
        for k, weights in enumerate(rnn.all_weights)
    }


def locked_layers(
    rnn: nn.LSTM,
    x: torch.Tensor,
    initial: tuple[torch.Tensor, torch.Tensor],
    replaced: dict[str, torch.Tensor],
    training: bool,
) -> torch.Tensor:
    """``rnn(x, initial)[0]`` for a batch-first, unidirectional LSTM with biases: x (B, T, E),
    initial (h0, c0) each (L, B, H) -> the top layer's states (B, T, H); between layers
    dropout ``rnn.dropout`` with one mask (B, 1, H) per sequence in training. ``replaced``:
    tensors to use in place of the module's own, by parameter name (weight drop)."""
    if rnn.bidirectional or not rnn.batch_first or rnn.bias is False:
        raise ValueError("locked_layers runs a batch-first, unidirectional LSTM with biases")
    h0, c0 = initial
    for k in range(rnn.num_layers):
        if k > 0:
            x = locked_dropout(x, rnn.dropout, training)
        params = [replaced.get(n.format(k), getattr(rnn, n.format(k))) for n in _NAMES]
        # torch.lstm(input, hx, params, has_biases, num_layers, dropout, train,
        #            bidirectional, batch_first) -> (output, h_n, c_n)
        x, _, _ = torch.lstm(
            x, (h0[k : k + 1], c0[k : k + 1]), params, True, 1, 0.0, training, False, True
        )
    return x
