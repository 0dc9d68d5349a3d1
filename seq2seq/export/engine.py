"""``search.engine: onnx``: the decoder contract over ONNX Runtime sessions.

Search runs its own loop (greedy, beam, sampling, every token rule, shortlists) and sees
``OnnxModel`` exactly as it sees ``EncoderDecoder``: encode, init_state, step, reorder,
output_rows. Tensors cross into ONNX Runtime as numpy arrays without copies (both sides
are CPU float32), and states are ``DecoderState``s, so reordering, grouping a beam's
hypotheses per source and the shortlist's rows are the PyTorch model's own code.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from seq2seq.export.graphs import NO_PENALTY, int8_layer_inputs
from seq2seq.export.onnx_export import read_manifest, require_onnx
from seq2seq.model.decoder_state import DecoderState
from seq2seq.model.output_rows import positions_of


@dataclass
class OnnxEncoded:
    """What the encoder graph gives: memory (B, S, M), keys (B, S, K), mask (B, S), the
    decoder's initial hidden and cell (L, B, H), and the source ids (B, S)."""

    memory: torch.Tensor
    keys: torch.Tensor
    mask: torch.Tensor
    hidden: torch.Tensor
    cell: torch.Tensor
    src: torch.Tensor


@dataclass(frozen=True)
class OnnxRows:
    """The output layer over target ids (V',) (a shortlist) as the step graph takes it:
    ``layer`` its inputs by name (out_weight, out_bias; out_scale in int8), ``positions``
    (V,) each id's row, -1 for the rest (a copying decoder scatters attention onto them)."""

    ids: torch.Tensor
    layer: dict[str, torch.Tensor]
    positions: torch.Tensor


class OnnxModel(nn.Module):
    """An export directory (export/onnx_export.py) as a model search can decode with.

    An ``nn.Module`` without parameters, so that ``eval()``/``train()`` and ``training``
    behave as search expects; it computes nothing with torch but the reordering."""

    def __init__(
        self, directory: str | Path, threads: int | None = None, int8: bool = False
    ) -> None:
        """``int8``: encode and step with the int8 graphs (export/onnx_export.py,
        quantize_graphs), the output layer's rows in int8 too."""
        super().__init__()
        require_onnx()
        import onnxruntime as ort

        self.directory = Path(directory)
        manifest = read_manifest(self.directory)
        self.manifest = manifest
        files, decoder = manifest["files"], manifest["decoder"]
        self.input_feeding = bool(decoder["input_feeding"])
        self.copy = bool(decoder["copy"])
        self.output_dim = int(decoder["output_dim"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # ONNX Runtime's threads spin between ops by default; beside PyTorch's (search
        # runs its top-k and reordering in torch) they only take the cores from each
        # other: beam 5 x 64 on 2 cores went from 91.8 to 102.1 sentences/s without it
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = ["CPUExecutionProvider"]
        self.encoder = ort.InferenceSession(
            str(self.directory / files["encoder_int8" if int8 else "encoder"]), options, providers
        )
        self.step_session = ort.InferenceSession(
            str(self.directory / files["step_int8" if int8 else "step"]), options, providers
        )
        self.step_inputs = list(manifest["step_int8_inputs" if int8 else "step_inputs"])
        # the output layer (V, O) (int8 with a scale per row: the int8 step's) and bias (V,)
        self.out_weight = self._load(files["output_weight_int8" if int8 else "output_weight"])
        self.out_scale = self._load(files["output_scale"]) if int8 else None
        self.out_bias = self._load(files["output_bias"])
        self.vocab = self.out_bias.size(0)
        self.full_layer = self._layer(self.out_weight, self.out_scale, self.out_bias)

    def _load(self, name: str) -> torch.Tensor:
        return torch.from_numpy(np.load(self.directory / name))

    def _layer(
        self, weight: torch.Tensor, scale: torch.Tensor | None, bias: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """The step graph's output-layer inputs for rows weight (V', O), scale, bias."""
        if scale is None:
            return {"out_weight": weight, "out_bias": bias}
        return int8_layer_inputs(weight, scale, bias)

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> OnnxEncoded:
        """src (B, S) ids, src_lengths (B,)."""
        feeds = {"src": _array(src.long()), "lengths": _array(src_lengths.long())}
        memory, keys, mask, hidden, cell = (
            torch.from_numpy(out) for out in self.encoder.run(None, feeds)
        )
        return OnnxEncoded(memory, keys, mask, hidden, cell, src)

    def init_state(self, encoded: OnnxEncoded) -> DecoderState:
        feed = None
        if self.input_feeding:
            feed = encoded.memory.new_zeros(encoded.memory.size(0), self.output_dim)
        src = encoded.src if self.copy else None
        return DecoderState(
            encoded.hidden, encoded.cell, feed, encoded.memory, encoded.keys, encoded.mask, src
        )

    def step(
        self,
        tokens: torch.Tensor,
        state: DecoderState,
        rows: OnnxRows | None = None,
        penalty: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """tokens (R,) -> log-probs (R, V) (or (R, V') over ``rows``, normalised with
        ``penalty`` (R, V') added: a shortlist's), next state, attention (R, S)."""
        layer = self.full_layer if rows is None else rows.layer
        copy_index = state.src
        if copy_index is not None and rows is not None:
            copy_index = rows.positions[copy_index]
        values: dict[str, Any] = {
            "tokens": tokens,
            "hidden": state.hidden,
            "cell": state.cell,
            "feed": state.feed,
            "memory": state.memory,
            "keys": state.keys,
            "mask": state.mask,
            "copy_index": copy_index,
            **layer,
            "penalty": NO_PENALTY if penalty is None else penalty,
        }
        feeds = {name: _array(values[name]) for name in self.step_inputs}
        outputs = [torch.from_numpy(out) for out in self.step_session.run(None, feeds)]
        log_probs, hidden, cell = outputs[:3]
        feed = outputs[3] if self.input_feeding else None
        return log_probs, replace(state, hidden=hidden, cell=cell, feed=feed), outputs[-1]

    def reorder(
        self,
        state: DecoderState,
        index: torch.Tensor,
        same_sources: bool = False,
        sources: torch.Tensor | None = None,
    ) -> DecoderState:
        return state.select(index, same_sources, sources)

    def join(self, state: DecoderState, other: DecoderState) -> DecoderState:
        return state.join(other)

    def output_rows(self, ids: torch.Tensor) -> OnnxRows:
        """The output layer's rows for target ids ``ids`` (V',) (a shortlist), gathered
        once per search batch."""
        scale = None if self.out_scale is None else self.out_scale.index_select(0, ids)
        layer = self._layer(
            self.out_weight.index_select(0, ids), scale, self.out_bias.index_select(0, ids)
        )
        return OnnxRows(ids, layer, positions_of(ids, self.vocab))


def _array(tensor: torch.Tensor) -> np.ndarray:
    """A CPU tensor as a C-contiguous numpy array (shared memory where it already is)."""
    return np.ascontiguousarray(tensor.detach().cpu().numpy())
