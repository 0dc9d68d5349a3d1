"""ONNX export and engine: the exported graphs compute what the model computes (every
decoder variant, grouped beam rows, shortlisted rows); ``search.engine=onnx`` gives the
same outputs as PyTorch in every search mode; the cached export is reused until the
weights change; an export directory translates with torch not importable, as seq2seq
does; bad settings and directories are refused naming what is wrong."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import random_batch, run_cli, tiny_model

pytest.importorskip("onnxruntime")

from seq2seq.config import ConfigError
from seq2seq.data.tokenizer import BOS_ID, EOS_ID
from seq2seq.export.engine import OnnxModel
from seq2seq.export.onnx_export import (
    FORMAT,
    MANIFEST,
    ExportError,
    check_export,
    export_graphs,
    read_manifest,
)
from seq2seq.inference import Translator

VARIANTS = {
    "general": {},
    "bahdanau, input feeding": {"attention": "bahdanau", "input_feeding": True},
    "copy": {"copy": True},
    "copy, input feeding, bahdanau": {"copy": True, "input_feeding": True, "attention": "bahdanau"},
    "zero bridge": {"bridge": "zero"},
    "dot, copy bridge": {"attention": "dot", "bridge": "copy"},
}
LINES = ["1 2 3", "4 5 6 7 8", "", "9 8 7 6 5 4 3", "2 2"]


def _write_raw(model: torch.nn.Module, directory: Path) -> Path:
    """Graphs only, plus the manifest fields OnnxModel reads."""
    directory.mkdir()
    export_graphs(model, directory)
    from seq2seq.export.graphs import StepGraph

    step = StepGraph(model)
    manifest = {
        "format": FORMAT,
        "files": {
            "encoder": "encoder.onnx",
            "step": "decoder_step.onnx",
            "output_weight": "output_weight.npy",
            "output_bias": "output_bias.npy",
        },
        "step_inputs": list(step.input_names),
        "decoder": {
            "input_feeding": model.decoder.input_feeding,
            "copy": model.decoder.copy,
            "output_dim": model.decoder.output_dim,
        },
    }
    (directory / MANIFEST).write_text(json.dumps(manifest))
    return directory


@pytest.mark.parametrize("variant", VARIANTS)
def test_exported_graphs_compute_the_models_step(variant: str, tmp_path: Path):
    model = tiny_model(50, seed=1, **VARIANTS[variant])
    export_graphs(model, tmp_path)
    # check_export compares on 3 sources x 4 hypotheses each, shapes never traced
    assert check_export(model, tmp_path) < 1e-4


@pytest.mark.parametrize("variant", ["general", "copy, input feeding, bahdanau"])
def test_engine_steps_equal_the_models_through_reordering_and_shortlists(
    variant: str, tmp_path: Path
):
    model = tiny_model(60, seed=2, **VARIANTS[variant])
    onnx = OnnxModel(_write_raw(model, tmp_path / "export"), threads=1)
    src, lengths = random_batch(3, 60, seed=4)
    sources = torch.arange(3)
    grouped = sources.repeat_interleave(2)  # two hypotheses per source, as a beam has
    ids = torch.cat([torch.arange(4), src.unique()[src.unique() > 3], torch.tensor([40, 41])])
    ids = ids.unique()
    with torch.no_grad():
        states = []
        for m in (model, onnx):
            state = m.init_state(m.encode(src, lengths))
            states.append(m.reorder(state, grouped, sources=sources))
        tokens = torch.tensor([BOS_ID, 7, 8, 9, 10, 11])
        # a shortlist's penalty: each row's own candidates (every third one ruled out)
        ruled_out = (torch.arange(ids.numel()) + torch.arange(6).unsqueeze(1)) % 3 == 0
        ruled_out[:, EOS_ID] = False  # EOS's position: the specials lead the sorted ids
        penalty = torch.zeros(ruled_out.shape).masked_fill_(ruled_out, -torch.inf)
        for rows in (None, "shortlist", "penalised shortlist"):
            out = []
            for m, state in zip((model, onnx), states, strict=True):
                listed = None if rows is None else m.output_rows(ids)
                penalised = penalty if rows == "penalised shortlist" else None
                log_probs, next_state, attn = m.step(tokens, state, listed, penalised)
                log_probs, next_state, attn = m.step(tokens.flip(0), next_state, listed, penalised)
                out.append((log_probs, next_state.hidden, attn))
            for got, want in zip(out[1], out[0], strict=True):
                torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
            if rows == "penalised shortlist":  # normalised over each row's own candidates
                assert bool((out[1][0][penalty.isinf()] == -torch.inf).all())
                torch.testing.assert_close(out[1][0].logsumexp(-1), torch.zeros(6))


@pytest.fixture(scope="module")
def exported_run(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained toy run, copied (its ONNX export is written into it)."""
    run = tmp_path_factory.mktemp("onnx") / "toy"
    shutil.copytree(trained, run)
    return run


