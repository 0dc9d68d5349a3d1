"""The models a translator's searches run, made on first use and kept: the fp32 PyTorch
model and its bf16 and int8 copies, or the run's ONNX export under ONNX Runtime; and what
``search.engine`` and ``search.precision`` mean on this device.

``search.engine: auto`` is ONNX Runtime where it runs (one model on the CPU, in fp32 or
int8, with onnxruntime installed and a run directory to export into): on the CPUs
measured it is the faster engine at every batch size (README, Speed). Elsewhere (a GPU,
bf16, an ensemble, no onnxruntime, a read-only run directory without an export), and if
the export fails, auto is PyTorch.
"""

from __future__ import annotations

import copy
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from seq2seq.config import ConfigError, Recipe, Search
from seq2seq.kernels.int8 import int8_supported
from seq2seq.model.encoder_decoder import EncoderDecoder
from seq2seq.model.ensemble import Ensemble
from seq2seq.model.quantize import quantize_int8
from seq2seq.search.batches import workers
from seq2seq.training.precision import resolve_precision

if TYPE_CHECKING:
    from seq2seq.export.engine import OnnxModel

log = logging.getLogger(__name__)

PRECISION_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


class Engines:
    """One translator's models (shared by its ``with_search`` copies): ``models`` by
    precision, ``exports`` (ONNX sessions) by precision and thread count."""

    def __init__(self, model: EncoderDecoder | Ensemble, device: torch.device) -> None:
        self.device = device
        self.models: dict[str, EncoderDecoder | Ensemble] = {"fp32": model.to(device).eval()}
        self.exports: dict[str, OnnxModel] = {}
        self.onnx_failed: str | None = None  # why auto fell back to PyTorch

    def engine(self, search: Search, run_dir: Path | None) -> str:
        """torch or onnx: ``search.engine``, or for auto the one that runs here (above)."""
        if search.engine != "auto":
            return search.engine
        return "onnx" if self._onnx_runs(search, run_dir) else "torch"

    def _onnx_runs(self, search: Search, run_dir: Path | None) -> bool:
        if self.onnx_failed is not None or self._onnx_refusal(search, run_dir) is not None:
            return False
        if search.precision == "auto" and resolve_precision("auto", self.device) == "bf16":
            return False  # a CPU with fast bf16: PyTorch's bf16 kernels
        assert run_dir is not None
        return _onnx_installed() and (os.access(run_dir, os.W_OK) or (run_dir / "onnx").is_dir())

    def _onnx_refusal(self, search: Search, run_dir: Path | None) -> str | None:
        """Why the ONNX engine cannot run ``search`` here (one line), or None."""
        if not isinstance(self.models["fp32"], EncoderDecoder):
            return "search.engine=onnx runs one model, not an ensemble; set search.engine=torch"
        if search.precision == "bf16" or self.device.type != "cpu":
            return (
                "search.engine=onnx runs float32 or int8 weights on the CPU; set "
                f"search.precision=fp32 (not {search.precision}) or search.engine=torch"
            )
        if run_dir is None:
            return "search.engine=onnx needs a run directory to export into"
        return None

    def precision(self, search: Search, engine: str) -> str:
        """What ``search.precision`` means for ``engine`` on this device: fp32, bf16 or
        int8 (the ONNX engine: fp32 or int8)."""
        precision = search.precision
        if engine == "onnx":
            return "int8" if precision == "int8" else "fp32"
        if precision == "auto":  # CUDA: fp32 (TF32), which cuDNN's LSTMs take; not bf16
            fast_bf16 = resolve_precision("auto", self.device) == "bf16"
            return "bf16" if fast_bf16 and self.device.type == "cpu" else "fp32"
        if precision == "int8" and self.device.type != "cpu":
            raise ConfigError("search.precision=int8 (oneDNN int8 products) runs on CPU only")
        if precision == "int8" and not int8_supported():
            raise ConfigError(
                "search.precision=int8: this torch build has no oneDNN int8 kernels (x86 CPU "
                "builds do); use fp32 or bf16"
            )
        return precision

    def model(
        self, search: Search, recipe: Recipe, run_dir: Path | None, weights: str
    ) -> EncoderDecoder | Ensemble | OnnxModel:
        """The model the search ``search`` runs (``recipe`` and ``weights`` name the
        export): the ONNX export, or the PyTorch model in its precision."""
        engine = self.engine(search, run_dir)
        if engine == "onnx":
            if search.engine != "auto":
                return self.onnx_model(search, recipe, run_dir, weights)
            from seq2seq.export.onnx_export import ExportError

            try:
                return self.onnx_model(search, recipe, run_dir, weights)
            except (ExportError, OSError) as err:
                self.onnx_failed = str(err)
                log.warning("search.engine=auto: no ONNX export (%s); decoding with PyTorch", err)
                engine = "torch"
        return self.model_in(self.precision(search, engine))

    def onnx_model(
        self, search: Search, recipe: Recipe, run_dir: Path | None, weights: str
    ) -> OnnxModel:
        """The run's ONNX export under ONNX Runtime (its int8 step graph with
        ``precision=int8``), exported once into RUN/onnx/NAME/ (NAME: the weights file's)
        and reused while it is newer than the weights."""
        int8 = search.precision == "int8"
        # batches decoding side by side each run the graphs on one thread
        threads = 1 if workers(search, self.device) > 1 else torch.get_num_threads()
        key = f"onnx{'-int8' if int8 else ''}-{threads}"
        if key in self.exports:
            return self.exports[key]
        from seq2seq.export.engine import OnnxModel
        from seq2seq.export.onnx_export import cached_export

        refusal = self._onnx_refusal(search, run_dir)
        if refusal is not None:
            raise ConfigError(refusal)
        full, run = self.models["fp32"], run_dir
        assert isinstance(full, EncoderDecoder) and run is not None  # as _onnx_refusal checked
        directory = cached_export(full, recipe, run, weights)
        self.exports[key] = OnnxModel(directory, threads=threads, int8=int8)
        return self.exports[key]

    def model_in(self, precision: str) -> EncoderDecoder | Ensemble:
        """The PyTorch model with fp32, bf16 or int8 weights."""
        if precision not in self.models:
            full = self.models["fp32"]
            if precision == "int8":
                native_bf16 = resolve_precision("auto", self.device) == "bf16"
                self.models[precision] = quantize_int8(full, bf16_encoder=native_bf16)
            else:
                self.models[precision] = copy.deepcopy(full).to(PRECISION_DTYPES[precision])
        return self.models[precision]


def _onnx_installed() -> bool:
    from seq2seq.export.onnx_export import onnx_available

    return onnx_available()
