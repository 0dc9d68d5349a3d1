"""The run directory: self-sufficient, safe to load, written atomically.

    RUN/
      recipe.yaml              the fully resolved recipe (every default written out)
      tokenizer/               joint.model, or src.model + tgt.model (sentencepiece);
                               or the same names .vocab.json (exact vocabularies)
      checkpoints/step-N.safetensors   model weights (safetensors: nothing executes on load)
      best, last               one-line pointer files naming a checkpoint
      trainer_state.pt         optimizer, schedule, scaler, step, data position, RNG,
                               early stopping; read with torch.load(weights_only=True)
      metrics.jsonl            one JSON object per validation (appended)
      train.log                the training log (appended)
      train.lock               held by the training that writes the run (see ``lock``)

Every other write goes to a temporary file in the same folder, is fsynced, then renamed
over the target, so a crash or kill at any moment leaves the last good checkpoint
intact; a kill can only cut the last line of the two appended files, which readers skip.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pickle
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from seq2seq.checkpoint.errors import (
    WRITE_ERRORS,
    CheckpointError,
    describe_write_error,
    first_line,
)
from seq2seq.checkpoint.weights import cpu_weights, load_into, unwrap
from seq2seq.data.files import atomic_write, atomic_write_text


def _lock_holder(fd: int) -> str:
    """Who holds a run's lock, as its holder wrote it. The holder takes the lock before
    it writes its line, so a second training that looks in between finds the file empty
    (or just truncated): it looks again for up to half a second before saying less."""
    for _ in range(50):
        holder = os.pread(fd, 512, 0).decode("utf-8", "replace").strip()
        if holder.endswith(")"):  # the whole line: it ends with the command
            return holder
        time.sleep(0.01)
    return holder or "another process"


class RunDir:
    """Paths and safe reads/writes of one run directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.recipe = self.path / "recipe.yaml"
        self.tokenizer_dir = self.path / "tokenizer"
        self.checkpoints = self.path / "checkpoints"
        self.trainer_state = self.path / "trainer_state.pt"
        self.metrics = self.path / "metrics.jsonl"
        self.log = self.path / "train.log"
        self.lock_file = self.path / "train.lock"

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run exclusively while training writes it: a second training of the
        same output_dir gets a ``CheckpointError`` naming the holder. The lock is the
        kernel's (``flock``), so it ends with its process however that ends: a lock left
        by a killed training is free. It needs a file system with working ``flock``
        (local disks do; some network file systems do not)."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise CheckpointError(f"{self.path}: cannot write here: {err.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _lock_holder(fd)
            os.close(fd)
            raise CheckpointError(
                f"{self.path} is being trained by {holder}; wait for it to end "
                "or choose another output_dir"
            ) from None
        try:
            os.ftruncate(fd, 0)
            command = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))
            os.write(
                fd,
                f"pid {os.getpid()} on {socket.gethostname()} since "
                f"{time.strftime('%Y-%m-%d %H:%M:%S')} ({command[:200]})\n".encode(),
            )
            yield
        finally:
            os.close(fd)  # releases the lock

    # ---- weights -----------------------------------------------------------------------
    def save_weights(self, model: torch.nn.Module, step: int) -> str:
        """Write ``checkpoints/step-N.safetensors``; return its name relative to the run."""
        name = f"checkpoints/step-{step:07d}.safetensors"
        weights = cpu_weights(unwrap(model))
        atomic_write(self.path / name, lambda tmp: save_file(weights, str(tmp), {"format": "pt"}))
        return name

    def save_checkpoint(
        self,
        model: torch.nn.Module,
        step: int,
        trainer_state: Callable[[str], dict[str, Any]],
        best: bool,
        keep_all: bool,
    ) -> None:
        """Weights, the trainer state (``trainer_state(weights name)``), then the pointers,
        in that order, each atomic; then older checkpoints pruned unless ``keep_all``. A
        failed write (disk full) is one ``CheckpointError``; the previous checkpoint stays
        whole and weights no trainer state names are removed."""
        name = None
        state_saved = False
        try:
            name = self.save_weights(model, step)
            self.save_trainer_state(trainer_state(name))
            state_saved = True
            if best or self.read_pointer("best") is None:
                self.set_pointer("best", name)
            self.set_pointer("last", name)
        except CheckpointError:
            raise
        except WRITE_ERRORS as err:
            if name is not None and not state_saved:
                (self.path / name).unlink(missing_ok=True)
            previous = self.read_pointer("last")
            kept = (
                f"the previous checkpoint ({previous}) is intact"
                if previous
                else "no checkpoint was saved before"
            )
            raise CheckpointError(
                f"{self.path}: cannot save step {step}: {describe_write_error(err)}; {kept}"
            ) from None
        if not keep_all:
            self.prune()

    def load_weights(self, model: torch.nn.Module, which: str = "best") -> str:
        """Load the checkpoint that pointer ``which`` (best|last) or a file name names.

        Every tensor must have the model's dtype and shape (a cast would load garbage
        silently). A checkpoint pruned by a training between reading its pointer and
        opening it is looked up again, so a run can be read while it trains."""
        for attempt in range(3):
            name = self.resolve(which)
            path = self.path / name
            if path.is_file() or which not in ("best", "last") or attempt == 2:
                break
        if not path.is_file():
            raise CheckpointError(f"{path}: checkpoint file not found")
        load_into(path, model)
        return name

    def resolve(self, which: str) -> str:
        """The checkpoint file (relative to the run) that ``which`` names: a pointer
        (best falls back to last) or a file name given by the user."""
        if which in ("best", "last"):
            name = self.read_pointer(which) or (
                self.read_pointer("last") if which == "best" else None
            )
            if name is None:
                raise CheckpointError(
                    f"{self.path}: no '{which}' checkpoint (is this a run directory?)"
                )
            return name
        name = which
        if Path(which).is_absolute():  # a file of this run named by its full path
            full, root = Path(which).resolve(), self.path.resolve()
            name = str(full.relative_to(root)) if full.is_relative_to(root) else which
        self.check_inside(name, f"--checkpoint {which}")
        return name

    def read_pointer(self, which: str) -> str | None:
        """The checkpoint a pointer file names, or None when there is no pointer. The name
        must be a ``.safetensors`` file inside this run: a pointer is never followed out."""
        pointer = self.path / which
        if not pointer.is_file():
            return None
        try:
            with open(pointer, "rb") as handle:
                name = handle.read(4096).decode("utf-8").strip()
        except (OSError, UnicodeDecodeError) as err:
            raise CheckpointError(f"{pointer}: unreadable pointer ({first_line(err)})") from None
        self.check_inside(name, str(pointer))
        if not (self.path / name).is_file():
            raise CheckpointError(f"{pointer}: names {name}, which does not exist")
        return name

    def check_inside(self, name: str, where: str) -> None:
        """``name`` must be a relative path to a ``.safetensors`` file under this run."""
        inside = (self.path / name).resolve().is_relative_to(self.path.resolve())
        if not name or Path(name).is_absolute() or ".." in Path(name).parts or not inside:
            raise CheckpointError(f"{where}: names {name[:100]!r}, which is not a file in the run")
        if not name.endswith(".safetensors"):
            raise CheckpointError(f"{where}: names {name[:100]!r}, not a .safetensors file")

    def set_pointer(self, which: str, name: str) -> None:
        atomic_write_text(self.path / which, name + "\n")

    def prune(self) -> None:
        """Delete checkpoints no pointer names (the run keeps best and last). The trainer
        state always names the weights ``last`` points to: they are saved together."""
        keep = {self.read_pointer("best"), self.read_pointer("last")}
        for path in self.checkpoints.glob("step-*.safetensors"):
            if f"checkpoints/{path.name}" not in keep:
                path.unlink(missing_ok=True)

    # ---- trainer state and metrics -----------------------------------------------------
    def save_trainer_state(self, state: dict[str, Any]) -> None:
        atomic_write(self.trainer_state, lambda tmp: torch.save(state, tmp))

    def load_trainer_state(self) -> dict[str, Any]:
        """The exact-resume state, checked key by key against ``TRAINER_STATE`` (and its
        ``weights`` against the run), so a tampered or foreign file is one clear error."""
        if not self.trainer_state.is_file():
            raise CheckpointError(f"{self.trainer_state}: not found")
        try:
            state = torch.load(self.trainer_state, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            if "unsupported global" not in str(err).lower():  # garbage, not a class
                raise CheckpointError(
                    f"{self.trainer_state}: cannot load: not a torch file of tensors and values"
                ) from None
            raise CheckpointError(
                f"{self.trainer_state}: not a seq2seq trainer state (it holds objects that "
                "only unpickling could build, and seq2seq never unpickles)"
            ) from None
        except Exception as err:  # torch raises several types for a corrupt or foreign file
            raise CheckpointError(
                f"{self.trainer_state}: cannot load: {first_line(err)[:200]}"
            ) from None
        if not isinstance(state, dict):
            raise CheckpointError(f"{self.trainer_state}: not a seq2seq trainer state")
        for key, kinds in TRAINER_STATE.items():
            if key not in state:
                raise CheckpointError(f"{self.trainer_state}: key '{key}' is missing")
            value = state[key]
            if not isinstance(value, kinds) or isinstance(value, bool):
                raise CheckpointError(
                    f"{self.trainer_state}: key '{key}' holds a {type(value).__name__}, "
                    f"expected {' or '.join(k.__name__ for k in kinds)}"
                )
        for key in ("step", "epoch", "position", "bad_validations"):
            if state[key] < 0:
                raise CheckpointError(f"{self.trainer_state}: key '{key}' is negative")
        self.check_inside(state["weights"], f"{self.trainer_state} (key 'weights')")
        return state

    def append_metrics(self, record: dict[str, Any]) -> None:
        try:
            with open(self.metrics, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
        except OSError as err:
            raise CheckpointError(f"{self.metrics}: cannot write: {err.strerror}") from None

    def save_text(self, path: Path, text: str) -> None:
        """Write a text file of the run atomically; a failure is one ``CheckpointError``."""
        try:
            atomic_write_text(path, text)
        except OSError as err:
            raise CheckpointError(f"{path}: cannot write: {describe_write_error(err)}") from None

    def remove_debris(self) -> None:
        """Delete the temporary files of writes a crash cut short (``.NAME.*.tmp``); call
        only while holding ``lock``, when no other process writes here."""
        for folder in (self.path, self.checkpoints, self.tokenizer_dir):
            if folder.is_dir():
                for tmp in folder.glob(".*.tmp"):
                    tmp.unlink(missing_ok=True)

    def trim_metrics(self, step: int) -> None:
        """Drop the metrics of validations after ``step``: a run resumed from there (its
        last save was lost to a crash) measures them again."""
        records = self.read_metrics()
        kept = [r for r in records if int(r.get("step", 0)) <= step]
        if len(kept) < len(records):
            self.save_text(self.metrics, "".join(json.dumps(r) + "\n" for r in kept))

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics.is_file():
            return []
        records = []
        lines = self.metrics.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                if number < len(lines) and line.strip():  # only the last may be cut by a kill
                    raise CheckpointError(f"{self.metrics}:{number}: not a JSON line") from None
        return records


# what a trainer state holds (Trainer.state_dict), key by key, with the accepted types
TRAINER_STATE: dict[str, tuple[type, ...]] = {
    "weights": (str,),
    "step": (int,),
    "epoch": (int,),
    "position": (int,),
    "elapsed": (float, int),
    "best": (float, int, type(None)),
    "bad_validations": (int,),
    "history": (list,),
    "optimizer": (dict,),
    "schedule": (dict,),
    "scaler": (dict,),
    "rng_torch": (torch.Tensor,),
    "rng_cuda": (list,),
    "rng_python": (tuple, list),
}
