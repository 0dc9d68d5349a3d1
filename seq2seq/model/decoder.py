"""The attentional LSTM decoder (Luong style), with and without input feeding.

One step:  h_t = LSTM([emb(y_{t-1}); o_{t-1}?], h_{t-1})      o_{t-1} only with input feeding
           c_t, a_t = attention(h_t, memory)
           o_t = tanh(W [h_t; c_t])                           the "attentional hidden"
           p(y_t) = softmax(W_out dropout(o_t))

Without input feeding h_t does not depend on o_{t-1}, so teacher forcing runs one ``nn.LSTM``
call over the whole target and attends for all steps at once (the fast path). With it,
training steps through time. Both must agree with ``step``."""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from seq2seq.kernels.dropout import Dropout, dropout, dropout_mask, locked_dropout
from seq2seq.kernels.input_feeding import InputFeedingLoop
from seq2seq.kernels.int8 import Int8Linear
from seq2seq.kernels.logits import float32_logits
from seq2seq.kernels.recurrent_dropout import locked_layers, weight_dropped
from seq2seq.kernels.rnn_precision import lstm_precision
from seq2seq.kernels.step_lstm import StepWeights, lstm_cell, lstm_step, step_weights
from seq2seq.model.attention import Attention
from seq2seq.model.copy_gate import CopyGate
from seq2seq.model.decoder_state import DecoderState
from seq2seq.model.output_rows import OutputRows, output_rows


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
        weight_drop: float = 0.0,
        locked_dropout: bool = False,
    ) -> None:
        super().__init__()
        emb_dim = embedding.embedding_dim
        vocab = embedding.num_embeddings
        self.embedding = embedding
        self.attention = attention
        self.input_feeding = input_feeding
        self.output_dim = emb_dim if tie_embeddings else hidden_dim
        self.emb_dropout = Dropout(emb_dropout)
        self.rnn = nn.LSTM(
            emb_dim + (self.output_dim if input_feeding else 0),
            hidden_dim,
            num_layers=layers,
            dropout=dropout if layers > 1 else 0.0,
            batch_first=True,
        )
        self.combine = nn.Linear(hidden_dim + memory_dim, self.output_dim, bias=False)
        self.weight_drop = weight_drop
        if locked_dropout and input_feeding:
            raise ValueError("locked dropout needs a decoder without input feeding")
        self.locked_dropout = locked_dropout
        self.output_dropout = Dropout(output_dropout)
        self.project = nn.Linear(self.output_dim, vocab, bias=True)
        if tie_embeddings:
            self.project.weight = embedding.weight
        self.copy = copy
        self.copy_gate = CopyGate(self.output_dim, memory_dim, emb_dim) if copy else None
        self._step_weights: StepWeights | None = None  # laid out for search, see step_lstm
        self.int8_steps = False  # search steps multiply in int8: see use_int8_steps

    def train(self, mode: bool = True) -> Decoder:
        """Switching mode also forgets the weights laid out for search: training changes
        the weights, and a fused optimizer step does so without bumping their version
        counters. (Staying in eval keeps them: a translator calls ``eval()`` per batch.)"""
        if mode != self.training:
            self._step_weights = None
        return super().train(mode)

    def use_int8_steps(self) -> None:
        """From now on search steps multiply in int8 (kernels/int8.py, CPU with oneDNN):
        the attentional layer and the output projection, and the LSTM layers as laid out
        for search. For a float32 decoder in eval mode (model/quantize.py makes a copy)."""
        # add_module replaces the registered layer (plain assignment would not type-check)
        self.add_module("combine", Int8Linear(self.combine.weight))
        self.add_module("project", Int8Linear(self.project.weight, self.project.bias))
        self.int8_steps = True
        self._step_weights = None

    def fused_projection(self) -> nn.Linear | None:
        """The output layer a loss may fuse with its own computation (training/loss.py),
        or None where the output is more than a projection (copy attention mixes it)."""
        if self.copy or not isinstance(self.project, nn.Linear):
            return None
        return self.project

    # ---- teacher forcing ---------------------------------------------------------------
    def forward(
        self,
        tgt_in: torch.Tensor,
        state: DecoderState,
        feed_prediction: torch.Tensor | None = None,
        project: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """tgt_in (B, T) -> logits (B, T, V) and attention (B, T, S).

        ``feed_prediction`` (B, T) bool, only with input feeding: where True, step t reads
        the model's own argmax from step t-1 instead of ``tgt_in[:, t]`` (scheduled sampling).
        ``project=False`` returns the output layer's input (B, T, O), dropout applied, in
        place of the logits, for a loss that projects it itself (not with copying).
        """
        if self.copy and not project:
            raise ValueError("a copying decoder mixes its logits: it cannot skip projecting")
        if not self.input_feeding:
            return self._parallel_forward(tgt_in, state, project)
        if feed_prediction is None and self.attention.scores_are_products:
            return self._fused_feeding_forward(tgt_in, state, project)
        return self._feeding_forward(tgt_in, state, feed_prediction, project)

    def _parallel_forward(
        self, tgt_in: torch.Tensor, state: DecoderState, project: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher forcing without input feeding (layer by layer with ``locked_dropout``):
        (B, T) -> logits (B, T, V), attention (B, T, S), attending for all T at once."""
        locked = self.locked_dropout and self.training
        embedded = _drop(self.embedding(tgt_in), self.emb_dropout, locked)
        with lstm_precision(embedded) as cast:  # kernels/rnn_precision.py
            inputs = (cast(embedded), (cast(state.hidden), cast(state.cell)))
            dropped = self._dropped_recurrent_weights()
            if locked:
                hidden = locked_layers(self.rnn, *inputs, dropped, True)
            elif dropped:  # the LSTM run with these in place of its own
                hidden, _ = functional_call(self.rnn, dropped, inputs)
            else:
                hidden, _ = self.rnn(*inputs)
        context, attn = self.attention(hidden, state.keys, state.memory, state.mask)
        attentional = self._attentional(hidden, context)
        features = _drop(attentional, self.output_dropout, locked)
        if not project:
            return features, attn
        logits = self.project(features)
        return self._mix_copy(logits, attentional, context, embedded, attn, state), attn

    def _feeding_forward(
        self,
        tgt_in: torch.Tensor,
        state: DecoderState,
        feed_prediction: torch.Tensor | None,
        project: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher forcing with input feeding: (B, T) -> logits (B, T, V), attention (B, T, S).

        The recurrence goes through the attention, so it steps through time, but only what
        must: the embedding's share of the first layer's gates is one product over all T
        steps, each layer multiplies [input; h] by one concatenated weight, and the output
        projection runs once after the loop. (Calling ``nn.LSTM`` per step costs oneDNN's
        set-up per call, forward and backward: this path trained 1.4x faster on 2 cores.)
        """
        embedded, word_gates, first, upper = self._feeding_weights(tgt_in)
        w_ih, _, b_ih, b_hh = self.rnn.all_weights[0]
        emb_dim = self.embedding.embedding_dim
        # the recurrent weights cast (autocast) once, not at every step
        dtype = word_gates.dtype
        first = first.to(dtype)
        upper = [(weight.to(dtype), bias.to(dtype)) for weight, bias in upper]
        hidden, cell = list(state.hidden.unbind(0)), list(state.cell.unbind(0))
        feed = state.feed
        assert feed is not None
        outputs: list[torch.Tensor] = []
        contexts: list[torch.Tensor] = []
        attns: list[torch.Tensor] = []
        features: list[torch.Tensor] = []
        logits_steps: list[torch.Tensor] = []
        words = list(embedded.unbind(1))  # what each step reads, for a copying decoder
        for t in range(tgt_in.size(1)):
            gates = word_gates[:, t]
            if feed_prediction is not None and t > 0:  # scheduled sampling: maybe our own guess
                predicted = logits_steps[-1].squeeze(1).argmax(-1)
                tokens = torch.where(feed_prediction[:, t], predicted, tgt_in[:, t])
                own = self.emb_dropout(self.embedding(tokens))  # (B, E)
                gates = F.linear(own, w_ih[:, :emb_dim], b_ih + b_hh)
                words[t] = own
            x = self._layers_step(gates, feed.to(dtype), hidden, cell, first, upper)
            query = x.unsqueeze(1)  # (B, 1, H)
            context, attn = self.attention(query, state.keys, state.memory, state.mask)
            attentional = self._attentional(query, context)  # (B, 1, O)
            feed = attentional.squeeze(1)
            outputs.append(attentional)
            contexts.append(context)
            attns.append(attn)
            if feed_prediction is not None:  # the next step needs this one's prediction
                features.append(self.output_dropout(attentional))
                logits_steps.append(self.project(features[-1]))
        attentional = torch.cat(outputs, dim=1)
        attn = torch.cat(attns, dim=1)
        dropped = torch.cat(features, 1) if features else self.output_dropout(attentional)
        if not project:
            return dropped, attn
        logits = torch.cat(logits_steps, dim=1) if logits_steps else self.project(dropped)
        if self.copy:
            embedded = torch.stack(words, dim=1)
        logits = self._mix_copy(logits, attentional, torch.cat(contexts, 1), embedded, attn, state)
        return logits, attn

    def _layers_step(
        self,
        gates: torch.Tensor,
        feed: torch.Tensor,
        hidden: list[torch.Tensor],
        cell: list[torch.Tensor],
        first: torch.Tensor,
        upper: list[tuple[torch.Tensor, torch.Tensor]],
    ) -> torch.Tensor:
        """One step of the LSTM layers under input feeding: gates (B, 4H) the first
        layer's share from its input word, feed (B, O); ``hidden`` and ``cell`` (one
        (B, H) per layer) are updated in place. Returns the top layer's output (B, H)."""
        dtype = gates.dtype
        gates = gates + F.linear(torch.cat([feed, hidden[0].to(dtype)], dim=1), first)
        hidden[0], cell[0] = lstm_cell(gates, cell[0])
        x = hidden[0]
        for layer, (weight, bias) in enumerate(upper, start=1):
            x = dropout(x, self.rnn.dropout, self.training)
            gates = F.linear(torch.cat([x.to(dtype), hidden[layer].to(dtype)], 1), weight, bias)
            hidden[layer], cell[layer] = lstm_cell(gates, cell[layer])
            x = hidden[layer]
        return x

    def _feeding_weights(
        self, tgt_in: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """What both input-feeding loops start from: the dropped-out embeddings (B, T, E);
        the embedding's share of the first layer's gates for all steps at once, biases
        included (B, T, 4H); the first layer's weight over [feed; h] (4H, O+H); and per
        upper layer its weight over [input; h] (4H, 2H) with its summed bias (4H,)."""
        emb_dim = self.embedding.embedding_dim
        dropped = self._dropped_recurrent_weights()
        layers = [  # per layer [w_ih, w_hh, b_ih, b_hh]
            [w_i, dropped.get(f"weight_hh_l{k}", w_h), b_i, b_h]
            for k, (w_i, w_h, b_i, b_h) in enumerate(self.rnn.all_weights)
        ]
        w_ih, w_hh, b_ih, b_hh = layers[0]
        embedded = self.emb_dropout(self.embedding(tgt_in))
        word_gates = F.linear(embedded, w_ih[:, :emb_dim], b_ih + b_hh)
        first = torch.cat([w_ih[:, emb_dim:], w_hh], dim=1)
        upper = [(torch.cat([w_i, w_h], dim=1), b_i + b_h) for w_i, w_h, b_i, b_h in layers[1:]]
        return embedded, word_gates, first, upper

    def _dropped_recurrent_weights(self) -> dict[str, torch.Tensor]:
        """In training with ``weight_drop``: the recurrent matrices with DropConnect, by
        name (kernels/recurrent_dropout.py); empty otherwise."""
        if not (self.training and self.weight_drop > 0.0):
            return {}
        return weight_dropped(self.rnn, self.weight_drop)

    def _fused_feeding_forward(
        self, tgt_in: torch.Tensor, state: DecoderState, project: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """What ``_feeding_forward`` computes, with the loop as one autograd node whose
        backward is written by hand (``InputFeedingLoop``)."""
        embedded, word_gates, first, upper = self._feeding_weights(tgt_in)
        weights = [first, *(tensor for pair in upper for tensor in pair)]
        batch, steps = tgt_in.shape
        p = self.rnn.dropout if self.training else 0.0
        drop = None
        if upper and p > 0.0:
            shape = (len(upper), steps, batch, self.rnn.hidden_size)
            drop = dropout_mask(shape, p, word_gates.dtype, tgt_in.device)
        mask_bias = torch.zeros(state.mask.shape, dtype=torch.float32, device=tgt_in.device)
        mask_bias.masked_fill_(~state.mask, float("-inf"))
        assert state.feed is not None
        out, context, attn = InputFeedingLoop.apply(
            word_gates.transpose(0, 1),
            state.feed,
            state.hidden,
            state.cell,
            state.keys,
            state.memory,
            mask_bias,
            drop,
            self.combine.weight,
            *weights,
        )
        attentional, attn = out.transpose(0, 1), attn.transpose(0, 1)  # (B, T, O), (B, T, S)
        features = self.output_dropout(attentional)
        if not project:
            return features, attn
        logits = self._mix_copy(
            self.project(features), attentional, context.transpose(0, 1), embedded, attn, state
        )
        return logits, attn

    # ---- one search step ---------------------------------------------------------------
    def step(
        self,
        tokens: torch.Tensor,
        state: DecoderState,
        rows: OutputRows | None = None,
        penalty: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """tokens (B,) -> log-probs (B, V) float32, new state, attention (B, S). With
        ``rows`` (see ``output_rows``) the log-probs cover their V' ids only: (B, V').
        ``penalty`` (B, V') is added before normalising: 0 where a row may go, -inf where
        not (a shortlist's rows, each normalised over its own sentence's candidates)."""
        logits, attn, state = self._advance(tokens.unsqueeze(1), state, rows)
        logits = logits.squeeze(1)  # float32, and ours: searching, normalise it in place
        if torch.is_grad_enabled():
            if penalty is not None:
                logits = logits + penalty
            return torch.log_softmax(logits, dim=-1), state, attn.squeeze(1)
        if penalty is not None:
            logits.add_(penalty)
        return torch.log_softmax(logits, dim=-1, out=logits), state, attn.squeeze(1)

    def output_rows(self, ids: torch.Tensor) -> OutputRows:
        """The output layer's rows for target ids ``ids`` (V',), for a search that
        scores only those (search/shortlist.py)."""
        return output_rows(self.project, ids)

    def _advance(
        self, tokens: torch.Tensor, state: DecoderState, rows: OutputRows | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, DecoderState]:
        """tokens (B, 1) -> new float32 logits (B, 1, V) (or (B, 1, V') over ``rows``),
        attention (B, 1, S), the next state."""
        laid_out = not self.training
        embedded = None  # (B, 1, E): the LSTM's input, unless laid out; the copy gate's
        if self.copy or not laid_out:
            embedded = self.emb_dropout(self.embedding(tokens))
        if laid_out:
            self._step_weights = step_weights(
                self.rnn, self.embedding, self._step_weights, self.int8_steps
            )
            top, h, c = lstm_step(
                self._step_weights,
                self.embedding,
                tokens.squeeze(1),
                state.feed if self.input_feeding else None,
                state.hidden,
                state.cell,
            )
            hidden = top.unsqueeze(1)  # (B, 1, H)
        else:
            assert embedded is not None
            rnn_in = embedded
            if self.input_feeding:
                assert state.feed is not None
                fed = state.feed.unsqueeze(1).to(embedded.dtype)
                rnn_in = torch.cat([embedded, fed], dim=-1)
            with lstm_precision(rnn_in) as cast:
                hidden, (h, c) = self.rnn(cast(rnn_in), (cast(state.hidden), cast(state.cell)))
        context, attn = self.attention(hidden, state.keys, state.memory, state.mask)
        attentional = self._attentional(hidden, context)
        feed = attentional.squeeze(1) if self.input_feeding else None
        logits = self._step_logits(self.output_dropout(attentional), rows)
        if embedded is not None:
            positions = None if rows is None else rows.positions
            logits = self._mix_copy(logits, attentional, context, embedded, attn, state, positions)
        return logits, attn, replace(state, hidden=h, cell=c, feed=feed)

    def _step_logits(self, features: torch.Tensor, rows: OutputRows | None) -> torch.Tensor:
        """features (B, 1, O) -> float32 logits (B, 1, V) (or V' over ``rows``), new."""
        if rows is not None:
            return rows.logits(features)
        if isinstance(self.project, Int8Linear):
            return self.project(features).float()  # a new float32 tensor
        return float32_logits(features, self.project.weight, self.project.bias)

    def _mix_copy(
        self,
        logits: torch.Tensor,
        attentional: torch.Tensor,
        context: torch.Tensor,
        embedded: torch.Tensor,
        attn: torch.Tensor,
        state: DecoderState,
        positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Without copying: ``logits`` (B, T, V). With it: the copy-mixed float32
        log-probabilities (``CopyGate.mix``), which pass log_softmax unchanged."""
        if self.copy_gate is None:
            return logits
        assert state.src is not None, "a copying decoder needs the source ids in its state"
        src = state.src if state.group == 1 else state.src.repeat_interleave(state.group, 0)
        return self.copy_gate.mix(logits, (attentional, context, embedded), attn, src, positions)

    def _attentional(self, hidden: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """(B, T, H), (B, T, M) -> o (B, T, O)."""
        return torch.tanh(self.combine(torch.cat([hidden, context.to(hidden.dtype)], dim=-1)))


def _drop(x: torch.Tensor, dropout: Dropout, locked: bool) -> torch.Tensor:
    """x (B, T, D) through ``dropout``, or with its rate and one mask per sequence."""
    return locked_dropout(x, dropout.p, True) if locked else dropout(x)
