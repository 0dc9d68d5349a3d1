"""Translate with an ONNX export of a seq2seq run, with numpy, onnxruntime and sentencepiece
only: no PyTorch, no seq2seq package. ``seq2seq export RUN --format onnx -o DIR`` copies
this file to DIR/translate.py:

    python DIR/translate.py < input.txt > output.txt
    python DIR/translate.py --beam-size 1 --batch-size 32 < input.txt
    python DIR/translate.py --workers 1 --threads 2 < input.txt   # one batch at a time

The search follows seq2seq's own (seq2seq/search/beam.py): per step the 2K best
continuations of each sentence; those ending in EOS among the first K finish, the first K
that do not go on; PAD and BOS are never chosen; at its length limit ((source tokens) *
max_len_a + max_len_b) a hypothesis may only end; finished ones rank by log-prob / GNMT
length penalty, and a sentence stops once no live hypothesis can beat its best. Beam 1 is
greedy. The exported step takes R hypotheses grouped R / B per source, so a sentence's K
hypotheses share one copy of its encoder memory. Batches decode side by side, one per
core, each session call on one thread (``--workers``, ``--threads``), as seq2seq does.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import sentencepiece as spm

FORMAT = "seq2seq-onnx/4"
INPUT_CAP = 4  # lines are cut at this many times the longest seen in training
NEG_INF = np.float32(-np.inf)


class ExportedModel:
    """An export directory: its two ONNX sessions, output layer, tokenizers and manifest."""

    def __init__(self, directory: str | Path, threads: int = 0, int8: bool = False) -> None:
        self.directory = Path(directory)
        path = self.directory / "manifest.json"
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise SystemExit(f"translate.py: {path}: cannot read the manifest: {err}") from None
        if manifest.get("format") != FORMAT:
            raise SystemExit(
                f"translate.py: {path}: format {manifest.get('format')!r}, not {FORMAT}"
            )
        if manifest["tokenizer"]["kind"] != "sentencepiece":
            kind = manifest["tokenizer"]["kind"]
            raise SystemExit(
                f"translate.py: {path}: the run's tokenizer is {kind!r}; this script reads "
                "sentencepiece models only (translate with seq2seq and search.engine=onnx)"
            )
        self.manifest = manifest
        specials = manifest["specials"]
        self.pad, self.bos, self.eos = specials["pad"], specials["bos"], specials["eos"]
        files = manifest["files"]
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        providers = ["CPUExecutionProvider"]
        self.encoder = ort.InferenceSession(
            str(self.directory / files["encoder_int8" if int8 else "encoder"]),
            options,
            providers=providers,
        )
        self.step_session = ort.InferenceSession(
            str(self.directory / files["step_int8" if int8 else "step"]),
            options,
            providers=providers,
        )
        self.step_inputs = manifest["step_int8_inputs" if int8 else "step_inputs"]
        bias = np.load(self.directory / files["output_bias"])
        if int8:  # the int8 step takes the output layer as int8 columns with a scale each
            weight = np.load(self.directory / files["output_weight_int8"])
            scale = np.load(self.directory / files["output_scale"])
            self.output_layer = {
                "out_weight": np.ascontiguousarray(weight.T),
                "out_scale": scale,
                "out_bias": bias,
            }
        else:
            weight = np.load(self.directory / files["output_weight"])
            self.output_layer = {"out_weight": weight, "out_bias": bias}
        # no shortlist here: (1, 1) zeros, which the graph broadcasts over every row
        self.output_layer["penalty"] = np.zeros((1, 1), dtype=np.float32)
        tokenizer = manifest["tokenizer"]
        self.src_sp = self._sentencepiece(tokenizer["source"])
        self.tgt_sp = self._sentencepiece(tokenizer["target"])
        self.input_feeding = manifest["decoder"]["input_feeding"]
        self.output_dim = manifest["decoder"]["output_dim"]

    def _sentencepiece(self, name: str) -> spm.SentencePieceProcessor:
        sp = spm.SentencePieceProcessor(model_file=str(self.directory / name))
        if [sp.pad_id(), sp.bos_id(), sp.eos_id()] != [self.pad, self.bos, self.eos]:
            raise SystemExit(
                f"translate.py: {name}: its special ids differ from the model's "
                "(a tokenizer trained elsewhere); translate with seq2seq and search.engine=onnx"
            )
        return sp

    def encode(self, src: np.ndarray, lengths: np.ndarray) -> dict[str, np.ndarray]:
        names = ("memory", "keys", "mask", "hidden", "cell")
        return dict(
            zip(names, self.encoder.run(None, {"src": src, "lengths": lengths}), strict=True)
        )

    def step(self, values: dict[str, Any]) -> list[np.ndarray]:
        """One decoder step; ``values`` by input name (see the manifest's step_inputs)."""
        values = {**values, **self.output_layer}
        if "copy_index" in self.step_inputs:
            values["copy_index"] = values["src"]
        return self.step_session.run(None, {name: values[name] for name in self.step_inputs})


class Beams:
    """The live hypotheses of the sentences still searching: n sentences x K rows."""

    def __init__(
        self, model: ExportedModel, src: np.ndarray, lengths: np.ndarray, k: int, limits: np.ndarray
    ) -> None:
        enc = model.encode(src, lengths)
        n = src.shape[0]
        self.k = k
        self.sent = np.arange(n)
        self.limit = limits
        self.scores = np.full((n, k), NEG_INF, dtype=np.float32)
        self.scores[:, 0] = 0.0  # the K rows start equal: only the first is live
        self.seqs = np.zeros((n * k, 0), dtype=np.int64)
        # one state row per sentence until the first step's choice (its K rows would be
        # the same), then K: ``expanded``
        self.expanded = False
        self.state = {
            "hidden": enc["hidden"],
            "cell": enc["cell"],
            "memory": enc["memory"],
            "keys": enc["keys"],
            "mask": enc["mask"],
            "src": src,
        }
        if model.input_feeding:
            self.state["feed"] = np.zeros((n, model.output_dim), dtype=np.float32)

    def reorder(self, rows: np.ndarray) -> None:
        """Hypothesis rows (n*K,) of the same sentences, in that order."""
        state_rows = rows if self.expanded else rows // self.k
        self.expanded = True
        for name in ("hidden", "cell"):
            self.state[name] = self.state[name][:, state_rows]
        if "feed" in self.state:
            self.state["feed"] = self.state["feed"][state_rows]
        self.seqs = self.seqs[rows]

    def keep(self, alive: np.ndarray) -> None:
        """Only sentences ``alive`` (positions among the current n) go on."""
        rows = (alive[:, None] * self.k + np.arange(self.k)).reshape(-1)
        self.reorder(rows)
        for name in ("memory", "keys", "mask", "src"):
            self.state[name] = self.state[name][alive]
        self.sent, self.limit, self.scores = self.sent[alive], self.limit[alive], self.scores[alive]


def length_penalty(length: np.ndarray | int, alpha: float) -> np.ndarray | float:
    """GNMT: ((5 + length) / 6) ** alpha; length counts EOS."""
    return ((5.0 + np.asarray(length, dtype=np.float64)) / 6.0) ** alpha


def search(
    model: ExportedModel,
    src: np.ndarray,
    lengths: np.ndarray,
    beam_size: int,
    alpha: float,
    a: float,
    b: int,
) -> list[list[int]]:
    """Best output ids (EOS excluded) per sentence of the padded batch src (B, S)."""
    k = beam_size
    limits = np.maximum(np.floor((lengths - 1) * a + b), 1).astype(np.int64)
    beams = Beams(model, src, lengths, k, limits)
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(src.shape[0])]
    tokens = np.full(src.shape[0], model.bos, dtype=np.int64)  # one row each at first
    for t in range(int(limits.max()) + 1):
        out = model.step({"tokens": tokens, **beams.state})
        log_probs = out[0] if beams.expanded else np.repeat(out[0], k, axis=0)
        beams.state["hidden"], beams.state["cell"] = out[1], out[2]
        if model.input_feeding:
            beams.state["feed"] = out[3]
        _rules(log_probs, np.repeat(beams.limit <= t, k), model)
        n, vocab = beams.scores.shape[0], log_probs.shape[1]
        candidates = (beams.scores[:, :, None] + log_probs.reshape(n, k, vocab)).reshape(n, -1)
        top_index = _top(candidates, 2 * k)  # (n, 2K), best first
        top_scores = np.take_along_axis(candidates, top_index, axis=1)
        top_beam, top_token = top_index // vocab, top_index % vocab
        is_eos = (top_token == model.eos) & np.isfinite(top_scores)
        for i, j in zip(*np.nonzero(is_eos[:, :k]), strict=True):
            seq = beams.seqs[i * k + top_beam[i, j]].tolist()
            score = float(top_scores[i, j]) / float(length_penalty(len(seq) + 1, alpha))
            finished[beams.sent[i]].append((score, seq))
        order = np.argsort(is_eos * (2 * k) + np.arange(2 * k), axis=1, kind="stable")[:, :k]
        next_beam = np.take_along_axis(top_beam, order, axis=1)
        tokens = np.take_along_axis(top_token, order, axis=1).reshape(-1)
        beams.reorder((np.arange(n)[:, None] * k + next_beam).reshape(-1))
        beams.seqs = np.concatenate([beams.seqs, tokens[:, None]], axis=1)
        beams.scores = np.take_along_axis(top_scores, order, axis=1).astype(np.float32)
        done = _done(beams, finished, t, alpha)
        if done.all():
            break
        if done.any():
            alive = np.nonzero(~done)[0]
            tokens = tokens.reshape(n, k)[alive].reshape(-1)
            beams.keep(alive)
    return [max(hyps, key=lambda h: h[0])[1] if hyps else [] for hyps in finished]


