"""The three other kinds of work end to end on tiny data made here: text generation,
query expansion, music (chorales and ABC tunes). Each trains a tiny model through the CLI
with the real recipe (conftest.py) and runs generate / expand / evaluate / the shell on
it; their HTTP endpoints are tested in test_tasks_http.py."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from helpers import run_cli
from tasks.conftest import PATTERN, train


def test_text_generation_learns_the_pattern_and_reports_nats_per_char(
    text_run: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("SEQ2SEQ_DATA", str(text_run.parent))
    code, out, _ = run_cli(
        ["evaluate", str(text_run), "--split", "valid", "--json", "-q"], "", monkeypatch, capsys
    )
    assert code == 0
    metrics = json.loads(out)
    assert metrics["bits_per_char"] == pytest.approx(
        metrics["nats_per_char"] / math.log(2), abs=1e-3
    )
    assert metrics["nats_per_char"] < 0.5  # a deterministic pattern: far below uniform (~2.3)
    code, out, _ = run_cli(
        [
            "generate",
            str(text_run),
            "--prompt",
            "abcd ef",
            "--max-len",
            "25",
            "-q",
            "sampling=false",
        ],
        "",
        monkeypatch,
        capsys,
    )
    assert code == 0
    assert out == "abcd ef" + (PATTERN * 4)[7 : 7 + 25] + "\n"  # greedy continues it, over windows


def test_generation_streams_token_by_token_and_sampling_is_seeded(text_run: Path) -> None:
    from seq2seq.inference import Translator
    from seq2seq.tasks.text_generation.stream import stream

    translator = Translator.from_checkpoint(text_run, search={"seed": 3, "temperature": 1.5})
    pieces = list(stream(translator, "abcd", 20))
    assert len(pieces) == len("".join(pieces)) <= 20  # characters: one piece per token
    assert list(stream(translator, "abcd", 20)) == pieces


def test_the_stream_follows_the_search_rules(text_run: Path) -> None:
    """The streamed generator runs the search's loop: greedy streaming equals greedy
    search on the window, and no_repeat_ngram / min_len hold in the stream too."""
    from seq2seq.inference import Translator
    from seq2seq.tasks.text_generation.stream import stream

    greedy = Translator.from_checkpoint(text_run, search={"sampling": False, "beam_size": 1})
    window = greedy.search.max_len_b
    with greedy.using(max_len_a=0.0, max_len_b=window):
        searched = greedy.translate(["abcd"])[0]
    assert "".join(stream(greedy, "abcd", window)) == searched
    long = greedy.with_search(max_len_b=20, min_len=20)  # one window of 20 tokens

    def repeats(text: str, n: int) -> bool:
        grams = [text[i : i + n] for i in range(len(text) - n + 1)]
        return len(grams) != len(set(grams))

    assert repeats("".join(stream(long, "abcd", 20)), 2)  # the pattern comes round again
    for n in (2, 3):
        text = "".join(stream(long.with_search(no_repeat_ngram=n), "abcd", 20))
        assert len(text) == 20 and not repeats(text, n), (n, text)
    sampled = Translator.from_checkpoint(text_run, search={"seed": 1, "min_len": 5})
    assert len("".join(stream(sampled, "abcd", 5))) == 5  # no EOS before 5 tokens


def test_shell_generates_from_a_prompt(text_run: Path, monkeypatch, capsys) -> None:
    code, out, _ = run_cli(
        ["shell", str(text_run), "-q", "sampling=false"], "abcd\n", monkeypatch, capsys
    )
    assert code == 0
    assert out.startswith("abcd" + PATTERN[4:8])


# --------------------------------------------------------------------- query expansion


def test_expand_returns_distinct_rewrites_and_a_normalised_bag(
    canard_run: Path, monkeypatch, capsys
) -> None:
    code, out, _ = run_cli(
        [
            "expand",
            str(canard_run),
            "--query",
            "where was he born",
            "--context",
            "who was turing",
            "-n",
            "4",
            "--json",
            "-q",
        ],
        "",
        monkeypatch,
        capsys,
    )
    assert code == 0
    result = json.loads(out)
    assert result["query"] == "where was he born" and result["context"] == ["who was turing"]
    texts = [r["text"].lower().rstrip("?") for r in result["rewrites"]]
    assert 1 <= len(texts) <= 4 and len(set(texts)) == len(texts)
    scores = [r["score"] for r in result["rewrites"]]
    assert scores == sorted(scores, reverse=True)
    weights = [t["weight"] for t in result["terms"]]
    if weights:
        assert sum(weights) == pytest.approx(1.0, abs=1e-3)
        assert weights == sorted(weights, reverse=True)


def test_query_expansion_evaluation_reports_bleu_and_recall(
    canard_run: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("SEQ2SEQ_DATA", str(canard_run.parent))
    code, out, _ = run_cli(
        ["evaluate", str(canard_run), "--split", "valid", "--json", "-q"], "", monkeypatch, capsys
    )
    assert code == 0, out
    metrics = json.loads(out)
    assert metrics["queries"] == 8
    for key in ("term_recall", "term_recall_at_10", "query_term_recall"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["term_recall_at_10"] <= metrics["term_recall"]
    # the tiny dev set's questions share words with their rewrites: copying scores
    assert 0.0 < metrics["question_bleu"] <= 100.0 and metrics["question_chrf"] > 0.0


def test_expand_rewrites_a_whole_dialog_with_its_own_earlier_rewrites(
    canard_run: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    dialog = tmp_path / "dialog.txt"
    dialog.write_text("who was turing\nwhere was he born\n\n")
    code, out, _ = run_cli(
        ["expand", str(canard_run), "--dialog", str(dialog), "--json", "-q"],
        "",
        monkeypatch,
        capsys,
    )
    assert code == 0
    rows = json.loads(out)
    assert [r["question"] for r in rows] == ["who was turing", "where was he born"]
    # the recipe's context is the earlier rewrites: the model's own, not the questions
    assert rows[0]["context"] == [] and rows[1]["context"] == [rows[0]["rewrite"]]
    dialog.write_text("who was turing\n\nwhere was he born\n")
    code, _, err = run_cli(
        ["expand", str(canard_run), "--dialog", str(dialog)], "", monkeypatch, capsys
    )
    assert code == 2 and f"{dialog}:2: empty line" in err


def test_expand_refuses_another_task(text_run: Path, monkeypatch, capsys) -> None:
    code, _, err = run_cli(["expand", str(text_run), "--query", "x"], "", monkeypatch, capsys)
    assert code == 2 and "query_expansion" in err


# --------------------------------------------------------------------- music


def test_music_generate_reports_validity_and_evaluate_the_metrics(
    chorale_run: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("SEQ2SEQ_DATA", str(chorale_run.parent))
    code, out, err = run_cli(
        ["generate", str(chorale_run), "--split", "test", "-n", "1", "-o", str(tmp_path), "-q"],
        "",
        monkeypatch,
        capsys,
    )
    assert code == 0
    assert len(out.splitlines()) == 1 and out.split("\t")[1].startswith(("valid", "invalid"))
    assert "validity: " in err
    code, out, _ = run_cli(
        ["evaluate", str(chorale_run), "--split", "test", "--json", "-q"], "", monkeypatch, capsys
    )
    metrics = json.loads(out)
    assert metrics["reference_validity"] == 1.0  # the checker accepts Bach's own parts
    pictures = tmp_path / "pictures"
    code, _, err = run_cli(
        ["evaluate", str(chorale_run), "--split", "test", "--pictures", str(pictures), "-q"],
        "",
        monkeypatch,
        capsys,
    )
    assert code == 0
    for i in range(2):  # Bach's own parts always draw; an output music21 refuses says so
        assert (pictures / f"{i:06d}.reference.png").read_bytes()[:4] == b"\x89PNG"
        drawn = (pictures / f"{i:06d}.output.png").is_file()
        assert drawn or f"{i:06d}.output.png: not drawn" in err
    assert 0.0 <= metrics["validity"] <= 1.0 and 0.0 <= metrics["token_accuracy"] <= 1.0
    assert metrics["pieces"] == 2
    for key in ("parallel_fifths", "parallel_octaves"):  # outputs' and Bach's own
        assert metrics[f"{key}_per_100_beats"] >= 0.0
        assert metrics[f"reference_{key}_per_100_beats"] >= 0.0
    code, out, _ = run_cli(
        ["evaluate", str(chorale_run), "--split", "test", "--json", "-q", "constrained=true"],
        "",
        monkeypatch,
        capsys,
    )
    assert json.loads(out)["validity"] == 1.0  # the grammar makes every output valid


def test_a_bar_by_bar_harmoniser_generates_and_scores_whole_chorales(
    bar_chorale_run: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    run = bar_chorale_run
    capsys.readouterr()  # what a training fixture printed
    monkeypatch.setenv("SEQ2SEQ_DATA", str(run.parent))
    code, out, err = run_cli(
        ["generate", str(run), "--split", "test", "-o", str(tmp_path), "-q"],
        "",
        monkeypatch,
        capsys,
    )
    assert code == 0, err
    lines = out.splitlines()  # whole chorales of 3 and 2 bars, from the grammar: valid
    assert [line.split("\t")[:2] for line in lines] == [["0", "valid"], ["1", "valid"]]
    assert lines[0].split("\t")[2].startswith("3 bars") and (tmp_path / "000000.mid").is_file()
    code, out, err = run_cli(
        ["evaluate", str(run), "--split", "test", "--json", "-q", "constrained=false"],
        "",
        monkeypatch,
        capsys,
    )
    assert code == 0, err
    metrics = json.loads(out)
    assert metrics["pieces"] == 2 and metrics["reference_validity"] == 1.0
    assert 0.0 <= metrics["validity"] <= 1.0 and 0.0 <= metrics["token_accuracy"] <= 1.0
    code, _, err = run_cli(["shell", str(run)], "p72 d16 |\n", monkeypatch, capsys)
    assert code == 2 and err.count("\n") == 1 and "bar by bar" in err


def test_music_prompt_errors_say_what_a_prompt_is(chorale_run: Path, monkeypatch, capsys) -> None:
    code, _, err = run_cli(
        ["generate", str(chorale_run), "--prompt", "C D E"], "", monkeypatch, capsys
    )
    assert code == 2 and "soprano as events" in err


@pytest.fixture(scope="module")
def abc_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tasks.test_abc import book

    data = tmp_path_factory.mktemp("abc")
    (data / "tunes.abc").write_text(book(40))
    return train(
        tmp_path_factory,
        "music/folk_abc.yaml",
        "folk",
        data,
        "data.abc.holdout=0.2",
        "train.max_steps=4",
        "train.validate_every=4",
        "search.max_len_b=30",
    )


def test_abc_generate_writes_a_tune_and_files(
    abc_run: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    pytest.importorskip("music21")
    code, out, err = run_cli(
        [
            "generate",
            str(abc_run),
            "--prompt",
            "T:New Tune M:6/8 K:G g2g B^AB|",
            "-o",
            str(tmp_path),
            "-q",
        ],
        "",
        monkeypatch,
        capsys,
    )
    assert code == 0
    assert "X:1\nT:New Tune\nM:6/8\nK:G\ng2gB^AB|" in out
    assert (tmp_path / "000000.abc").read_text().startswith("X:1\nT:New Tune")
    assert (tmp_path / "000000.png").read_bytes()[:4] == b"\x89PNG"  # its piano roll
    assert "validity: " in err


def test_abc_constrained_outputs_are_valid_tunes(abc_run: Path, monkeypatch, capsys) -> None:
    pytest.importorskip("music21")
    code, out, _ = run_cli(
        ["evaluate", str(abc_run), "--split", "valid", "--json", "-q", "constrained=true"],
        "",
        monkeypatch,
        capsys,
    )
    metrics = json.loads(out)
    assert code == 0 and metrics["constrained"]
    assert metrics["validity"] == 1.0, metrics["invalid_reasons"]  # the bar grammar's doing


def test_shell_shows_a_tune_as_abc(abc_run: Path, monkeypatch, capsys) -> None:
    code, out, _ = run_cli(
        ["shell", str(abc_run), "-q"], "T:Shell Tune M:6/8 K:G g2g B^AB|\n", monkeypatch, capsys
    )
    assert code == 0
    assert out.startswith("X:1\nT:Shell Tune\nM:6/8\nK:G\ng2gB^AB|")


def test_a_corrupt_tokenizer_file_is_a_one_line_error(
    text_run: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    import shutil

    name = "joint.vocab.json"
    broken = tmp_path / "run"
    shutil.copytree(text_run, broken)
    (broken / "tokenizer" / name).write_text("{not json")
    code, _, err = run_cli(["generate", str(broken), "--prompt", "ab"], "", monkeypatch, capsys)
    assert code == 2
    assert err.count("\n") == 1 and name in err and "unreadable tokenizer" in err


def test_generate_from_a_file_writes_one_escaped_line_per_prompt(
    text_run: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("abcd ef\n\nefgh\\nabc\n")  # a blank line gives an empty line; \n: newline
    code, out, _ = run_cli(
        ["generate", str(text_run), "-i", str(prompts), "--max-len", "6", "-q", "sampling=false"],
        "",
        monkeypatch,
        capsys,
    )
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 3 and lines[1] == ""
    assert lines[0] == (PATTERN * 2)[7:13].replace("\n", "\\n")
    assert lines[2] == (PATTERN * 2)[3:9].replace("\n", "\\n")


def test_shortlists_stream_and_copy_as_the_whole_vocabulary_does(
    text_run: Path, canard_run: Path, tmp_path: Path
) -> None:
    """A shortlist that holds every piece (every one is among the most frequent)
    changes nothing: streamed generation maps its positions back, and a copying
    rewriter scatters its attention onto the right rows."""
    import shutil

    import torch

    from seq2seq.data.lexicon import build_run_lexicon
    from seq2seq.inference import Translator
    from seq2seq.tasks.text_generation.stream import stream

    runs = []
    for run in (text_run, canard_run):
        runs.append(tmp_path / run.name)
        shutil.copytree(run, runs[-1])
        assert build_run_lexicon(runs[-1], translations=2).is_file()
    greedy = Translator.from_checkpoint(runs[0], search={"sampling": False, "beam_size": 1})
    plain = "".join(stream(greedy, "abcd", 12))
    listed = greedy.with_search(shortlist=2, shortlist_frequent=1000)  # every piece seen
    shortlist = listed.shortlist
    assert shortlist is not None
    assert len(shortlist.candidates(torch.tensor([[5, 3]])).ids) == len(greedy.tgt_tok)
    assert "".join(stream(listed, "abcd", 12)) == plain
    rewriter = Translator.from_checkpoint(runs[1])
    assert rewriter.model_in("fp32").decoder.copy
    lines = ["who was turing ||| where was he born"]
    assert rewriter.with_search(shortlist=2).translate(lines) == rewriter.translate(lines)
