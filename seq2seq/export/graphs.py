"""The model as two traceable graphs for ONNX: the encoder, and one decoder step.

Both compute what ``EncoderDecoder`` computes in eval mode, written with plain tensor ops
whose shapes stay symbolic under tracing (batch, source length, hypotheses per source,
output rows), so one exported file serves every batch:

- ``EncoderGraph``: src (B, S) int64, lengths (B,) int64 -> memory (B, S, M), attention
  keys (B, S, K), mask (B, S) bool, the decoder's initial hidden and cell (L, B, H). The
  bidirectional LSTM reads a packed batch, which the exporter writes as ONNX ``LSTM``
  nodes with ``sequence_lens``: each sentence's backward direction and final states are
  its own, whatever the padding.
- ``StepGraph``: one search step for R hypotheses grouped R / B per source (a beam's K
  hypotheses share their source's memory, as in ``DecoderState.select``). The output
  layer's weight and bias are inputs, not constants: the full layer, or the rows of a
  vocabulary shortlist (search/shortlist.py), go through the same graph.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seq2seq.data.tokenizer import PAD_ID
from seq2seq.kernels.step_lstm import MAX_TABLE_BYTES, lstm_cell
from seq2seq.model.decoder import Decoder
from seq2seq.model.encoder_decoder import EncoderDecoder

# int8 weights use +-63 steps: on x86 CPUs without VNNI, ONNX Runtime multiplies uint8 by
# int8 with an instruction that adds pairs of products in 16 bits and saturates when both
# are large (255 x 127 x 2 > 32,767). Measured on the AVX2 CPU here, a (320, 256) x (256,
# 1,728) product: largest error 1.17 with 127 steps, 0.16 with 63 (logits up to 9.2).
INT8_LEVELS = 63.0
# the step graph's penalty input over whole rows (no shortlist): it broadcasts
NO_PENALTY = torch.zeros(1, 1)


def quantize_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """An output layer's weight (V, O) as int8 (V, O), symmetric, one scale per row (V,)."""
    scale = weight.abs().amax(dim=1).clamp_min(1e-12) / INT8_LEVELS
    quantized = torch.round(weight / scale.unsqueeze(1)).clamp(-INT8_LEVELS, INT8_LEVELS)
    return quantized.to(torch.int8), scale.float()


