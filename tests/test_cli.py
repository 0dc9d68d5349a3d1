"""End to end through the command line: train a tiny model on a generated task, translate
with it, score it; check it learned (exact match far above chance) and that bad input
gets a one-line error."""

import io
import json
import sys
from pathlib import Path

import pytest
import torch
from helpers import TOY_RECIPE, run_cli

from seq2seq.cli import main


def test_translate_learned_to_reverse(trained: Path, toy_root: Path, monkeypatch, capsys):
    sources = (toy_root / "toy_reverse" / "test.src").read_text().splitlines()
    targets = (toy_root / "toy_reverse" / "test.tgt").read_text().splitlines()
    code, out, _ = run_cli(
        ["translate", str(trained), "-q"], "\n".join(sources) + "\n", monkeypatch, capsys
    )
    assert code == 0
    outputs = out.splitlines()
    assert len(outputs) == len(sources)
    exact = sum(o == t for o, t in zip(outputs, targets, strict=True)) / len(targets)
    assert exact > 0.5, f"exact match {exact:.2f}; chance is below 0.001"


def test_empty_lines_stay_empty_and_aligned(trained: Path, monkeypatch, capsys):
    code, out, _ = run_cli(
        ["translate", str(trained), "-q", "beam_size=1"], "1 2 3\n\n4 5 6 7\n", monkeypatch, capsys
    )
    assert code == 0
    lines = out.split("\n")
    assert len(lines) == 4 and lines[1] == "" and lines[3] == ""
    assert lines[0] and lines[2]


