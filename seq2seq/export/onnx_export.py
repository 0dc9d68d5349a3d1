"""Write a trained model as ONNX files that ONNX Runtime runs, and check them.

An export directory holds:

    encoder.onnx         src (B, S), lengths (B,) -> memory, keys, mask, hidden, cell
    decoder_step.onnx    one search step for R hypotheses (see graphs.StepGraph)
    decoder_step.int8.onnx  the same with its weights in int8 (ONNX Runtime's dynamic
                         quantization: int8 weights, activations quantized per call),
                         the output layer too (its inputs: int8 columns and scales)
    encoder.int8.onnx    the encoder so quantized (its LSTMs and products), for int8
    output_weight.npy    the output layer (V, O) and its bias (V,): inputs of the step,
    output_bias.npy      so a vocabulary shortlist passes its rows instead
    output_weight.int8.npy  the output layer in int8 (V, O) and its scales (V,), for
    output_scale.npy     the int8 step (graphs.quantize_rows)
    manifest.json        what a runtime needs to know (FORMAT, sizes, specials, files, search)
    tokenizer/           the run's tokenizer files
    recipe.yaml          the run's recipe
    translate.py         a translator that needs numpy, onnxruntime and sentencepiece only
                         (export/standalone.py)

The graphs are traced with the TorchScript exporter (tracing.py): it writes the packed
bidirectional LSTM as ONNX ``LSTM`` nodes with sequence lengths, which the newer exporter
does not, and exports in seconds rather than minutes. Every export is checked against the
PyTorch model on a batch of other shapes than the one traced (``check_export``); a
mismatch is an error.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seq2seq.checkpoint import RunDir
from seq2seq.config import ConfigError, Recipe, dump_recipe
from seq2seq.data.files import atomic_write_text
from seq2seq.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from seq2seq.export.graphs import (
    NO_PENALTY,
    EncoderGraph,
    StepGraph,
    quantize_rows,
    step_input_names,
    step_output_names,
)
from seq2seq.export.samples import int8_output_inputs, model_step, sample_source, step_inputs
from seq2seq.export.tracing import quiet_exporter, trace
from seq2seq.model.encoder_decoder import EncoderDecoder

log = logging.getLogger(__name__)

FORMAT = "seq2seq-onnx/4"  # 2: int8 output layer; 3: the step takes a penalty; 4: int8 encoder
MANIFEST = "manifest.json"
ENCODER_FILE, STEP_FILE = "encoder.onnx", "decoder_step.onnx"
INT8_STEP_FILE, INT8_ENCODER_FILE = "decoder_step.int8.onnx", "encoder.int8.onnx"
INT8_SOURCE_FILE = "decoder_step.int8-float.onnx"  # the int8 step before quantize_graphs
WEIGHT_FILE, BIAS_FILE = "output_weight.npy", "output_bias.npy"
INT8_WEIGHT_FILE, SCALE_FILE = "output_weight.int8.npy", "output_scale.npy"
STANDALONE = Path(__file__).with_name("standalone.py")
# the exported step's log-probs may differ from PyTorch's by float32 rounding only
TOLERANCE = 1e-3


class ExportError(ConfigError):
    """The model cannot be exported, or its export does not compute what it does."""


@functools.lru_cache(maxsize=1)
def onnx_available() -> bool:
    """Whether onnxruntime and onnx (its quantizer and the exporter need it) are installed."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


def require_onnx() -> None:
    if not onnx_available():
        raise ConfigError("the ONNX engine needs onnxruntime and onnx: pip install 'seq2seq[onnx]'")


def export_graphs(model: EncoderDecoder, directory: Path) -> None:
    """Write the two graphs, the int8 step's float source (see ``quantize_graphs``) and the
    output layer of a float32 ``model`` into ``directory``."""
    require_onnx()
    if any(p.dtype != torch.float32 for p in model.parameters()):
        raise ExportError("export: the model must have float32 weights")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), quiet_exporter():
            src, lengths = sample_source(model, batch=2, length=5, seed=0)
            encoder = EncoderGraph(model)
            trace(encoder, (src, lengths), directory / ENCODER_FILE)
            step = StepGraph(model)
            inputs = step_inputs(model, src, lengths, group=3)
            trace(step, tuple(inputs.values()), directory / STEP_FILE)
            int8_step = StepGraph(model, int8_output=True)
            int8_inputs = tuple(int8_output_inputs(inputs).values())
            trace(int8_step, int8_inputs, directory / INT8_SOURCE_FILE)
        weight = model.decoder.project.weight.detach()
        np.save(directory / WEIGHT_FILE, weight.numpy())
        int8_weight, scale = quantize_rows(weight)
        np.save(directory / INT8_WEIGHT_FILE, int8_weight.numpy())
        np.save(directory / SCALE_FILE, scale.numpy())
        bias = model.decoder.project.bias
        assert bias is not None, "the output layer has a bias"
        np.save(directory / BIAS_FILE, bias.detach().numpy())
    finally:
        model.train(was_training)


