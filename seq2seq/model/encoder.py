"""The bidirectional LSTM encoder."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from seq2seq.model.dropout import Dropout, dropout

# Up to this many source lengths in a batch, the encoder runs once per length rather than
# on a packed sequence (measured on 2 cores, see ``Encoder``: the per-length runs win up
# to ~8 lengths in bf16 and ~5 in fp32)
MAX_LENGTH_GROUPS = 5


class Encoder(nn.Module):
    """Embeds the source and runs a multi-layer (bi)LSTM over it.

    A batch whose sequences share one length runs as it is. One with a few lengths runs
    once per length, on the sequences of that length: a packed sequence makes ``nn.LSTM``
    take its slow path on CPU (bf16, 2 cores, 64 sentences of 30 tokens: 17 ms packed
    against 7-10 ms in 2-5 runs, 6 ms for a single length). Many lengths are packed.
    """

    def __init__(
        self,
        embedding: nn.Embedding,
        hidden_dim: int,
        layers: int,
        dropout: float,
        emb_dropout: float,
        bidirectional: bool = True,
    ) -> None:
        super().__init__()
        self.embedding = embedding
        self.emb_dropout = Dropout(emb_dropout)
        self.directions = 2 if bidirectional else 1
        self.layers = layers
        self.rnn = nn.LSTM(
            embedding.embedding_dim,
            hidden_dim,
            num_layers=layers,
            dropout=dropout if layers > 1 else 0.0,
            batch_first=True,
            bidirectional=bidirectional,
        )
        self.output_dim = hidden_dim * self.directions

    def forward(
        self, src: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """src (B, S), lengths (B,) on CPU -> memory (B, S, D*H) and final (h, c), each
        (layers, B, D*H) with the directions concatenated."""
        embedded = self.emb_dropout(self.embedding(src))
        distinct = lengths.unique().tolist()
        if distinct == [src.size(1)]:
            memory, (h, c) = self._lstm(embedded)
        elif len(distinct) <= MAX_LENGTH_GROUPS:
            memory, (h, c) = self._per_length(embedded, lengths, distinct)
        else:
            packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
            out, (h, c) = self._lstm(packed)
            memory, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))
        return memory, (self._join(h), self._join(c))

    def _per_length(
        self, embedded: torch.Tensor, lengths: torch.Tensor, distinct: list[int]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """One LSTM call per source length: embedded (B, S, E), lengths (B,) ->
        memory (B, S, D*H) with zeros at padding, final (h, c) (layers*D, B, H)."""
        width = embedded.size(1)
        outputs, finals_h, finals_c, rows = [], [], [], []
        for length in distinct:
            index = (lengths == length).nonzero().squeeze(1).to(embedded.device)
            out, (h, c) = self._lstm(embedded.index_select(0, index)[:, :length])
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

    def _lstm(self, x: Any) -> tuple[Any, tuple[torch.Tensor, torch.Tensor]]:
        """``self.rnn(x)`` from zero states: x (B, S, E) batch first or a PackedSequence,
        and so is the output. Training on CPU with dropout between layers, it runs one
        layer at a time with our dropout in between: ``nn.LSTM`` draws that mask with
        ``bernoulli_``, 4.3 ms per mask of a Multi30k batch in bf16 on 2 cores (~2.5% of
        a training step). Same weights and kernels: the same results but for the mask."""
        rnn = self.rnn
        data = x.data if isinstance(x, PackedSequence) else x
        if not (self.training and rnn.dropout > 0.0 and rnn.num_layers > 1):
            return rnn(x)
        if data.device.type != "cpu":  # CUDA's dropout is a fused kernel already
            return rnn(x)
        finals_h, finals_c = [], []
        for layer in range(rnn.num_layers):
            rows = range(layer * self.directions, (layer + 1) * self.directions)
            weights: list[torch.Tensor] = [t for row in rows for t in rnn.all_weights[row]]
            if layer > 0:
                data = dropout(data, rnn.dropout, True)
            data, h, c = self._lstm_layer(x, data, weights)
            finals_h.append(h)
            finals_c.append(c)
        if isinstance(x, PackedSequence):
            data = PackedSequence(data, x.batch_sizes, x.sorted_indices, x.unsorted_indices)
        return data, (torch.cat(finals_h), torch.cat(finals_c))

    def _lstm_layer(
        self, x: torch.Tensor | PackedSequence, data: torch.Tensor, weights: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One (bi)LSTM layer over ``data``: (B, S, E) batch first, or the packed data of
        ``x`` -> outputs like ``data``, final h and c (D, B, H) in ``x``'s row order."""
        rnn, bidirectional = self.rnn, self.directions == 2
        if isinstance(x, PackedSequence):
            batch = int(x.batch_sizes[0])
            zeros = data.new_zeros(self.directions, batch, rnn.hidden_size)
            out, h, c = torch._VF.lstm(
                data, x.batch_sizes, (zeros, zeros), weights, True, 1, 0.0, True, bidirectional
            )
            if x.unsorted_indices is not None:
                h = h.index_select(1, x.unsorted_indices)
                c = c.index_select(1, x.unsorted_indices)
            return out, h, c
        zeros = data.new_zeros(self.directions, data.size(0), rnn.hidden_size)
        return torch._VF.lstm(
            data, (zeros, zeros), weights, True, 1, 0.0, True, bidirectional, True
        )

    def _join(self, state: torch.Tensor) -> torch.Tensor:
        """(layers*D, B, H) -> (layers, B, D*H)."""
        _, batch, hidden = state.shape
        state = state.view(self.layers, self.directions, batch, hidden)
        return state.permute(0, 2, 1, 3).reshape(self.layers, batch, self.directions * hidden)


class Bridge(nn.Module):
    """Maps the encoder's final states to the decoder's initial (h, c).

    ``linear``: h0 = tanh(W_h h_enc), c0 = W_c c_enc, layer by layer (the top encoder
    layer feeds every decoder layer when the layer counts differ); ``copy``: the encoder's
    final states as they are (OpenNMT-py's default; sizes must match, no parameters);
    ``zero``: zeros.
    """

    def __init__(
        self, kind: str, enc_dim: int, dec_dim: int, enc_layers: int, dec_layers: int
    ) -> None:
        super().__init__()
        self.kind = kind
        self.dec_dim = dec_dim
        self.dec_layers = dec_layers
        self.same_layers = enc_layers == dec_layers
        if kind == "copy" and enc_dim != dec_dim:
            raise ValueError(
                f"bridge 'copy' needs the encoder's output size ({enc_dim}) to equal the "
                f"decoder's hidden size ({dec_dim}); use 'linear'"
            )
        if kind == "linear":
            self.h_proj = nn.Linear(enc_dim, dec_dim)
            self.c_proj = nn.Linear(enc_dim, dec_dim)

    def forward(
        self, final: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        h, c = final  # (L_enc, B, D*H)
        if self.kind == "zero":
            zeros = h.new_zeros(self.dec_layers, h.size(1), self.dec_dim)
            return zeros, zeros.clone()
        if not self.same_layers:
            h = h[-1:].expand(self.dec_layers, -1, -1)
            c = c[-1:].expand(self.dec_layers, -1, -1)
        if self.kind == "copy":
            return h.contiguous(), c.contiguous()
        return torch.tanh(self.h_proj(h)).contiguous(), self.c_proj(c).contiguous()