SEARCHES = {
    "beam 5": {},
    "greedy": {"beam_size": 1},
    "beam 3, 2 best, coverage": {"beam_size": 3, "nbest": 2, "coverage_penalty": 0.2},
    "sampling": {"sampling": True, "seed": 5, "top_k": 3},
    "batch of 2": {"batch_size": 2, "length_penalty": 1.0},
}


@pytest.mark.parametrize("search", SEARCHES)
def test_onnx_engine_translates_as_torch(search: str, exported_run: Path):
    settings = SEARCHES[search]
    translator = Translator.from_checkpoint(exported_run, search=settings)
    torch_out = translator.translate_nbest(LINES)
    with translator.using(engine="onnx"):
        onnx_out = translator.translate_nbest(LINES)
    assert [[text for text, _ in n] for n in onnx_out] == [
        [text for text, _ in n] for n in torch_out
    ]
    for mine, theirs in zip(onnx_out, torch_out, strict=True):
        for (_, a), (_, b) in zip(mine, theirs, strict=True):
            assert a.score == pytest.approx(b.score, abs=1e-4)


def test_onnx_engine_with_a_shortlist_and_a_prefix(
    exported_run: Path, toy_env: Path, monkeypatch, capsys
):
    code, _, err = run_cli(["shortlist", str(exported_run)], "", monkeypatch, capsys)
    assert code == 0, err
    translator = Translator.from_checkpoint(exported_run, search={"shortlist": 3})
    plain = translator.hypotheses(LINES, prefixes=["9", "", "", "", "1"])
    with translator.using(engine="onnx"):
        onnx = translator.hypotheses(LINES, prefixes=["9", "", "", "", "1"])
    assert [[h.tokens for h in hyps] for hyps in onnx] == [
        [h.tokens for h in hyps] for hyps in plain
    ]


def test_the_export_is_cached_until_the_weights_change(exported_run: Path):
    translator = Translator.from_checkpoint(exported_run, search={"engine": "onnx"})
    translator.translate(LINES[:1])
    export = translator.onnx_model().directory
    assert export.parent == exported_run / "onnx"
    written = (export / MANIFEST).stat().st_mtime_ns
    again = Translator.from_checkpoint(exported_run, search={"engine": "onnx"})
    again.translate(LINES[:1])
    assert (export / MANIFEST).stat().st_mtime_ns == written  # reused
    weights = exported_run / translator.weights
    later = (export / MANIFEST).stat().st_mtime + 10
    os.utime(weights, (later, later))
    Translator.from_checkpoint(exported_run, search={"engine": "onnx"}).translate(LINES[:1])
    assert (export / MANIFEST).stat().st_mtime_ns != written  # written anew


