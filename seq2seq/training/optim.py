"""Optimizers and learning-rate schedules (warmup, inverse square root, reduce on plateau).

The schedule is a small class of our own with a plain ``state_dict`` (numbers only), so
the trainer state stays loadable with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from seq2seq.config import Train


def build_optimizer(cfg: Train, model: torch.nn.Module) -> torch.optim.Optimizer:
    """Adam or AdamW over the trainable parameters, with the fused kernel (one pass over
    each tensor instead of a dozen elementwise ops) where torch has it for the device."""
    params = [p for p in model.parameters() if p.requires_grad]
    kind = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    fused = all(p.device.type in ("cpu", "cuda") and p.dtype == torch.float32 for p in params)
    return kind(
        params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay, fused=fused or None
    )


class LRSchedule:
    """lr(step) = base * warmup(step) * decay, where

    - constant:     decay = 1
    - inverse_sqrt: decay = sqrt(warmup / step) after warmup (1 before)
    - plateau:      decay *= factor whenever ``patience`` validations in a row bring no
                    improvement, never below ``min_lr``
    - cosine:       base * decay = min_lr + (base - min_lr) * (1 + cos(pi * spent)) / 2,
                    ``spent`` the share of the training budget used (0 .. 1), so a run
                    with a fixed budget ends at ``min_lr`` (nanoGPT's and torchtune's
                    cosine, over minutes as well as steps)
    warmup(step) rises linearly from 0 to 1 over ``warmup_steps`` (1 when 0).
    """

    def __init__(
        self,
        kind: str,
        base_lr: float,
        warmup_steps: int,
        factor: float,
        patience: int,
        min_lr: float,
    ):
        self.kind = kind
        self.base_lr = base_lr
        self.warmup_steps = warmup_steps
        self.factor = factor
        self.patience = patience
        self.min_lr = min_lr
        self.plateau_scale = 1.0
        self.bad_validations = 0

    @classmethod
    def from_config(cls, cfg: Train) -> LRSchedule:
        return cls(
            cfg.schedule,
            cfg.lr,
            cfg.warmup_steps,
            cfg.plateau_factor,
            cfg.plateau_patience,
            cfg.min_lr,
        )

    def lr(self, step: int, spent: float = 0.0) -> float:
        """The rate for update ``step`` (1-based), ``spent`` of the budget gone."""
        step = max(step, 1)
        warm = min(1.0, step / self.warmup_steps) if self.warmup_steps else 1.0
        if self.kind == "cosine":
            floor = min(self.min_lr, self.base_lr)
            decay = (1.0 + math.cos(math.pi * min(max(spent, 0.0), 1.0))) / 2.0
            return warm * (floor + (self.base_lr - floor) * decay)
        if self.kind == "inverse_sqrt" and self.warmup_steps and step > self.warmup_steps:
            return self.base_lr * math.sqrt(self.warmup_steps / step)
        if self.kind == "inverse_sqrt" and not self.warmup_steps:
            return self.base_lr / math.sqrt(step)
        return max(self.base_lr * warm * self.plateau_scale, min(self.min_lr, self.base_lr * warm))

    def on_validation(self, improved: bool) -> None:
        if self.kind != "plateau":
            return
        self.bad_validations = 0 if improved else self.bad_validations + 1
        if self.bad_validations >= self.patience:
            self.plateau_scale *= self.factor
            self.bad_validations = 0

    def apply(self, optimizer: torch.optim.Optimizer, step: int, spent: float = 0.0) -> float:
        lr = self.lr(step, spent)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr

    def state_dict(self) -> dict[str, Any]:
        return {"plateau_scale": self.plateau_scale, "bad_validations": self.bad_validations}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.plateau_scale = float(state["plateau_scale"])
        self.bad_validations = int(state["bad_validations"])


def teacher_forcing_ratio(final: float, schedule: str, ramp_steps: int, step: int) -> float:
    """Probability of feeding the gold token at ``step``: 1 at the start, ``final`` after
    the ramp (linear), or approaching it along an inverse sigmoid (Bengio et al. 2015)."""
    if final >= 1.0 or schedule == "constant" or ramp_steps <= 0:
        return final
    if schedule == "linear":
        return max(final, 1.0 - (1.0 - final) * step / ramp_steps)
    k = ramp_steps / 10.0  # the sigmoid's midpoint sits near ramp_steps / 2
    return final + (1.0 - final) * k / (k + math.exp(min(step / k, 700.0)) - 1.0)