def check_export(model: EncoderDecoder, directory: Path) -> float:
    """Run the exported graphs and the model on a batch of shapes other than the traced
    ones (3 sources of up to 9 tokens, 4 hypotheses each) and compare: the largest
    absolute difference of the step's log-probs, or ``ExportError`` above TOLERANCE."""
    import onnxruntime as ort

    model.eval()
    src, lengths = sample_source(model, batch=3, length=9, seed=1)
    with torch.no_grad():
        inputs = step_inputs(model, src, lengths, group=4)
    graph = StepGraph(model)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(directory / STEP_FILE), options, ["CPUExecutionProvider"])
    encoder = ort.InferenceSession(str(directory / ENCODER_FILE), options, ["CPUExecutionProvider"])
    memory = encoder.run(["memory"], {"src": src.numpy(), "lengths": lengths.numpy()})[0]
    diffs = {"the encoder's memory": _max_diff(memory, inputs["memory"])}
    # a shortlist's penalty over the rows, and (1, 1) zeros (whole rows): both shapes
    for penalty, which in ((inputs["penalty"], "penalised "), (NO_PENALTY, "")):
        feeds = {**inputs, "penalty": penalty}
        with torch.no_grad():
            expected = graph(*feeds.values())[0]
            reference = model_step(model, src, lengths, feeds)
        got = session.run(None, {name: t.numpy() for name, t in feeds.items()})[0]
        diffs[f"the step's {which}log-probs against PyTorch's"] = _max_diff(got, reference)
        diffs[f"the step graph's {which}log-probs against its module"] = _max_diff(got, expected)
    for what, diff in diffs.items():
        if not diff <= TOLERANCE:
            raise ExportError(f"export: {what} differ by {diff:.3g} (> {TOLERANCE})")
    return max(diffs.values())