def _without_torch(script: Path, *args: str, stdin: str) -> subprocess.CompletedProcess:
    """Run ``script`` in a fresh interpreter where importing torch or seq2seq fails."""
    blocker = (
        "import sys, runpy\n"
        "sys.modules['torch'] = None\n"
        "sys.modules['seq2seq'] = None\n"
        f"sys.argv = {[str(script), *args]!r}\n"
        f"runpy.run_path({str(script)!r}, run_name='__main__')\n"
    )
    return subprocess.run(
        [sys.executable, "-c", blocker], input=stdin, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("beam", [5, 1])
def test_an_export_translates_without_torch_as_seq2seq_does(
    beam: int, exported_run: Path, tmp_path: Path, monkeypatch, capsys
):
    out_dir = tmp_path / "export"
    code, _, err = run_cli(
        ["export", str(exported_run), "--format", "onnx", "-o", str(out_dir)],
        "",
        monkeypatch,
        capsys,
    )
    assert code == 0, err
    assert read_manifest(out_dir)["weights"]
    assert {"encoder.onnx", "decoder_step.onnx", "translate.py", "tokenizer"} <= {
        p.name for p in out_dir.iterdir()
    }
    translator = Translator.from_checkpoint(exported_run, search={"beam_size": beam})
    expected = translator.translate(LINES)
    done = _without_torch(
        out_dir / "translate.py", "--beam-size", str(beam), stdin="\n".join(LINES) + "\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == expected
    assert "torch" not in done.stderr
    side_by_side = _without_torch(  # one-sentence batches on two workers, one thread each
        out_dir / "translate.py",
        *("--beam-size", str(beam), "--batch-size", "1", "--workers", "2", "--threads", "1"),
        stdin="\n".join(LINES) + "\n",
    )
    assert side_by_side.returncode == 0, side_by_side.stderr
    assert side_by_side.stdout.splitlines() == expected
    with translator.using(engine="onnx", precision="int8"):  # the int8 graph and layer
        expected_int8 = translator.translate(LINES)
    int8 = _without_torch(
        out_dir / "translate.py", "--beam-size", str(beam), "--int8", stdin="\n".join(LINES) + "\n"
    )
    assert int8.returncode == 0, int8.stderr
    assert int8.stdout.splitlines() == expected_int8


def test_auto_is_onnx_where_it_runs_and_torch_elsewhere(
    exported_run: Path, tmp_path: Path, monkeypatch, caplog
):
    torch_outputs = Translator.from_checkpoint(exported_run, search={"engine": "torch"})
    expected = torch_outputs.translate(LINES)
    auto = Translator.from_checkpoint(exported_run, search={"engine": "auto"})
    assert auto.engine == "onnx"  # the CPU, one model, onnxruntime, a writable run
    assert auto.translate(LINES) == expected
    with auto.using(precision="int8"):
        assert (auto.engine, auto.precision) == ("onnx", "int8")
    with auto.using(precision="bf16"):
        assert auto.engine == "torch"
    assert Translator.from_checkpoint([exported_run, exported_run]).engine == "torch"
    nowhere = Translator.from_checkpoint(exported_run)
    nowhere.run_dir = None  # nowhere to export into
    assert nowhere.engine == "torch"
    # an export that fails: auto decodes with PyTorch and says why, once
    fresh = tmp_path / "fresh"
    shutil.copytree(exported_run, fresh, ignore=shutil.ignore_patterns("onnx"))

    def failing(*args, **kwargs):
        raise ExportError("export: the step's log-probs differ by 0.5 (> 0.001)")

    monkeypatch.setattr("seq2seq.export.onnx_export.cached_export", failing)
    failed = Translator.from_checkpoint(fresh)
    assert failed.engine == "onnx"
    with caplog.at_level("WARNING"):
        assert failed.translate(LINES) == expected
        assert failed.translate(LINES) == expected
    assert failed.engine == "torch"
    warnings = [r.getMessage() for r in caplog.records if "no ONNX export" in r.getMessage()]
    assert len(warnings) == 1 and "differ by 0.5" in warnings[0]


def test_refusals_name_the_setting(exported_run: Path, tmp_path: Path, monkeypatch, capsys):
    refused = r"search\.engine=onnx runs float32 .*search\.precision=fp32"
    with pytest.raises(ConfigError, match=refused):
        Translator.from_checkpoint(
            exported_run, search={"engine": "onnx", "precision": "bf16"}
        ).translate(["1"])
    pair = Translator.from_checkpoint([exported_run, exported_run], search={"engine": "onnx"})
    with pytest.raises(ConfigError, match="not an ensemble"):
        pair.translate(["1 2"])
    with pytest.raises(ConfigError, match=r"search\.engine"):
        Translator.from_checkpoint(exported_run, search={"engine": "tensorrt"})
    with pytest.raises(ExportError, match=r"manifest\.json: not found"):
        read_manifest(tmp_path)
    (tmp_path / MANIFEST).write_text('{"format": "other/9"}')
    with pytest.raises(ExportError, match=r"manifest\.json: format 'other/9'"):
        read_manifest(tmp_path)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    code, _, err = run_cli(["export", str(exported_run), "-o", str(busy)], "", monkeypatch, capsys)
    assert code == 2 and "not an export directory" in err
    assert (busy / "notes.txt").read_text() == "mine"


def test_the_int8_step_is_near_the_float_one_and_translates(exported_run: Path):
    translator = Translator.from_checkpoint(exported_run, search={"engine": "onnx"})
    directory = translator.onnx_model().directory
    files = read_manifest(directory)["files"]
    float_size = (directory / files["step"]).stat().st_size
    assert (directory / files["step_int8"]).stat().st_size < float_size / 2
    models = OnnxModel(directory, threads=1), OnnxModel(directory, threads=1, int8=True)
    src, lengths = random_batch(4, 10, seed=3)
    src = src + 3 * (src > 3)  # digits' ids, as the toy vocabulary has them
    assert (directory / files["encoder_int8"]).is_file()
    out, memories = [], []
    with torch.no_grad():
        for model in models:
            state = model.init_state(model.encode(src, lengths))
            memories.append(state.memory)
            out.append(model.step(torch.full((4,), BOS_ID), state)[0])
    assert not torch.equal(memories[0], memories[1])  # the int8 encoder is another one
    torch.testing.assert_close(memories[1], memories[0], atol=0.05, rtol=0)
    assert not torch.equal(out[0], out[1])  # the int8 graph is another computation
    torch.testing.assert_close(out[1].exp(), out[0].exp(), atol=0.05, rtol=0)
    # the int8 output layer's rows gathered for a shortlist: the full layer's log-probs
    # on those ids, renormalised over them
    ids = torch.tensor([0, 1, 2, 3, 5, 8, 13])
    with torch.no_grad():
        state = models[1].init_state(models[1].encode(src, lengths))
        listed = models[1].step(torch.full((4,), BOS_ID), state, models[1].output_rows(ids))[0]
    on_ids = out[1][:, ids]
    torch.testing.assert_close(listed, on_ids - on_ids.logsumexp(-1, keepdim=True))
    with translator.using(precision="int8"):
        assert translator.precision == "int8"
        assert len(translator.translate(LINES)) == len(LINES)


def test_onnx_engine_decodes_batches_side_by_side_on_one_thread_each(exported_run: Path):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        translator = Translator.from_checkpoint(
            exported_run, search={"engine": "onnx", "batch_size": 2, "workers": 1}
        )
        alone = translator.translate_nbest(LINES)
        with translator.using(workers=2):
            side_by_side = translator.translate_nbest(LINES)
    finally:
        torch.set_num_threads(before)
    assert [[t for t, _ in n] for n in side_by_side] == [[t for t, _ in n] for n in alone]
    threads = {
        key: model.step_session.get_session_options().intra_op_num_threads
        for key, model in translator.engines.exports.items()
    }
    assert threads == {"onnx-2": 2, "onnx-1": 1}  # the workers' own sessions, one thread each
