"""int8 products for CPU inference, with oneDNN's kernels (AMX or VNNI where the CPU has them).

``Int8Linear`` holds a weight as int8, symmetric with one scale per output row, packed once
for oneDNN. Each call maps its input to uint8 (zero point 128) with a fixed scale, the
layer's ``input_bound`` / 127, multiplies in int8 (exact integer sums) and gets float32
back with the bias added in the same kernel: no bf16 -> fp32 cast and no separate bias
pass over the output, which for the output projection of a search step (320 x 8,000)
cost as much as the product itself. Measured on this 2-core CPU at beam 5 x batch 64:
the (320, 256) x (256, 8,000) projection with bias, float32 out, takes 0.7 ms against
1.0 ms in bf16 (product, cast, bias), 1.4 ms with fbgemm's dynamic quantization (what
int8 used before) and 3.5 ms in float32.
"""

from __future__ import annotations

import copy
from functools import lru_cache

import torch
from torch import nn

_ZERO_POINT = 128  # uint8 inputs are symmetric around it
_LEVELS = 127.0  # uint8 inputs use +-127 steps of their scale (weights: weight_levels)
# calls of more rows are padded to a multiple of this: oneDNN sets up a kernel per new
# row count (~1 ms for the output projection), and a beam's row count changes whenever
# a sentence finishes; padding cuts the distinct counts of a beam 5 x batch 64 search
# from 64 to 13 (first pass over test2016: see int8 in the README's Speed section)
ROW_MULTIPLE = 32


@lru_cache(maxsize=1)
def weight_levels() -> float:
    """Steps either side of zero for int8 weights: 127, or 63 on x86 CPUs without VNNI or
    AMX, whose u8 x s8 instruction (vpmaddubsw) adds pairs of products in 16 bits and
    saturates when both are large (255 x 127 x 2 > 32,767); 7-bit weights cannot."""
    try:
        caps = torch.cpu.get_capabilities()
    except (AttributeError, RuntimeError):
        return 63.0
    if caps.get("architecture", "x86_64") not in ("x86_64", "x86", "i386", "AMD64"):
        return 127.0  # not the x86 instruction; oneDNN's other kernels accumulate in 32 bits
    fast = caps.get("amx_int8") or caps.get("avx512_vnni") or caps.get("avx_vnni")
    return 127.0 if fast else 63.0


def int8_supported() -> bool:
    """Whether this torch build has oneDNN's int8 linear (x86 CPU builds do)."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.onednn, "qlinear_pointwise")


class Int8Linear(nn.Module):
    """y = x W^T + b with W (N, K) stored as int8: x (..., K) float32 -> y (..., N) float32.

    Inference only (no autograd). The weight's rows are quantized with their own scale
    (max |W_n| / 127, or / 63 where ``weight_levels`` says so); inputs with the fixed
    scale ``input_bound`` / 127, values beyond the bound clipped to it. A fixed scale
    (rather than one from each call's largest value) makes a row's result independent of
    the other rows of its batch (the integer sums are exact), and saves a reduction per
    call. Not saved in state dicts: an int8 model is built from the float32 one when
    needed.
    """

    def __init__(
        self, weight: torch.Tensor, bias: torch.Tensor | None = None, input_bound: float = 1.0
    ) -> None:
        super().__init__()
        if not input_bound > 0.0:
            raise ValueError(f"input_bound must be positive, got {input_bound}")
        self.input_bound = input_bound
        self.input_scale = input_bound / _LEVELS
        weight = weight.detach().float()
        self.out_features, self.in_features = weight.shape
        self.weight_scale = (weight.abs().amax(dim=1) / weight_levels()).clamp_min(1e-12)
        quantized = torch.round(weight / self.weight_scale.unsqueeze(1)).to(torch.int8)
        self.quantized = quantized  # kept for ``rows``
        self.weight_zero = torch.zeros(self.out_features, dtype=torch.int64)
        self.packed = torch.ops.onednn.qlinear_prepack(quantized, None)
        self.bias = None if bias is None else bias.detach().float().contiguous()

    def rows(self, index: torch.Tensor) -> Int8Linear:
        """The layer for output rows ``index`` (N',) only, their int8 weights as they are
        (packed anew, not quantized again): the same outputs, those columns."""
        part = copy.copy(self)  # the input scale and sizes; no submodules to share
        part.quantized = self.quantized.index_select(0, index).contiguous()
        part.out_features = part.quantized.size(0)
        part.weight_scale = self.weight_scale.index_select(0, index).contiguous()
        part.weight_zero = torch.zeros(part.out_features, dtype=torch.int64)
        part.packed = torch.ops.onednn.qlinear_prepack(part.quantized, None)
        part.bias = None if self.bias is None else self.bias.index_select(0, index).contiguous()
        return part

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features).float()
        count = rows.size(0)
        if count == 0:
            return rows.new_empty(*x.shape[:-1], self.out_features)
        padded = count if count <= ROW_MULTIPLE else -(-count // ROW_MULTIPLE) * ROW_MULTIPLE
        quantized = rows.new_empty((padded, self.in_features), dtype=torch.uint8)
        if padded != count:
            quantized[count:] = _ZERO_POINT  # zero rows (their outputs are dropped)
        bound = self.input_bound
        # x / scale, clipped to [-127, 127], + 128.5, truncated: rounded into [1, 255]
        scaled = torch.clamp(rows, -bound, bound).mul_(1.0 / self.input_scale)
        quantized[:count] = scaled.add_(_ZERO_POINT + 0.5)
        out = torch.ops.onednn.qlinear_pointwise(
            quantized,
            self.input_scale,
            _ZERO_POINT,
            self.packed,
            self.weight_scale,
            self.weight_zero,
            self.bias,
            1.0,  # output scale and zero point: unused for a float32 output
            0,
            torch.float32,
            "none",
            [],
            "",
        )
        return out[:count].reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        sizes = f"in_features={self.in_features}, out_features={self.out_features}"
        return f"{sizes}, int8, |x| <= {self.input_bound:g}"
