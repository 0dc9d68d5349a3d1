"""The bidirectional LSTM encoder."""

from __future__ import annotations

import torch
from torch import nn

from seq2seq.kernels.dropout import Dropout
from seq2seq.kernels.encoder_lstm import run_encoder_lstm
from seq2seq.kernels.rnn_precision import lstm_precision


class Encoder(nn.Module):
    """Embeds the source and runs a multi-layer (bi)LSTM over it (padding positions of
    the memory are zeros; each sequence's final states are those at its own length)."""

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
        # = self.rnn over the padded batch, run the fastest of three ways (kernels/)
        with lstm_precision(embedded) as cast:  # fp32 where cuDNN would take fp16 unscaled
            memory, (h, c) = run_encoder_lstm(self.rnn, cast(embedded), lengths, self.training)
        return memory, (self._join(h), self._join(c))

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
