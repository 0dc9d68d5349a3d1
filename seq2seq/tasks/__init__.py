"""Kinds of work, one folder each, registered by name: importing this package imports
every folder in it, so a new kind of work is a new folder (docs/adding_a_task.md)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from seq2seq.inference import Translator
from seq2seq.tasks.base import (
    Evaluation,
    Generation,
    Metrics,
    Report,
    Task,
    get_task,
    register_task,
)

for _folder in pkgutil.iter_modules(__path__):
    if _folder.ispkg:  # each task folder registers its task and formats when imported
        importlib.import_module(f"{__name__}.{_folder.name}")

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
