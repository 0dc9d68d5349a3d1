"""Checkpoint averaging: the mean of a run's last N weight files as a new run directory
(usually a little better than any single checkpoint, at no training cost)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from seq2seq.checkpoint import CheckpointError, RunDir
from seq2seq.data.files import atomic_write, atomic_write_text

_STEP = re.compile(r"step-(\d+)\.safetensors$")


def run_checkpoints(run: RunDir) -> list[Path]:
    """The run's weight files, oldest step first."""
    found = [
        (int(m.group(1)), p)
        for p in run.checkpoints.glob("step-*.safetensors")
        if (m := _STEP.search(p.name))
    ]
    return [p for _, p in sorted(found)]


def average_checkpoints(source: str | Path, last: int, output: str | Path) -> RunDir:
    """Write ``output``: ``source``'s recipe and tokenizer with the element-wise mean of its
    last ``last`` checkpoints (accumulated in float64, stored in each tensor's dtype)."""
    run, out = RunDir(source), RunDir(output)
    if not run.recipe.is_file():
        raise CheckpointError(f"{run.path}: no recipe.yaml (is this a run directory?)")
    if out.path.resolve() == run.path.resolve():
        raise CheckpointError(f"{out.path}: write the average to a new run directory")
    if out.path.exists() and any(out.path.iterdir()):
        raise CheckpointError(f"{out.path}: exists and is not empty")
    files = run_checkpoints(run)
    if last < 1 or len(files) < last:
        raise CheckpointError(
            f"{run.path}: {len(files)} checkpoints, cannot average the last {last} "
            "(train with train.keep_all_checkpoints=true to keep every validation's weights)"
        )
    chosen = files[-last:]
    total: dict[str, torch.Tensor] = {}
    dtypes: dict[str, torch.dtype] = {}
    for path in chosen:
        try:
            tensors = load_file(path)
        except (SafetensorError, OSError) as err:
            raise CheckpointError(f"{path}: cannot load weights: {err}") from None
        if total and tensors.keys() != total.keys():
            raise CheckpointError(f"{path}: holds other tensors than {chosen[0].name}")
        for name, tensor in tensors.items():
            dtypes[name] = tensor.dtype
            total[name] = total.get(name, 0) + tensor.to(torch.float64)
    mean = {name: (t / last).to(dtypes[name]).contiguous() for name, t in total.items()}

    out.path.mkdir(parents=True, exist_ok=True)
    shutil.copytree(run.tokenizer_dir, out.tokenizer_dir)
    atomic_write_text(out.recipe, run.recipe.read_text(encoding="utf-8"))
    name = f"checkpoints/{chosen[-1].name}"
    atomic_write(out.path / name, lambda tmp: save_file(mean, str(tmp)))
    atomic_write_text(
        out.path / "averaged.json",
        json.dumps({"source": str(run.path), "checkpoints": [p.name for p in chosen]}, indent=1)
        + "\n",
    )
    out.set_pointer("best", name)
    out.set_pointer("last", name)
    return out
