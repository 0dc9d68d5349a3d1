"""The output layer restricted to some target ids (a vocabulary shortlist, search/shortlist.py)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from seq2seq.kernels.int8 import Int8Linear
from seq2seq.kernels.logits import float32_logits


@dataclass
class OutputRows:
    """The output layer over target ids ``ids`` (V',) only: weight (V', O) and bias
    (V',), or ``int8`` the quantized layer's rows; ``positions`` (V,) each id's row, -1
    for the rest (a copying decoder scatters attention onto them)."""

    ids: torch.Tensor
    weight: torch.Tensor | None
    bias: torch.Tensor | None
    int8: Int8Linear | None
    positions: torch.Tensor

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """features (..., O) -> new float32 logits (..., V')."""
        if self.int8 is not None:
            return self.int8(features).float()
        assert self.weight is not None
        return float32_logits(features, self.weight, self.bias)


def output_rows(project: nn.Linear | Int8Linear, ids: torch.Tensor) -> OutputRows:
    """The rows ``ids`` (V',) of the output layer ``project`` (V outputs), gathered once
    per search batch rather than at every step."""
    positions = positions_of(ids, project.out_features)
    if isinstance(project, Int8Linear):
        return OutputRows(ids, None, None, project.rows(ids), positions)
    weight = project.weight.index_select(0, ids)
    bias = None if project.bias is None else project.bias.index_select(0, ids)
    return OutputRows(ids, weight, bias, None, positions)


def positions_of(ids: torch.Tensor, size: int) -> torch.Tensor:
    """Each id's position in ``ids`` (V',) as a (size,) map, -1 for ids not in it."""
    positions = torch.full((size,), -1, dtype=torch.long, device=ids.device)
    positions[ids] = torch.arange(len(ids), device=ids.device)
    return positions
