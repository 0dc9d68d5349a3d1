"""The attentional LSTM decoder (Luong style), with and without input feeding.

One step:  h_t = LSTM([emb(y_{t-1}); o_{t-1}?], h_{t-1})      o_{t-1} only with input feeding
           c_t, a_t = attention(h_t, memory)
           o_t = tanh(W [h_t; c_t])                           the "attentional hidden"
           p(y_t) = softmax(W_out dropout(o_t))

Without input feeding h_t does not depend on o_{t-1}, so teacher forcing runs one
``nn.LSTM`` call over the whole target and attends for all steps at once (the fast
path). With it, training steps through time. Both must agree with ``step``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from seq2seq.model.attention import Attention


@dataclass
class DecoderState:
    """What one search hypothesis carries between steps (batch dim = hypotheses).

    hidden, cell: (L, B, H); feed: (B, O) previous attentional hidden (input feeding) or
    None; memory: (B, S, M); keys: (B, S, K) precomputed attention keys; mask: (B, S);
    src: (B, S) source ids, for a copying decoder, else None.
    """

    hidden: torch.Tensor
    cell: torch.Tensor
    feed: torch.Tensor | None
    memory: torch.Tensor
    keys: torch.Tensor
    mask: torch.Tensor
    src: torch.Tensor | None = None

    def select(self, index: torch.Tensor) -> DecoderState:
        """Keep (or repeat) rows ``index`` (B',) of every tensor: beam reorder and expansion."""
        return DecoderState(
            hidden=self.hidden.index_select(1, index),
            cell=self.cell.index_select(1, index),
            feed=None if self.feed is None else self.feed.index_select(0, index),
            memory=self.memory.index_select(0, index),
            keys=self.keys.index_select(0, index),
            mask=self.mask.index_select(0, index),
            src=None if self.src is None else self.src.index_select(0, index),
        )


# Below this many rows a search step runs the LSTM as plain matmuls (``_cell_step``):
# measured on 2 CPU cores, greedy at batch 1 went from 18 to 24.5 sentences/s, while beam
# 5 at batch 64 (320 rows) was 10% slower than nn.LSTM's one fused call.
CELL_STEP_MAX_ROWS = 32


class Decoder(nn.Module):
    def __init__(
        self,
        embedding: nn.Embedding,
        attention: Attention,
        memory_dim: int,
        hidden_dim: int,
        layers: int,
        dropout: float,
        emb_dropout: float,
        output_dropout: float,
        input_feeding: bool,
        tie_embeddings: bool,
        copy: bool = False,
    ) -> None:
        super().__init__()
        emb_dim = embedding.embedding_dim
        vocab = embedding.num_embeddings
        self.embedding = embedding
        self.attention = attention
        self.input_feeding = input_feeding
        self.output_dim = emb_dim if tie_embeddings else hidden_dim
        self.emb_dropout = nn.Dropout(emb_dropout)
        self.rnn = nn.LSTM(
            emb_dim + (self.output_dim if input_feeding else 0),
            hidden_dim,
            num_layers=layers,
            dropout=dropout if layers > 1 else 0.0,
            batch_first=True,
        )
        self.combine = nn.Linear(hidden_dim + memory_dim, self.output_dim, bias=False)
        self.output_dropout = nn.Dropout(output_dropout)
        self.project = nn.Linear(self.output_dim, vocab, bias=True)
        if tie_embeddings:
            self.project.weight = embedding.weight
        self.copy = copy
        # p_gen = sigmoid(w [o_t; c_t; emb(y_{t-1})]): how much of the output is generated
        self.copy_gate = nn.Linear(self.output_dim + memory_dim + emb_dim, 1) if copy else None

    # ---- teacher forcing ---------------------------------------------------------------
    def forward(
        self,
        tgt_in: torch.Tensor,
        state: DecoderState,
        feed_prediction: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """tgt_in (B, T) -> logits (B, T, V) and attention (B, T, S).

        ``feed_prediction`` (B, T) bool, only with input feeding: where True, step t reads
        the model's own argmax from step t-1 instead of ``tgt_in[:, t]`` (scheduled sampling).
        """
        if not self.input_feeding:
            embedded = self.emb_dropout(self.embedding(tgt_in))
            hidden, _ = self.rnn(embedded, (state.hidden, state.cell))
            context, attn = self.attention(hidden, state.keys, state.memory, state.mask)
            attentional = self._attentional(hidden, context)
            logits = self.project(self.output_dropout(attentional))
            return self._mix_copy(logits, attentional, context, embedded, attn, state), attn
        logits_steps: list[torch.Tensor] = []
        attn_steps: list[torch.Tensor] = []
        tokens = tgt_in[:, 0]
        for t in range(tgt_in.size(1)):
            if t > 0:
                tokens = tgt_in[:, t]
                if feed_prediction is not None:
                    predicted = logits_steps[-1].squeeze(1).argmax(-1)
                    tokens = torch.where(feed_prediction[:, t], predicted, tokens)
            logits, attn, state = self._advance(tokens.unsqueeze(1), state)
            logits_steps.append(logits)
            attn_steps.append(attn)
        return torch.cat(logits_steps, dim=1), torch.cat(attn_steps, dim=1)

    # ---- one search step ---------------------------------------------------------------
    def step(
        self, tokens: torch.Tensor, state: DecoderState
    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """tokens (B,) -> log-probs (B, V) float32, new state, attention (B, S)."""
        logits, attn, state = self._advance(tokens.unsqueeze(1), state)
        return torch.log_softmax(logits.squeeze(1).float(), dim=-1), state, attn.squeeze(1)

    def _advance(
        self, tokens: torch.Tensor, state: DecoderState
    ) -> tuple[torch.Tensor, torch.Tensor, DecoderState]:
        """tokens (B, 1) -> logits (B, 1, V), attention (B, 1, S), the next state."""
        embedded = self.emb_dropout(self.embedding(tokens))  # (B, 1, E)
        if self.input_feeding:
            assert state.feed is not None
            embedded = torch.cat([embedded, state.feed.unsqueeze(1).to(embedded.dtype)], dim=-1)
        if self.training or tokens.size(0) > CELL_STEP_MAX_ROWS:
            hidden, (h, c) = self.rnn(embedded, (state.hidden, state.cell))
        else:
            hidden, h, c = self._cell_step(embedded.squeeze(1), state.hidden, state.cell)
        context, attn = self.attention(hidden, state.keys, state.memory, state.mask)
        attentional = self._attentional(hidden, context)
        feed = attentional.squeeze(1) if self.input_feeding else None
        logits = self.project(self.output_dropout(attentional))
        if self.copy:  # the word embedding alone, without the fed attentional vector
            embedded = embedded[..., : self.embedding.embedding_dim]
        logits = self._mix_copy(logits, attentional, context, embedded, attn, state)
        return logits, attn, replace(state, hidden=h, cell=c, feed=feed)

    def _mix_copy(
        self,
        logits: torch.Tensor,
        attentional: torch.Tensor,
        context: torch.Tensor,
        embedded: torch.Tensor,
        attn: torch.Tensor,
        state: DecoderState,
    ) -> torch.Tensor:
        """Without copying: ``logits`` (B, T, V). With it: float32 log-probabilities of
        p_gen * softmax(logits) + (1 - p_gen) * (attention (B, T, S) summed per source
        id). Log-probs pass through log_softmax unchanged, so loss and search need
        nothing else."""
        if self.copy_gate is None:
            return logits
        assert state.src is not None, "a copying decoder needs the source ids in its state"
        gate_in = torch.cat([attentional, context.to(attentional.dtype), embedded], dim=-1)
        p_gen = torch.sigmoid(self.copy_gate(gate_in).float())  # (B, T, 1)
        probs = torch.softmax(logits.float(), dim=-1) * p_gen
        index = state.src.unsqueeze(1).expand(-1, attn.size(1), -1)  # (B, T, S)
        probs = probs.scatter_add(2, index, attn.float() * (1.0 - p_gen))
        return torch.log(probs.clamp_min(1e-12))

    def _cell_step(
        self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One time step of ``self.rnn`` (no dropout: inference) as plain matmuls.

        x (B, E); h, c (L, B, H) -> top output (B, 1, H), new h, c (L, B, H). A call of
        ``nn.LSTM`` on one step costs ~2 ms on CPU whatever the batch (oneDNN sets up its
        primitive per call); this costs what the arithmetic costs.
        """
        new_h, new_c = [], []
        for layer, (w_ih, w_hh, b_ih, b_hh) in enumerate(self.rnn.all_weights):
            gates = F.linear(x, w_ih, b_ih) + F.linear(h[layer], w_hh, b_hh)
            i, f, g, o = gates.chunk(4, dim=1)  # nn.LSTM's gate order
            cell = torch.sigmoid(f) * c[layer] + torch.sigmoid(i) * torch.tanh(g)
            x = torch.sigmoid(o) * torch.tanh(cell)
            new_h.append(x)
            new_c.append(cell)
        return x.unsqueeze(1), torch.stack(new_h), torch.stack(new_c)

    def _attentional(self, hidden: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """(B, T, H), (B, T, M) -> o (B, T, O)."""
        return torch.tanh(self.combine(torch.cat([hidden, context.to(hidden.dtype)], dim=-1)))
