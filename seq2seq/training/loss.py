"""The loss of one training batch: the forward pass in autocast, then label-smoothed
cross-entropy outside it in float32, fused with the output projection where the model
allows it (kernels/fused_loss.py)."""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from seq2seq.kernels.fused_loss import projected_sequence_loss, sequence_loss


def batch_loss(
    net: torch.nn.Module,
    decoder: Any,
    batch: Any,
    teacher_forcing: float,
    smoothing: float,
    forward_context: contextlib.AbstractContextManager,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, nll) sums of one batch through ``net`` (the model, or its DDP wrapper), its
    forward pass inside ``forward_context`` (autocast), the loss outside it, in float32.
    Without copy attention the output projection of ``decoder`` is fused into the loss
    (``projected_sequence_loss``): the (tokens x vocabulary) logits never exist whole and
    padded positions are never projected."""
    project = decoder.fused_projection()
    fused = project is not None
    with forward_context:
        out = net(
            batch.src,
            batch.src_lengths,
            batch.tgt_in,
            teacher_forcing=teacher_forcing,
            project=not fused,
        )
    if project is None:
        return sequence_loss(out, batch.tgt_out, smoothing)[:2]
    loss, nll, _ = projected_sequence_loss(
        out, project.weight, project.bias, batch.tgt_out, smoothing
    )
    return loss, nll
