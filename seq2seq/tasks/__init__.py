"""Kinds of work, one folder each, registered by name: importing this package registers
the built-in ones (translation, text_generation, query_expansion, music)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from seq2seq.inference import Translator
from seq2seq.tasks import music, query_expansion, text_generation, translation  # noqa: F401
from seq2seq.tasks.base import (
    Evaluation,
    Generation,
    Metrics,
    Report,
    Task,
    get_task,
    register_task,
)

__all__ = [
    "Evaluation",
    "Generation",
    "Metrics",
    "Report",
    "Task",
    "get_task",
    "load_translator",
    "register_task",
]


def load_translator(
    run_dirs: str | Path | Sequence[str | Path],
    which: str = "best",
    search: Mapping[str, Any] | None = None,
    device: str | None = None,
) -> Translator:
    """A trained run (or an ensemble), with its task's output grammar for
    ``search.constrained``: what the CLI, the shell and the tasks' verbs use."""
    return Translator.from_checkpoint(
        run_dirs, which, search, device, grammar=lambda tr: get_task(tr.recipe.task).constraint(tr)
    )
