"""Attention pictures: the text map fits the width and shades the right cells; the PNG is
a real image."""

from pathlib import Path

import pytest
import torch

from seq2seq.visualize import SHADES, attention_text, save_attention_png


def diagonal(n_tgt: int, n_src: int) -> torch.Tensor:
    weights = torch.zeros(n_tgt, n_src + 3)  # extra columns: batch padding, dropped
    for i in range(n_tgt):
        weights[i, min(i, n_src - 1)] = 1.0
    return weights


def test_text_map_marks_the_attended_cell_of_each_row():
    src, tgt = ["▁ein", "▁hund", "</s>"], ["▁a", "▁dog", "</s>"]
    text = attention_text(src, tgt, diagonal(3, 3))
    rows = [
        line for line in text.splitlines() if line.strip().split(" ")[0] in {"a", "dog", "</s>"}
    ]
    assert len(rows) == 3
    label_width = max(len(r.split()[0]) for r in rows)
    for i, row in enumerate(rows):
        cells = row[label_width + 2 :]
        assert cells.index(SHADES[-1]) == 3 * i  # 3-character columns when they fit
    assert "▁" not in text  # the word-start mark is not shown


@pytest.mark.parametrize("n_src", [5, 30, 79, 200])
def test_text_map_fits_80_columns_however_long_the_source(n_src: int):
    src = [f"w{i}" for i in range(n_src)]
    tgt = ["averyveryverylongpiece", "b"]
    text = attention_text(src, tgt, diagonal(2, n_src))
    assert max(len(line) for line in text.splitlines()) <= 80
    shaded = sum(line.count(SHADES[-1]) for line in text.splitlines()[:-1])
    assert shaded >= 2  # both rows' peaks are drawn (wrapped blocks included)


def test_attention_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="does not cover"):
        attention_text(["a", "b", "c"], ["x", "y"], torch.zeros(2, 2))


def test_png_is_written(tmp_path: Path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "map.png"
    save_attention_png(path, ["▁ein", "</s>"], ["▁a", "</s>"], diagonal(2, 2), title="a")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_draws_the_curves_of_several_runs(tmp_path, monkeypatch, capsys):
    import json

    from helpers import run_cli

    pytest.importorskip("matplotlib")
    runs = []
    for name, bleu in (("a", True), ("b", False)):
        run = tmp_path / name
        run.mkdir()
        records = [
            {"step": s, "minutes": s / 100, "loss": 5 - s / 100, "ppl": 100 / s}
            | ({"bleu": s / 10} if bleu else {})
            for s in (100, 200, 300)
        ]
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        runs.append(str(run))
    out = tmp_path / "curves.png"
    code, _, err = run_cli(["plot", *runs, "-o", str(out)], "", monkeypatch, capsys)
    assert code == 0, err
    assert out.read_bytes()[:4] == b"\x89PNG" and "loss, ppl, bleu of 2 run(s)" in err
    for argv, message in (
        (["plot", runs[0], "-o", str(tmp_path / "c.jpg")], "name a .png file"),
        (["plot", str(tmp_path), "-o", str(out)], "no validations in metrics.jsonl"),
    ):
        code, _, err = run_cli(argv, "", monkeypatch, capsys)
        assert code == 2 and message in err and err.count("\n") == 1, err
