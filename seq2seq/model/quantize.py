"""int8 inference on CPU: the decoder's per-step products run in int8 (``int8.Int8Linear``).

A search step multiplies a few hundred hypotheses by the same weights at every target
position: the LSTM layers' [input; h], the attentional layer and the output projection.
Those become int8 (one scale per weight row, one per call for the input, float32 out
with the bias fused). Everything else stays float32: the encoder and the attention keys
(once per batch), the embedding's share of the first LSTM layer (a float32 table, see
``step_lstm``), attention scores, softmaxes and the LSTM cell update. Every input of
the quantized products is a tanh or an LSTM output, so lies in [-1, 1], which one scale
per call covers well. BLEU change against float32 is reported in the README (Speed).
"""

from __future__ import annotations

import copy
from typing import TypeVar

from torch import nn

from seq2seq.model.decoder import Decoder
from seq2seq.model.int8 import Int8Linear, int8_supported

M = TypeVar("M", bound=nn.Module)


def quantize_int8(model: M) -> M:
    """A float32 copy of ``model`` in eval mode whose decoders step in int8 (see the
    module docstring); ``model`` itself is untouched."""
    if not int8_supported():
        raise RuntimeError("int8 inference needs a torch build with oneDNN (an x86 CPU build)")
    quantized = copy.deepcopy(model).float().eval()
    decoders = [module for module in quantized.modules() if isinstance(module, Decoder)]
    for decoder in decoders:
        # add_module replaces the registered layer (plain assignment would not type-check)
        decoder.add_module("combine", Int8Linear(decoder.combine.weight))
        decoder.add_module("project", Int8Linear(decoder.project.weight, decoder.project.bias))
        decoder.int8_steps = True
    return quantized
