"""The encoder's LSTM over a padded batch, run the fastest way for the batch.

What it computes is ``nn.LSTM`` over each sequence up to its length: memory (B, S, D*H)
with zeros at padding, and the final (h, c) (layers*D, B, H) at each sequence's length.
How, measured on 2 cores:

- a batch whose sequences share one length runs as it is;
- one with a few lengths (up to ``MAX_LENGTH_GROUPS``) runs once per length, on the
  sequences of that length: a packed sequence makes ``nn.LSTM`` take its slow path on CPU
  (bf16, 64 sentences of 30 tokens: 17 ms packed against 7-10 ms in 2-5 runs, 6 ms for a
  single length);
- many lengths are packed.

Training on CPU with dropout between layers, the layers run one at a time with our
dropout in between (``layerwise``): ``nn.LSTM`` draws that mask with ``bernoulli_``,
4.3 ms per mask of a Multi30k batch in bf16 (~2.5% of a training step). Same weights and
kernels: the same results but for the mask.
``tests/model/test_contract.py`` checks the per-length and packed runs equal, and the
layer-by-layer run equal to ``nn.LSTM`` (outputs, final states, gradients).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from seq2seq.kernels.dropout import dropout

# Up to this many source lengths in a batch, the LSTM runs once per length rather than
# on a packed sequence (the per-length runs win up to ~8 lengths in bf16, ~5 in fp32)
MAX_LENGTH_GROUPS = 5


def run_encoder_lstm(
    rnn: nn.LSTM, embedded: torch.Tensor, lengths: torch.Tensor, training: bool
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """embedded (B, S, E) batch first, lengths (B,) on CPU -> memory (B, S, D*H), and
    final (h, c) (layers*D, B, H)."""
    distinct = lengths.unique().tolist()
    if distinct == [embedded.size(1)]:
        return layerwise(rnn, embedded, training)
    if len(distinct) <= MAX_LENGTH_GROUPS:
        return per_length(rnn, embedded, lengths, distinct, training)
    packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
    out, (h, c) = layerwise(rnn, packed, training)
    memory, _ = pad_packed_sequence(out, batch_first=True, total_length=embedded.size(1))
    return memory, (h, c)


def per_length(
    rnn: nn.LSTM,
    embedded: torch.Tensor,
    lengths: torch.Tensor,
    distinct: list[int],
    training: bool,
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """One LSTM call per source length: embedded (B, S, E), lengths (B,) ->
    memory (B, S, D*H) with zeros at padding, final (h, c) (layers*D, B, H)."""
    width = embedded.size(1)
    outputs, finals_h, finals_c, rows = [], [], [], []
    for length in distinct:
        index = (lengths == length).nonzero().squeeze(1).to(embedded.device)
        out, (h, c) = layerwise(rnn, embedded.index_select(0, index)[:, :length], training)
        outputs.append(F.pad(out, (0, 0, 0, width - length)))
        finals_h.append(h)
        finals_c.append(c)
        rows.append(index)
    order = torch.cat(rows)  # position i of the concatenation holds sequence order[i]
    back = torch.empty_like(order)
    back[order] = torch.arange(order.numel(), device=order.device)
    memory = torch.cat(outputs).index_select(0, back)
    return memory, (
        torch.cat(finals_h, 1).index_select(1, back),
        torch.cat(finals_c, 1).index_select(1, back),
    )


def layerwise(
    rnn: nn.LSTM, x: Any, training: bool
) -> tuple[Any, tuple[torch.Tensor, torch.Tensor]]:
    """``rnn(x)`` from zero states: x (B, S, E) batch first or a PackedSequence, and so is
    the output; on CPU in training with dropout between layers, one layer at a time with
    our dropout in between (see the module docstring), else ``rnn`` itself."""
    data = x.data if isinstance(x, PackedSequence) else x
    if not (training and rnn.dropout > 0.0 and rnn.num_layers > 1):
        return rnn(x)
    if data.device.type != "cpu":  # CUDA's dropout is a fused kernel already
        return rnn(x)
    directions = 2 if rnn.bidirectional else 1
    finals_h, finals_c = [], []
    for layer in range(rnn.num_layers):
        rows = range(layer * directions, (layer + 1) * directions)
        weights: list[torch.Tensor] = [t for row in rows for t in rnn.all_weights[row]]
        if layer > 0:
            data = dropout(data, rnn.dropout, True)
        data, h, c = _one_layer(rnn, x, data, weights)
        finals_h.append(h)
        finals_c.append(c)
    if isinstance(x, PackedSequence):
        data = PackedSequence(data, x.batch_sizes, x.sorted_indices, x.unsorted_indices)
    return data, (torch.cat(finals_h), torch.cat(finals_c))


def _one_layer(
    rnn: nn.LSTM, x: torch.Tensor | PackedSequence, data: torch.Tensor, weights: list[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One (bi)LSTM layer over ``data``: (B, S, E) batch first, or the packed data of
    ``x`` -> outputs like ``data``, final h and c (D, B, H) in ``x``'s row order."""
    bidirectional = rnn.bidirectional
    directions = 2 if bidirectional else 1
    if isinstance(x, PackedSequence):
        batch = int(x.batch_sizes[0])
        zeros = data.new_zeros(directions, batch, rnn.hidden_size)
        out, h, c = torch._VF.lstm(
            data, x.batch_sizes, (zeros, zeros), weights, True, 1, 0.0, True, bidirectional
        )
        if x.unsorted_indices is not None:
            h = h.index_select(1, x.unsorted_indices)
            c = c.index_select(1, x.unsorted_indices)
        return out, h, c
    zeros = data.new_zeros(directions, data.size(0), rnn.hidden_size)
    return torch._VF.lstm(data, (zeros, zeros), weights, True, 1, 0.0, True, bidirectional, True)