def test_translate_files_and_nbest(trained: Path, tmp_path: Path, monkeypatch, capsys):
    (tmp_path / "in.txt").write_text("1 2 3\n9 8\n")
    code, _, _ = run_cli(
        [
            "translate",
            str(trained),
            "-q",
            "-i",
            str(tmp_path / "in.txt"),
            "-o",
            str(tmp_path / "out.txt"),
        ],
        "",
        monkeypatch,
        capsys,
    )
    assert code == 0 and len((tmp_path / "out.txt").read_text().splitlines()) == 2
    code, out, _ = run_cli(
        ["translate", str(trained), "-q", "--nbest", "nbest=3", "beam_size=4"],
        "1 2 3\n",
        monkeypatch,
        capsys,
    )
    rows = [line.split("\t") for line in out.splitlines()]
    assert code == 0 and len(rows) == 3 and all(r[0] == "0" for r in rows)
    scores = [float(r[1]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert len({r[2] for r in rows}) == 3  # distinct after detokenization


def test_seeded_sampling_through_the_cli_is_reproducible(trained: Path, monkeypatch, capsys):
    args = [
        "translate",
        str(trained),
        "-q",
        "--nbest",
        "sampling=true",
        "nbest=4",
        "seed=5",
        "temperature=2",
    ]
    first = run_cli(args, "1 2 3 4\n5 6\n", monkeypatch, capsys)
    second = run_cli(args, "1 2 3 4\n5 6\n", monkeypatch, capsys)
    assert first[0] == 0 and first[1] == second[1]
    texts = [line.split("\t")[2] for line in first[1].splitlines() if line.startswith("0\t")]
    assert 1 <= len(texts) <= 4 and len(set(texts)) == len(texts)


def test_evaluate_split_and_files(trained: Path, toy_root: Path, monkeypatch, capsys):
    monkeypatch.setenv("SEQ2SEQ_DATA", str(toy_root))
    code, out, _ = run_cli(
        ["evaluate", str(trained), "-q", "--split", "test", "--json"], "", monkeypatch, capsys
    )
    result = json.loads(out)
    assert code == 0 and result["bleu"] > 50 and result["sentences"] == 100
    assert "nrefs:1|case:mixed|eff:no|tok:13a" in result["bleu_signature"]
    folder = toy_root / "toy_reverse"
    code, out, _ = run_cli(
        [
            "evaluate",
            str(trained),
            "-q",
            "--src",
            str(folder / "test.src"),
            "--ref",
            str(folder / "test.tgt"),
        ],
        "",
        monkeypatch,
        capsys,
    )
    assert code == 0 and out.startswith("BLEU = ") and "chrF" in out
    code, _, err = run_cli(
        ["evaluate", str(trained), "-q", "--split", "test", "--pictures", "pics"],
        "",
        monkeypatch,
        capsys,
    )
    assert code == 2 and "--pictures: task translation draws no pictures" in err


def test_check_prints_recipe_and_parameters(monkeypatch, capsys):
    code, out, _ = run_cli(["check", str(TOY_RECIPE), "model.emb_dim=32"], "", monkeypatch, capsys)
    assert code == 0 and "emb_dim: 32" in out and "# parameters:" in out


@pytest.mark.parametrize(
    "args,message",
    [
        (["check", str(TOY_RECIPE), "train.lrr=1"], "did you mean 'train.lr'"),
        (["translate", "/nonexistent/run"], "no recipe.yaml"),
        (["evaluate", "/nonexistent/run", "--split", "test"], "no recipe.yaml"),
    ],
)
def test_bad_input_gets_one_line_error(args, message, monkeypatch, capsys):
    code, _, err = run_cli(args, "", monkeypatch, capsys)
    assert code == 2
    assert message in err and err.count("\n") == 1


def test_decode_time_overrides_are_search_keys_only(trained: Path, monkeypatch, capsys):
    code, _, err = run_cli(["translate", str(trained), "train.lr=1"], "1 2\n", monkeypatch, capsys)
    assert code == 2 and "only search.* keys" in err


def test_missing_data_names_the_file(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("SEQ2SEQ_DATA", str(tmp_path))
    code, _, err = run_cli(
        ["train", str(TOY_RECIPE), f"output_dir={tmp_path / 'r'}"], "", monkeypatch, capsys
    )
    assert code == 2 and "toy_reverse/train.src: file not found" in err


def test_translate_with_prefixes_and_attention_pngs(
    trained: Path, tmp_path: Path, monkeypatch, capsys
):
    pytest.importorskip("matplotlib")
    (tmp_path / "prefix.txt").write_text("9\n\n")
    code, out, err = run_cli(
        [
            "translate",
            str(trained),
            "-q",
            "--prefix",
            str(tmp_path / "prefix.txt"),
            "--attention-png",
            str(tmp_path / "png"),
        ],
        "1 2 3\n4 5\n",
        monkeypatch,
        capsys,
    )
    assert code == 0, err
    first, second = out.splitlines()
    assert first.startswith("9 ") and second == "5 4"
    pngs = sorted(p.name for p in (tmp_path / "png").iterdir())
    assert pngs == ["000001.png", "000002.png"]
    code, _, err = run_cli(
        ["translate", str(trained), "-q", "--prefix", str(tmp_path / "prefix.txt")],
        "1 2 3\n4 5\n6 7\n",
        monkeypatch,
        capsys,
    )
    assert code == 2 and "prefix.txt: 2 prefix lines for more input lines" in err


def test_bf16_decoding_agrees_with_fp32(trained: Path, toy_root: Path):
    from seq2seq.inference import Translator

    sources = (toy_root / "toy_reverse" / "test.src").read_text().splitlines()
    translator = Translator.from_checkpoint(trained, search={"precision": "fp32"})
    full = translator.translate(sources)
    translator.configure(precision="bf16")
    assert next(translator.model.parameters()).dtype == torch.bfloat16
    half = translator.translate(sources)
    agree = sum(a == b for a, b in zip(full, half, strict=True)) / len(sources)
    assert agree > 0.9, agree
    translator.configure(precision="fp32")  # the fp32 weights were kept, not re-cast
    assert translator.translate(sources) == full


def test_int8_without_onednn_kernels_is_a_one_line_error(
    trained: Path, monkeypatch: pytest.MonkeyPatch, capsys
):
    from seq2seq import engines

    monkeypatch.setattr(engines, "int8_supported", lambda: False)
    code, _, err = run_cli(  # oneDNN's int8 is the PyTorch engine's (ONNX Runtime has its own)
        ["translate", str(trained), "-q", "--quantize", "int8", "search.engine=torch"],
        "1 2 3\n",
        monkeypatch,
        capsys,
    )
    assert code != 0
    assert "search.precision=int8" in err and "no oneDNN int8 kernels" in err
    assert "Traceback" not in err


def test_int8_decoding_agrees_with_fp32(
    trained: Path, toy_root: Path, monkeypatch: pytest.MonkeyPatch, capsys
):
    from seq2seq.inference import Translator
    from seq2seq.kernels.int8 import Int8Linear

    sources = (toy_root / "toy_reverse" / "test.src").read_text().splitlines()
    translator = Translator.from_checkpoint(
        trained, search={"precision": "fp32", "engine": "torch"}
    )
    full = translator.translate(sources)
    for beam in (1, 5):
        with translator.using(precision="int8", beam_size=beam):
            decoder = translator.model.decoder
            assert isinstance(decoder.project, Int8Linear)
            assert isinstance(decoder.combine, Int8Linear)
            quantized = translator.translate(sources)
            assert decoder._step_weights is not None
            assert isinstance(decoder._step_weights.first, Int8Linear)
        agree = sum(a == b for a, b in zip(full, quantized, strict=True)) / len(sources)
        assert agree > 0.9, (beam, agree)
    assert translator.translate(sources) == full  # the fp32 model was left as it was
    code, out, err = run_cli(
        ["translate", str(trained), "-q", "--quantize", "int8", "search.engine=torch"],
        "1 2 3\n",
        monkeypatch,
        capsys,
    )
    assert code == 0, err
    with translator.using(precision="int8"):
        assert out.strip() == translator.translate(["1 2 3"])[0]


class Terminal(io.StringIO):
    """A stderr that says it is a terminal, so progress bars draw on it."""

    def isatty(self) -> bool:
        return True


def test_progress_bars_go_to_a_terminal_stderr_only(trained: Path, monkeypatch, capsys):
    """A watched translation shows a decoding bar on stderr; stdout holds only the
    outputs, line for line; with -q, or stderr not a terminal, no bar is drawn."""
    lines = "".join(f"{i} {i + 1} {i + 2}\n" for i in range(150))  # 3 batches of 64
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(sys, "stdin", io.StringIO(lines))
    assert main(["translate", str(trained), "batch_size=64"]) == 0
    out = capsys.readouterr().out
    assert "decoding" in terminal.getvalue() and "batch" in terminal.getvalue()
    assert len(out.splitlines()) == 150 and "decoding" not in out
    for quiet in (["-q"], []):
        terminal = Terminal() if quiet else io.StringIO()
        monkeypatch.setattr(sys, "stderr", terminal)
        monkeypatch.setattr(sys, "stdin", io.StringIO(lines))
        assert main(["translate", str(trained), *quiet, "batch_size=64"]) == 0
        assert "decoding" not in terminal.getvalue()


def test_translate_with_required_phrases(trained: Path, tmp_path: Path, monkeypatch, capsys):
    constraints = tmp_path / "constraints.tsv"
    constraints.write_text("8 8\t0\n\n9\n")
    inputs = "1 2 3\n4 5\n6 7 1\n"
    for beam in ("beam_size=1", "beam_size=4"):
        code, out, err = run_cli(
            ["translate", str(trained), beam, "-q", "--constraints", str(constraints)],
            inputs,
            monkeypatch,
            capsys,
        )
        assert code == 0, err
        first, second, third = (f" {line} " for line in out.splitlines())
        assert " 8 8 " in first and " 0 " in first, first
        assert second == " 5 4 "  # no phrases: as without --constraints
        assert " 9 " in third, third
    for content, message in (
        ("8\t\n\n9\n", "constraints.tsv:1: phrase 2 is empty"),
        ("8\n", "constraints.tsv: 1 constraints lines for more input lines"),
    ):
        constraints.write_text(content)
        code, _, err = run_cli(
            ["translate", str(trained), "-q", "--constraints", str(constraints)],
            inputs,
            monkeypatch,
            capsys,
        )
        assert code == 2 and message in err and err.count("\n") == 1, err
    code, _, err = run_cli(
        ["translate", str(trained), "sampling=true", "-q", "--constraints", str(constraints)],
        "1 2\n",
        monkeypatch,
        capsys,
    )
    assert code == 2 and "set search.sampling=false" in err
