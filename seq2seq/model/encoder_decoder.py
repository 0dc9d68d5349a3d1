"""The whole model, the decoder contract search relies on, and ``build_model``.

Contract (greedy, beam and sampling use nothing else):
    memory = model.encode(src, src_lengths)
    state  = model.init_state(memory)
    log_probs, state, attention = model.step(tokens, state)
    state  = model.reorder(state, index, same_sources=False, sources=None)
``same_sources=True`` promises that row j and row index[j] read the same source (a beam
reordering its own hypotheses): a model may then keep its source-side tensors as they are.
``sources`` (B',) promises that the R' = B' * g rows of ``index`` come in groups of g
reading source ``sources[i]`` (a beam's K hypotheses): a model may keep one copy of each
source's tensors per group. A model is free to ignore both promises.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

from seq2seq.config import ConfigError
from seq2seq.config import Model as ModelConfig
from seq2seq.data.tokenizer import PAD_ID
from seq2seq.model.attention import build_attention
from seq2seq.model.decoder import Decoder
from seq2seq.model.decoder_state import DecoderState
from seq2seq.model.encoder import Bridge, Encoder
from seq2seq.model.output_rows import OutputRows


@dataclass
class EncoderOutput:
    """memory (B, S, M); mask (B, S) True at real tokens; final (h, c) each (L, B, M);
    src (B, S) the source ids (a copying decoder scatters attention onto them)."""

    memory: torch.Tensor
    mask: torch.Tensor
    final: tuple[torch.Tensor, torch.Tensor]
    src: torch.Tensor


class EncoderDecoder(nn.Module):
    def __init__(self, encoder: Encoder, bridge: Bridge, decoder: Decoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.bridge = bridge
        self.decoder = decoder
        # set where the encoder runs in another dtype than the rest (an int8 model's bf16
        # encoder, see quantize): its outputs are cast to this
        self.encoder_output_dtype: torch.dtype | None = None

    # ---- the decoder contract ----------------------------------------------------------
    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> EncoderOutput:
        """src (B, S) ids, src_lengths (B,) on CPU."""
        memory, final = self.encoder(src, src_lengths)
        dtype = self.encoder_output_dtype
        if dtype is not None:
            memory, final = memory.to(dtype), (final[0].to(dtype), final[1].to(dtype))
        return EncoderOutput(memory, src != PAD_ID, final, src)

    def init_state(self, encoded: EncoderOutput) -> DecoderState:
        hidden, cell = self.bridge(encoded.final)
        feed = None
        if self.decoder.input_feeding:
            feed = encoded.memory.new_zeros(encoded.memory.size(0), self.decoder.output_dim)
        memory, keys = encoded.memory, self.decoder.attention.keys(encoded.memory)
        if not self.training and memory.dtype != torch.float32:
            # searching a bf16/fp16 model: the attention products run in float32. Their
            # shapes change with every batch and step, and each new shape costs oneDNN a
            # kernel compilation in bf16; float32 products (MKL) compile nothing
            memory, keys = memory.float(), keys.float()
        src = encoded.src if self.decoder.copy else None
        return DecoderState(hidden, cell, feed, memory, keys, encoded.mask, src)

    def step(
        self,
        tokens: torch.Tensor,
        state: DecoderState,
        rows: OutputRows | None = None,
        penalty: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """tokens (B,) -> log-probs (B, V), next state, attention (B, S); over the ids of
        ``rows`` only (B, V') with them (a vocabulary shortlist), ``penalty`` (B, V')
        added before normalising (``Decoder.step``)."""
        return self.decoder.step(tokens, state, rows, penalty)

    def output_rows(self, ids: torch.Tensor) -> OutputRows:
        """The output layer for target ids ``ids`` (V',) only, for ``step``."""
        return self.decoder.output_rows(ids)

    def reorder(
        self,
        state: DecoderState,
        index: torch.Tensor,
        same_sources: bool = False,
        sources: torch.Tensor | None = None,
    ) -> DecoderState:
        """Select (or repeat) hypotheses: index (R',) into the hypothesis dim. The
        source-side tensors follow ``index``, or stay (``same_sources``: a beam reordering
        its own), or keep rows ``sources`` (B',) with R' = B' * g hypotheses grouped g per
        source (see ``DecoderState.select``)."""
        return state.select(index, same_sources, sources)

    def join(self, state: DecoderState, other: DecoderState) -> DecoderState:
        """The rows of ``state``, then those of ``other``: one hypothesis per source row
        in each, source widths free (a row loop adding sentences as others end)."""
        return state.join(other)

    # ---- training ----------------------------------------------------------------------
    def forward(
        self,
        src: torch.Tensor,
        src_lengths: torch.Tensor,
        tgt_in: torch.Tensor,
        teacher_forcing: float = 1.0,
        project: bool = True,
    ) -> torch.Tensor:
        """Teacher-forced logits (B, T, V) for decoder input ``tgt_in`` (B, T); with
        ``project=False`` the output layer's input (B, T, O) instead (see ``Decoder``).

        With ``teacher_forcing`` < 1 each input token after BOS is replaced, with
        probability 1 - teacher_forcing, by the model's own greedy prediction (scheduled
        sampling). An input-feeding decoder does this step by step, reading its own
        previous output; the fast path uses two passes (predict with a teacher-forced pass
        without gradients, then train on the mixed input), which keeps one LSTM call.
        """
        state = self.init_state(self.encode(src, src_lengths))
        if teacher_forcing >= 1.0:
            return self.decoder(tgt_in, state, project=project)[0]
        use_prediction = torch.rand(tgt_in.shape, device=tgt_in.device) >= teacher_forcing
        use_prediction[:, 0] = False
        use_prediction &= tgt_in != PAD_ID
        if self.decoder.input_feeding:
            return self.decoder(tgt_in, state, feed_prediction=use_prediction, project=project)[0]
        with torch.no_grad():
            predicted = self.decoder(tgt_in, state)[0].argmax(-1)  # (B, T): guess for t+1
        mixed = tgt_in.clone()
        mixed[:, 1:] = torch.where(use_prediction[:, 1:], predicted[:, :-1], tgt_in[:, 1:])
        return self.decoder(mixed, state, project=project)[0]


def build_model(cfg: ModelConfig, src_vocab: int, tgt_vocab: int) -> EncoderDecoder:
    """The model the recipe's ``model`` section describes. Sizes whose float32 weights
    alone would not fit in this machine's memory are a ``ConfigError`` (counted on the
    meta device, which allocates nothing), not an allocator's traceback."""
    memory = _physical_memory()
    if not memory or _size_bound(cfg, max(src_vocab, tgt_vocab)) * 4 * 8 < memory:
        return _assemble(cfg, src_vocab, tgt_vocab)  # surely fits: skip the exact count
    with torch.device("meta"):  # costs ~2 s (torch imports its compiler for it)
        size = count_parameters(_assemble(cfg, src_vocab, tgt_vocab))
    if size * 4 > memory:
        raise ConfigError(
            f"model: {size:,} parameters need {size * 4 / 2**30:,.1f} GiB for the weights "
            f"alone; this machine has {memory / 2**30:,.1f} GiB (smaller emb_dim, hidden_dim, "
            "layers or tokenizer.vocab_size?)"
        )
    return _assemble(cfg, src_vocab, tgt_vocab)


def _size_bound(cfg: ModelConfig, vocab: int) -> int:
    """An upper bound on the parameter count, from the sizes alone: embeddings and output
    layer, every LSTM layer as if as wide as the widest, attention and bridges."""
    enc, dec = cfg.encoder, cfg.decoder
    width = max(cfg.emb_dim, 2 * enc.hidden_dim, dec.hidden_dim)
    layers = max(enc.layers, dec.layers)
    lstm = 2 * layers * (16 * width * width + 16 * width)  # both directions, and the decoder
    return 2 * vocab * cfg.emb_dim + vocab * width + lstm + 10 * width * width + 10 * width


def _physical_memory() -> int:
    """Bytes of RAM, or 0 where the platform does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def _assemble(cfg: ModelConfig, src_vocab: int, tgt_vocab: int) -> EncoderDecoder:
    src_emb = nn.Embedding(src_vocab, cfg.emb_dim, padding_idx=PAD_ID)
    if cfg.share_embeddings:
        if src_vocab != tgt_vocab:
            raise ValueError("model.share_embeddings needs one vocabulary for source and target")
        tgt_emb = src_emb
    else:
        tgt_emb = nn.Embedding(tgt_vocab, cfg.emb_dim, padding_idx=PAD_ID)
    embeddings = list({id(src_emb): src_emb, id(tgt_emb): tgt_emb}.values())
    for emb in embeddings:
        nn.init.normal_(emb.weight, mean=0.0, std=cfg.emb_dim**-0.5)
    _zero_padding(embeddings)
    enc, dec = cfg.encoder, cfg.decoder
    encoder = Encoder(
        src_emb, enc.hidden_dim, enc.layers, enc.dropout, cfg.emb_dropout, enc.bidirectional
    )
    bridge = Bridge(dec.bridge, encoder.output_dim, dec.hidden_dim, enc.layers, dec.layers)
    attention = build_attention(dec.attention, dec.hidden_dim, encoder.output_dim)
    decoder = Decoder(
        tgt_emb,
        attention,
        memory_dim=encoder.output_dim,
        hidden_dim=dec.hidden_dim,
        layers=dec.layers,
        dropout=dec.dropout,
        emb_dropout=cfg.emb_dropout,
        output_dropout=cfg.output_dropout,
        input_feeding=dec.input_feeding,
        tie_embeddings=cfg.tie_embeddings,
        copy=dec.copy,
        weight_drop=dec.weight_drop,
        locked_dropout=dec.locked_dropout,
    )
    model = EncoderDecoder(encoder, bridge, decoder)
    if cfg.init_uniform > 0.0:
        for param in model.parameters():
            nn.init.uniform_(param, -cfg.init_uniform, cfg.init_uniform)
        _zero_padding(embeddings)
    return model


def _zero_padding(embeddings: list[nn.Embedding]) -> None:
    """PAD's embedding row is zero (and stays so: padding_idx gets no gradient)."""
    with torch.no_grad():
        for emb in embeddings:
            emb.weight[PAD_ID].zero_()


def count_parameters(model: nn.Module) -> int:
    """Distinct trainable parameters (a tied matrix counts once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