def _rules(log_probs: np.ndarray, at_limit: np.ndarray, model: ExportedModel) -> None:
    """In place: PAD and BOS are never chosen; rows at their limit may only end."""
    log_probs[:, model.pad] = NEG_INF
    log_probs[:, model.bos] = NEG_INF
    if at_limit.any():
        eos = log_probs[at_limit, model.eos].copy()
        log_probs[at_limit] = NEG_INF
        log_probs[at_limit, model.eos] = eos


def _top(values: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` largest values per row, largest first."""
    part = np.argpartition(-values, count - 1, axis=1)[:, :count]
    order = np.argsort(-np.take_along_axis(values, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def _done(
    beams: Beams, finished: list[list[tuple[float, list[int]]]], t: int, alpha: float
) -> np.ndarray:
    """(n,) True where a sentence is at its limit or its best finished hypothesis beats
    the best score a live one could still reach (log-probs only fall; the penalty grows)."""
    bound = beams.scores.max(axis=1) / length_penalty(beams.limit + 1, alpha)
    done = beams.limit <= t
    if beams.k == 1:  # greedy: a sentence ends with its first EOS
        return done | np.array([bool(finished[sent]) for sent in beams.sent])
    for i, sent in enumerate(beams.sent):
        if not done[i] and finished[sent]:
            done[i] = max(h[0] for h in finished[sent]) >= bound[i]
    return done


def translate(
    model: ExportedModel,
    lines: list[str],
    beam_size: int,
    batch_size: int,
    alpha: float,
    a: float,
    b: int,
    workers: int = 1,
) -> list[str]:
    """One output per line (an empty line gives an empty output), in input order;
    ``workers`` batches decode side by side."""
    cap = model.manifest["max_input_len"] * INPUT_CAP
    keep = [i for i, line in enumerate(lines) if line.strip()]
    ids = [
        [*seq[:cap], model.eos]
        for seq in model.src_sp.encode([lines[i] for i in keep], out_type=int)
    ]
    outputs = [""] * len(lines)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]

    def decode(batch: list[int]) -> list[list[int]]:
        lengths = np.array([len(ids[i]) for i in batch], dtype=np.int64)
        src = np.full((len(batch), int(lengths.max())), model.pad, dtype=np.int64)
        for row, i in enumerate(batch):
            src[row, : lengths[row]] = ids[i]
        return search(model, src, lengths, beam_size, alpha, a, b)

    # batches side by side (each worker's session calls run on its own thread)
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for batch, best in zip(batches, pool.map(decode, batches), strict=True):
            for i, out in zip(batch, best, strict=True):
                outputs[keep[i]] = model.tgt_sp.decode(out)
    return outputs


def _cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "export_dir", nargs="?", default=str(here), help="default: this file's folder"
    )
    parser.add_argument("--beam-size", type=int, help="1 = greedy (default: the recipe's)")
    parser.add_argument(
        "--batch-size", type=int, help="sentences per batch (default: the recipe's)"
    )
    parser.add_argument("--length-penalty", type=float, help="GNMT alpha (default: the recipe's)")
    parser.add_argument("--max-len-a", type=float)
    parser.add_argument("--max-len-b", type=int)
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="compute threads per session (0 = 1 with several workers, else onnxruntime's choice)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="batches decoded side by side (0 = one per core, as seq2seq's search.workers)",
    )
    parser.add_argument("--int8", action="store_true", help="the step's weights in int8")
    args = parser.parse_args(argv)
    workers = args.workers or _cores()
    threads = args.threads or (1 if workers > 1 else 0)
    model = ExportedModel(args.export_dir, threads, args.int8)
    defaults = model.manifest["search"]
    settings = {
        "beam_size": args.beam_size or defaults["beam_size"],
        "batch_size": args.batch_size or defaults["batch_size"],
        "alpha": defaults["length_penalty"] if args.length_penalty is None else args.length_penalty,
        "a": defaults["max_len_a"] if args.max_len_a is None else args.max_len_a,
        "b": defaults["max_len_b"] if args.max_len_b is None else args.max_len_b,
    }
    if settings["beam_size"] < 1 or settings["batch_size"] < 1:
        parser.error("--beam-size and --batch-size must be at least 1")
    lines = [line.rstrip("\n") for line in sys.stdin]
    for out in translate(model, lines, **settings, workers=workers):
        print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
