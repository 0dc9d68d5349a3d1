"""The pointer-generator's gate (See et al. 2017) and the mixture it makes.

p_gen = sigmoid(w [o_t; c_t; emb(y_{t-1})]) says how much of the output is generated; the
rest is copied: the attention over the source, summed per source id.
"""

from __future__ import annotations

import torch
from torch import nn


class CopyGate(nn.Linear):
    """A linear layer (O + M + E -> 1) whose ``mix`` turns logits into copy-mixed log-probs.
    (A subclass of ``nn.Linear``: its parameters keep the names ``weight`` and ``bias``.)"""

    def __init__(self, output_dim: int, memory_dim: int, emb_dim: int) -> None:
        super().__init__(output_dim + memory_dim + emb_dim, 1)

    def mix(
        self,
        logits: torch.Tensor,
        gate_in: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        attn: torch.Tensor,
        src: torch.Tensor,
        positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """float32 log-probabilities of p_gen * softmax(logits) + (1 - p_gen) * (attention
        summed per source id). logits (B, T, V); gate_in: attentional (B, T, O), context
        (B, T, M), embedded (B, T, E); attn (B, T, S); src (B, S) ids; ``positions`` (V,):
        the logits cover a shortlist (V'), whose position of each source id this gives."""
        attentional, context, embedded = gate_in
        joined = torch.cat([attentional, context.to(attentional.dtype), embedded], dim=-1)
        p_gen = torch.sigmoid(self(joined).float())  # (B, T, 1)
        probs = torch.softmax(logits.float(), dim=-1) * p_gen
        if positions is not None:
            src = positions[src]
        index = src.unsqueeze(1).expand(-1, attn.size(1), -1)  # (B, T, S)
        probs = probs.scatter_add(2, index, attn.float() * (1.0 - p_gen))
        return torch.log(probs.clamp_min(1e-12))
