"""Attention: scores between decoder queries and encoder memory, for one step or all at once.

Every attention precomputes what depends only on the memory (``keys``) once per source,
so each search step costs one batched product. Shapes: memory (B, S, M), query (B, T, H),
mask (B, S) True at real source positions; T is 1 when stepping.
"""

from __future__ import annotations

import torch
from torch import nn


class Attention(nn.Module):
    """Base class: subclasses define ``keys`` and ``scores``."""

    # True where scores are the product query . keys, which the input-feeding training
    # loop (``feeding.py``) computes itself
    scores_are_products = False

    def keys(self, memory: torch.Tensor) -> torch.Tensor:
        return memory

    def scores(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """(B, T, H), keys -> (B, T, S) unnormalised scores."""
        raise NotImplementedError

    def forward(
        self, query: torch.Tensor, keys: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns context (B, T, M) and weights (B, T, S); padded positions get weight 0.

        Grouped search hypotheses: query (B*g, 1, H) against memory (B, S, M), g rows per
        source, give context (B*g, 1, M) and weights (B*g, 1, S), the g queries of a
        source multiplied by its memory at once.
        """
        rows = query.size(0)
        grouped = rows != memory.size(0)
        if grouped:
            query = query.reshape(memory.size(0), -1, query.size(-1))  # (B, g*T, H)
        scores = self.scores(query, keys)
        scores = scores.to(torch.promote_types(scores.dtype, torch.float32))  # bf16 -> fp32
        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        context = torch.bmm(weights.to(memory.dtype), memory)
        if grouped:
            return context.reshape(rows, -1, context.size(-1)), weights.reshape(
                rows, -1, weights.size(-1)
            )
        return context, weights


class DotAttention(Attention):
    """Luong dot: score = q · m (needs equal sizes)."""

    scores_are_products = True

    def scores(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        return torch.bmm(query.to(keys.dtype), keys.transpose(1, 2))


class GeneralAttention(Attention):
    """Luong general: score = q · W m; ``W m`` is precomputed as the keys."""

    scores_are_products = True

    def __init__(self, query_dim: int, memory_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(memory_dim, query_dim, bias=False)

    def keys(self, memory: torch.Tensor) -> torch.Tensor:
        return self.proj(memory)  # (B, S, H)

    def scores(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        return torch.bmm(query.to(keys.dtype), keys.transpose(1, 2))


class BahdanauAttention(Attention):
    """Bahdanau additive: score = v · tanh(W_q q + W_k m); ``W_k m`` is precomputed."""

    def __init__(self, query_dim: int, memory_dim: int, attn_dim: int | None = None) -> None:
        super().__init__()
        attn_dim = attn_dim or query_dim
        self.key_proj = nn.Linear(memory_dim, attn_dim, bias=False)
        self.query_proj = nn.Linear(query_dim, attn_dim, bias=True)
        self.v = nn.Linear(attn_dim, 1, bias=False)

    def keys(self, memory: torch.Tensor) -> torch.Tensor:
        return self.key_proj(memory)  # (B, S, A)

    def scores(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        hidden = torch.tanh(self.query_proj(query).unsqueeze(2) + keys.unsqueeze(1))  # (B, T, S, A)
        return self.v(hidden).squeeze(-1)


def build_attention(kind: str, query_dim: int, memory_dim: int) -> Attention:
    if kind == "dot":
        if query_dim != memory_dim:
            raise ValueError(f"dot attention needs equal sizes, got {query_dim} and {memory_dim}")
        return DotAttention()
    if kind == "general":
        return GeneralAttention(query_dim, memory_dim)
    if kind == "bahdanau":
        return BahdanauAttention(query_dim, memory_dim)
    raise ValueError(f"unknown attention {kind!r}")