def quantize_graphs(directory: Path) -> None:
    """Write the int8 twins of the step graph (INT8_STEP_FILE, from its float source) and
    of the encoder (INT8_ENCODER_FILE): matrix weights, the gate table and the LSTMs' in
    signed 7-bit int8 (per tensor; ``reduce_range``, as graphs.INT8_LEVELS says why),
    products in int8 with the activations quantized per call; the step's output layer,
    an input, was int8 already. On the AVX2 CPU measured the int8 step runs 1.3x as fast
    as the float32 one, the int8 encoder 1.5x (README, Speed)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().disabled, was = True, logging.getLogger().disabled  # its advice
    try:
        # the step: every op the quantizer knows (its products and the gate table); the
        # encoder: its LSTMs and products, not the embedding (no faster, less exact)
        for source, target, ops in (
            (INT8_SOURCE_FILE, INT8_STEP_FILE, None),
            (ENCODER_FILE, INT8_ENCODER_FILE, ["LSTM", "MatMul", "Gemm"]),
        ):
            quantize_dynamic(
                directory / source,
                directory / target,
                weight_type=QuantType.QInt8,
                reduce_range=True,
                op_types_to_quantize=ops,
            )
    finally:
        logging.getLogger().disabled = was
    (directory / INT8_SOURCE_FILE).unlink()


def write_export(
    model: EncoderDecoder,
    recipe: Recipe,
    tokenizer_dir: Path,
    out_dir: Path,
    weights: str,
) -> dict[str, Any]:
    """The whole export directory (see the module docstring), written beside ``out_dir``
    and renamed into place once checked: an interrupted export leaves nothing half
    written. Returns the manifest."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not (out_dir / MANIFEST).is_file() and any(out_dir.iterdir()):
        raise ExportError(f"{out_dir}: exists and is not an export directory; choose another -o")
    started = time.perf_counter()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        export_graphs(model, staging)
        diff = check_export(model, staging)
        quantize_graphs(staging)
        shutil.copytree(tokenizer_dir, staging / "tokenizer")
        atomic_write_text(staging / "recipe.yaml", dump_recipe(recipe))
        shutil.copyfile(STANDALONE, staging / "translate.py")
        manifest = _manifest(model, recipe, tokenizer_dir, weights, diff)
        atomic_write_text(staging / MANIFEST, json.dumps(manifest, indent=2) + "\n")
        _replace_dir(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info(
        "exported to %s in %.1f s (largest difference from PyTorch %.2g)",
        out_dir,
        time.perf_counter() - started,
        diff,
    )
    return manifest


def cached_export(model: EncoderDecoder, recipe: Recipe, run_dir: Path, weights: str) -> Path:
    """RUN/onnx/NAME, the export of the run's weights file ``weights`` (NAME its stem):
    reused while its manifest names that file and is newer than it, else written anew."""
    run = RunDir(run_dir)
    directory = run.path / "onnx" / Path(weights).stem
    weights_file = run.path / weights
    manifest_file = directory / MANIFEST
    if manifest_file.is_file():
        try:
            fresh = read_manifest(directory).get("weights") == weights
        except ExportError:
            fresh = False
        if fresh and manifest_file.stat().st_mtime >= weights_file.stat().st_mtime:
            return directory
    log.info("exporting %s to ONNX (once): %s", weights_file, directory)
    write_export(model, recipe, run.tokenizer_dir, directory, weights)
    return directory


def read_manifest(directory: Path) -> dict[str, Any]:
    """An export directory's manifest, checked for its format."""
    path = Path(directory) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExportError(f"{path}: not found (is {directory} an ONNX export?)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ExportError(f"{path}: not valid JSON: {err}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise ExportError(f"{path}: format {found!r}, expected {FORMAT!r}")
    return manifest


def _manifest(
    model: EncoderDecoder, recipe: Recipe, tokenizer_dir: Path, weights: str, diff: float
) -> dict[str, Any]:
    decoder = model.decoder
    tokenizers = sorted(p.name for p in tokenizer_dir.iterdir() if p.is_file())
    joint = recipe.tokenizer.joint
    sentencepiece = all(name.endswith(".model") for name in tokenizers)
    search = recipe.search
    return {
        "format": FORMAT,
        "weights": weights,
        "task": recipe.task,
        "specials": {"pad": PAD_ID, "unk": UNK_ID, "bos": BOS_ID, "eos": EOS_ID},
        "files": {
            "encoder": ENCODER_FILE,
            "step": STEP_FILE,
            "step_int8": INT8_STEP_FILE,
            "encoder_int8": INT8_ENCODER_FILE,
            "output_weight": WEIGHT_FILE,
            "output_bias": BIAS_FILE,
            "output_weight_int8": INT8_WEIGHT_FILE,
            "output_scale": SCALE_FILE,
        },
        "step_inputs": list(step_input_names(decoder)),
        "step_int8_inputs": list(step_input_names(decoder, int8_output=True)),
        "step_outputs": list(step_output_names(decoder)),
        "decoder": {
            "layers": decoder.rnn.num_layers,
            "hidden_dim": decoder.rnn.hidden_size,
            "output_dim": decoder.output_dim,
            "input_feeding": decoder.input_feeding,
            "copy": decoder.copy,
            "vocab": decoder.project.out_features,
        },
        "tokenizer": {
            "kind": "sentencepiece" if sentencepiece else recipe.tokenizer.model_type,
            "source": f"tokenizer/{'joint' if joint else 'src'}{Path(tokenizers[0]).suffix}",
            "target": f"tokenizer/{'joint' if joint else 'tgt'}{Path(tokenizers[0]).suffix}",
        },
        "max_input_len": recipe.data.max_len,
        "search": {
            "beam_size": search.beam_size,
            "length_penalty": search.length_penalty if search.length_norm == "gnmt" else 0.0,
            "max_len_a": search.max_len_a,
            "max_len_b": search.max_len_b,
            "batch_size": search.batch_size,
        },
        "checked_difference": diff,
    }


def _replace_dir(new: Path, target: Path) -> None:
    """Put directory ``new`` where ``target`` is (an older export is removed first)."""
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
        new.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        new.rename(target)


def _max_diff(got: np.ndarray, expected: torch.Tensor) -> float:
    want = expected.detach().float().numpy()
    finite = np.isfinite(want)
    if not np.array_equal(finite, np.isfinite(got)):
        return float("inf")
    return float(np.abs(got[finite] - want[finite]).max()) if finite.any() else 0.0
