"""int8 inference on CPU: the decoder's per-step products run in int8 (``int8.Int8Linear``).

A search step multiplies a few hundred hypotheses by the same weights at every target
position: the LSTM layers' [input; h], the attentional layer and the output projection.
Those become int8 (one scale per weight row; float32 out with the bias fused).
Everything else stays float32: the attention keys (once per batch), the embedding's
share of the first LSTM layer (a float32 table, see ``step_lstm``), attention scores,
softmaxes and the LSTM cell update; and the encoder, but on a CPU with native bf16
(AVX512-BF16/AMX) the encoder runs in bf16 (its outputs cast back to float32): it runs
once per batch, where each new batch shape costs oneDNN a set-up that bf16 halves.

Every input of those products lies in [-1, 1] by construction: LSTM outputs (o * tanh(c)),
the attentional hidden (a tanh), and the attention context (a convex combination of the
encoder's LSTM outputs). So the inputs' scale is fixed at 1/127 (``Int8Linear``'s
``input_bound``): a hypothesis' int8 products do not depend on the other rows of its
batch (with one scale per call they would).
"""

from __future__ import annotations

import copy
from typing import TypeVar

import torch
from torch import nn

from seq2seq.kernels.int8 import int8_supported
from seq2seq.model.decoder import Decoder
from seq2seq.model.encoder_decoder import EncoderDecoder

M = TypeVar("M", bound=nn.Module)


def quantize_int8(model: M, bf16_encoder: bool = False) -> M:
    """A float32 copy of ``model`` in eval mode whose decoders step in int8 (see the
    module docstring); ``model`` itself is untouched. ``bf16_encoder``: run the encoder
    in bf16 (where the CPU does so natively)."""
    if not int8_supported():
        raise RuntimeError("int8 inference needs a torch build with oneDNN (an x86 CPU build)")
    quantized = copy.deepcopy(model).float().eval()
    decoders = [module for module in quantized.modules() if isinstance(module, Decoder)]
    for decoder in decoders:
        decoder.use_int8_steps()
    if bf16_encoder:
        pairs = [module for module in quantized.modules() if isinstance(module, EncoderDecoder)]
        for pair in pairs:
            if pair.encoder.embedding is pair.decoder.embedding:  # shared: decoder's stays fp32
                pair.encoder.embedding = copy.deepcopy(pair.encoder.embedding)
            pair.encoder.to(torch.bfloat16)
            pair.encoder_output_dtype = torch.float32
    return quantized
