"""int8 weights for CPU inference: dynamic quantization of the LSTM and Linear layers.

Weights are stored as int8 with a scale per tensor; each call quantizes its input on the
fly, multiplies in int8 with fbgemm's kernels and returns float32. Embeddings, attention
products and softmaxes stay float32. It only runs on CPUs (fbgemm / x86).

``torch.ao.quantization.quantize_dynamic`` warns that it is deprecated in favour of
torchao; it still works in torch 2.13 and needs no extra dependency, so we keep it and
silence the warning here (revisit when torch removes it).
"""

from __future__ import annotations

import copy
import warnings
from typing import TypeVar

import torch
from torch import nn

M = TypeVar("M", bound=nn.Module)


def quantize_int8(model: M) -> M:
    """A copy of ``model`` (in eval mode) with every ``nn.Linear`` and ``nn.LSTM`` replaced
    by its dynamically quantized int8 version; ``model`` itself is untouched."""
    if "fbgemm" not in torch.backends.quantized.supported_engines:
        raise RuntimeError("int8 quantization needs fbgemm (an x86 CPU build of torch)")
    float_copy = copy.deepcopy(model).float().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the deprecation notice, see the module docstring
        quantized = torch.ao.quantization.quantize_dynamic(
            float_copy, {nn.Linear, nn.LSTM}, dtype=torch.qint8
        )
    return quantized


def is_plain_lstm(module: nn.Module) -> bool:
    """Whether ``module`` is a float ``nn.LSTM`` (whose weights can be read directly)."""
    return type(module) is nn.LSTM
