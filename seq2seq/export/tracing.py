"""Tracing the graphs (graphs.py) into ONNX files with the TorchScript exporter: which
axes stay symbolic, and the exporter's own chatter kept off the user's terminal."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch

from seq2seq.export.graphs import EncoderGraph, StepGraph

log = logging.getLogger(__name__)

OPSET = 17


def _encoder_axes() -> dict[str, dict[int, str]]:
    source = {0: "batch", 1: "source"}
    return {
        "src": source,
        "lengths": {0: "batch"},
        "memory": source,
        "keys": source,
        "mask": source,
        "hidden": {1: "batch"},
        "cell": {1: "batch"},
    }


def _step_axes(step: StepGraph) -> dict[str, dict[int, str]]:
    source = {0: "batch", 1: "source"}
    rows = {0: "rows"}
    axes = {
        "tokens": rows,
        "hidden": {1: "rows"},
        "cell": {1: "rows"},
        "feed": rows,
        "memory": source,
        "keys": source,
        "mask": source,
        "copy_index": source,
        "out_weight": {1: "outputs"} if step.int8_output else {0: "outputs"},
        "out_scale": {0: "outputs"},
        "out_bias": {0: "outputs"},
        "penalty": {0: "penalty_rows", 1: "penalty_outputs"},  # or (1, 1): it broadcasts
        "log_probs": {0: "rows", 1: "outputs"},
        "hidden_out": {1: "rows"},
        "cell_out": {1: "rows"},
        "feed_out": rows,
        "attention": {0: "rows", 1: "source"},
    }
    names = (*step.input_names, *step.output_names)
    return {name: axes[name] for name in names}


def trace(
    module: EncoderGraph | StepGraph,
    args: tuple[torch.Tensor, ...],
    path: Path,
) -> None:
    """Write ``module`` traced on ``args`` to ``path``: its inputs and outputs named, batch,
    source length, hypothesis rows and output rows symbolic."""
    axes = _step_axes(module) if isinstance(module, StepGraph) else _encoder_axes()
    torch.onnx.export(
        module,
        args,
        str(path),
        dynamo=False,
        input_names=list(module.input_names),
        output_names=list(module.output_names),
        dynamic_axes=axes,
        opset_version=OPSET,
        do_constant_folding=True,
    )


@contextlib.contextmanager
def quiet_exporter() -> Iterator[None]:
    """The TorchScript exporter warns about its own deprecation and, from C++ on the
    process's stderr, about shape inference of packed sequences (which it gets right: the
    export is checked). Both go to the debug log instead of the user's terminal."""
    with warnings.catch_warnings(), tempfile.TemporaryFile() as caught:
        warnings.simplefilter("ignore")
        saved = os.dup(2)
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            text = caught.read().decode("utf-8", "replace").strip()
            if text:
                log.debug("exporter: %s", text)