def int8_layer_inputs(
    weight: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The int8 step's output-layer inputs from ``quantize_rows``' rows weight (V', O)
    int8 and scale (V',), and bias (V',): the weight as columns (O, V')."""
    return {"out_weight": weight.t().contiguous(), "out_scale": scale, "out_bias": bias}


class Int8Projection(torch.autograd.Function):
    """features (R, O) x weight (O, V') int8 with a scale per column (V',), plus bias
    (V',) -> float32 logits (R, V'). Traced as ONNX Runtime's DynamicQuantizeMatMul: the
    features quantized to uint8 per call, the product in integers, then scaled."""

    @staticmethod
    def forward(
        ctx: object,
        features: torch.Tensor,
        weight: torch.Tensor,
        scale: torch.Tensor,
        bias: torch.Tensor,
    ) -> torch.Tensor:
        return torch.addmm(bias, features, weight.float() * scale)

    @staticmethod
    def symbolic(
        g: Any,  # the exporter's graph context
        features: torch.Value,
        weight: torch.Value,
        scale: torch.Value,
        bias: torch.Value,
    ) -> torch.Value:
        zero = g.op("Constant", value_t=torch.tensor(0, dtype=torch.int8))
        return g.op("com.microsoft::DynamicQuantizeMatMul", features, weight, scale, zero, bias)


class EncoderGraph(nn.Module):
    """``model.encode`` followed by ``model.init_state``'s bridge and attention keys."""

    input_names = ("src", "lengths")
    output_names = ("memory", "keys", "mask", "hidden", "cell")

    def __init__(self, model: EncoderDecoder) -> None:
        super().__init__()
        self.encoder = model.encoder
        self.bridge = model.bridge
        self.attention = model.decoder.attention

    def forward(
        self, src: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        embedded = self.encoder.embedding(src)  # (B, S, E)
        packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
        out, (h, c) = self.encoder.rnn(packed)
        memory, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))
        hidden, cell = self.bridge((self.encoder._join(h), self.encoder._join(c)))
        return memory, self.attention.keys(memory), src != PAD_ID, hidden, cell


def step_input_names(decoder: Decoder, int8_output: bool = False) -> tuple[str, ...]:
    """The step graph's inputs for ``decoder`` (without building the graph's weights)."""
    names = ["tokens", "hidden", "cell"]
    names += ["feed"] if decoder.input_feeding else []
    names += ["memory", "keys", "mask"]
    names += ["copy_index"] if decoder.copy else []
    names += ["out_weight", "out_scale"] if int8_output else ["out_weight"]
    return (*names, "out_bias", "penalty")


def step_output_names(decoder: Decoder) -> tuple[str, ...]:
    feed = ("feed_out",) if decoder.input_feeding else ()
    return ("log_probs", "hidden_out", "cell_out", *feed, "attention")


class StepGraph(nn.Module):
    """``Decoder.step`` for R hypotheses over B sources (R = B * g), returning log-probs.

    Inputs, in ``input_names`` order: tokens (R,) int64; hidden, cell (L, R, H); feed
    (R, O) with input feeding; memory (B, S, M); keys (B, S, K); mask (B, S) bool;
    copy_index (B, S) int64 with copy attention (each source token's output row: its id,
    or its position in a shortlist); out_weight (V', O), or with ``int8_output`` (O, V')
    int8 and out_scale (V',) (``quantize_rows``, transposed); out_bias (V',); penalty
    (R, V') float32 added before normalising: 0 where a row may go, -inf where not (a
    shortlist's rows, each normalised over its own sentence's candidates), or
    ``NO_PENALTY`` (1, 1) zeros for none (it broadcasts).
    Outputs: log_probs (R, V') float32; hidden, cell; feed with input feeding; attention
    (R, S).
    """

    word_table: torch.Tensor  # (V, 4H), or word (4H, E) and word_bias (4H,): buffers
    word: torch.Tensor
    word_bias: torch.Tensor
    first: torch.Tensor

    def __init__(self, model: EncoderDecoder, int8_output: bool = False) -> None:
        super().__init__()
        decoder = model.decoder
        self.decoder = decoder
        self.int8_output = int8_output
        self.input_feeding = decoder.input_feeding
        self.copy = decoder.copy
        emb_dim = decoder.embedding.embedding_dim
        layers = decoder.rnn.all_weights  # per layer [w_ih, w_hh, b_ih, b_hh]
        w_ih, w_hh, b_ih, b_hh = (t.detach() for t in layers[0])
        vocab, gates = decoder.embedding.num_embeddings, w_ih.size(0)
        # as search lays the first layer out (kernels/step_lstm.py): the embedding's share
        # of its gates looked up from a (V, 4H) table where that is small enough
        self.use_table = vocab * gates * 4 <= MAX_TABLE_BYTES
        word = w_ih[:, :emb_dim]
        if self.use_table:
            table = F.linear(decoder.embedding.weight.detach(), word, b_ih + b_hh)
            self.register_buffer("word_table", table)
        else:
            self.register_buffer("word", word.contiguous())
            self.register_buffer("word_bias", b_ih + b_hh)
        first = torch.cat([w_ih[:, emb_dim:], w_hh], dim=1).contiguous()  # over [feed; h]
        self.register_buffer("first", first)
        self.upper_layers = len(layers) - 1
        for layer, (w_i, w_h, b_i, b_h) in enumerate(layers[1:], start=1):
            weight = torch.cat([w_i, w_h], 1).detach().contiguous()  # over [input; h]
            self.register_buffer(f"upper_weight_{layer}", weight)
            self.register_buffer(f"upper_bias_{layer}", (b_i + b_h).detach())

    @property
    def input_names(self) -> tuple[str, ...]:
        return step_input_names(self.decoder, self.int8_output)

    @property
    def output_names(self) -> tuple[str, ...]:
        return step_output_names(self.decoder)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        named = dict(zip(self.input_names, inputs, strict=True))
        tokens, hidden, cell = named["tokens"], named["hidden"], named["cell"]
        top, new_h, new_c = self._lstm(tokens, named.get("feed"), hidden, cell)
        memory, mask = named["memory"], named["mask"]
        batch, rows = memory.size(0), top.size(0)
        query = top.reshape(batch, -1, top.size(-1))  # (B, g, H): a source's hypotheses
        scores = self.decoder.attention.scores(query, named["keys"])  # (B, g, S)
        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        context = torch.bmm(weights, memory).reshape(rows, -1)  # (R, M)
        attn = weights.reshape(rows, -1)  # (R, S)
        attentional = torch.tanh(self.decoder.combine(torch.cat([top, context], dim=1)))
        logits = self._logits(attentional, named)  # (R, V')
        if self.copy:  # log-probs over V', which the log_softmax below leaves as they are
            embedded = self.decoder.embedding(tokens)
            logits = self._mix_copy(logits, attentional, context, embedded, weights, named)
        log_probs = torch.log_softmax(logits + named["penalty"], dim=-1)
        feed = (attentional,) if self.input_feeding else ()
        return (log_probs, new_h, new_c, *feed, attn)

    def _logits(self, features: torch.Tensor, named: dict[str, torch.Tensor]) -> torch.Tensor:
        """features (R, O) -> the output layer's logits (R, V')."""
        weight, bias = named["out_weight"], named["out_bias"]
        if self.int8_output:
            return Int8Projection.apply(features, weight, named["out_scale"], bias)
        return F.linear(features, weight, bias)

    def _lstm(
        self,
        tokens: torch.Tensor,
        feed: torch.Tensor | None,
        hidden: torch.Tensor,
        cell: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """tokens (R,), feed (R, O) or None, hidden and cell (L, R, H) -> the top
        layer's output (R, H), the new hidden and cell (L, R, H)."""
        if self.use_table:
            word_gates = self.word_table[tokens]
        else:
            word_gates = F.linear(self.decoder.embedding(tokens), self.word, self.word_bias)
        recurrent = hidden[0] if feed is None else torch.cat([feed, hidden[0]], dim=1)
        x, c = lstm_cell(word_gates + F.linear(recurrent, self.first), cell[0])
        new_h, new_c = [x], [c]
        for layer in range(1, self.upper_layers + 1):
            weight, bias = (
                self.get_buffer(f"upper_weight_{layer}"),
                self.get_buffer(f"upper_bias_{layer}"),
            )
            x, c = lstm_cell(F.linear(torch.cat([x, hidden[layer]], 1), weight, bias), cell[layer])
            new_h.append(x)
            new_c.append(c)
        return x, torch.stack(new_h), torch.stack(new_c)

    def _mix_copy(
        self,
        logits: torch.Tensor,
        attentional: torch.Tensor,
        context: torch.Tensor,
        embedded: torch.Tensor,
        weights: torch.Tensor,
        named: dict[str, torch.Tensor],
    ) -> torch.Tensor:
        """The copying decoder's log-probs (R, V'): p_gen * softmax(logits) + (1 - p_gen)
        * attention summed onto each source token's row (``Decoder._mix_copy``).
        weights (B, g, S): the attention, grouped per source."""
        assert self.decoder.copy_gate is not None
        gate_in = torch.cat([attentional, context, embedded], dim=1)
        p_gen = torch.sigmoid(self.decoder.copy_gate(gate_in))  # (R, 1)
        probs = torch.softmax(logits, dim=-1) * p_gen  # (R, V')
        grouped = probs.reshape(weights.size(0), -1, probs.size(-1))  # (B, g, V')
        copied = weights * (1.0 - p_gen).reshape(weights.size(0), -1, 1)  # (B, g, S)
        index = named["copy_index"].unsqueeze(1).expand_as(weights)
        mixed = grouped.scatter_add(2, index, copied).reshape(probs.shape)
        return torch.log(mixed.clamp_min(1e-12))
