"""The three other kinds of work end to end on tiny data made here: text generation,
query expansion, music (chorales and ABC tunes). Each trains a tiny model through the CLI
with the real recipe and runs generate / expand / evaluate / the shell on it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from helpers import ROOT, run_cli

from seq2seq.cli import main

TINY = [
    "model.emb_dim=16",
    "model.encoder.hidden_dim=16",
    "model.encoder.layers=1",
    "model.decoder.hidden_dim=32",
    "model.decoder.layers=1",
    "train.progress=false",
    "train.num_threads=1",
]
PATTERN = "abcd efgh\n"


def train(factory: pytest.TempPathFactory, recipe: str, name: str, data: Path, *extra: str) -> Path:
    """Train a tiny model with ``recipe`` on ``data`` (also its root); return the run."""
    run = factory.mktemp("runs") / name
    mp = pytest.MonkeyPatch()
    mp.setenv("SEQ2SEQ_DATA", str(data))
    try:
        args = [f"output_dir={run}", f"data.root={data}", *TINY, *extra]
        assert main(["train", str(ROOT / "recipes" / recipe), *args]) == 0
    finally:
        mp.undo()
    return run


@pytest.fixture(scope="module")
def text_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("text")
    (data / "t.txt").write_text(PATTERN * 600)
    return train(
        tmp_path_factory,
        "text_generation/tiny_shakespeare.yaml",
        "text",
        data,
        "data.windows={files: t.txt, context: 12, span: 8, stride: 3, short_context: 0.25}",
        "train.batch_tokens=1024",
        "train.lr=0.01",
        "train.max_steps=120",
        "train.validate_every=60",
        "search.max_len_b=8",
    )


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


def test_generation_streams_over_http_as_server_sent_events(text_run: Path) -> None:
    """POST /v1/generate: the pieces the stream makes, as SSE events, then 'done'; a
    translation model refuses to stream with a 4xx naming the model."""
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from seq2seq.inference import Translator
    from seq2seq.serve.api import create_app
    from seq2seq.serve.models import Registry, Served
    from seq2seq.tasks import get_task
    from seq2seq.tasks.text_generation.stream import stream

    translator = Translator.from_checkpoint(text_run, search={"sampling": False, "beam_size": 1})
    registry = Registry({"text": Served("text", translator, get_task("text_generation"))})
    with TestClient(create_app(registry)) as client:
        body = {"prompt": "abcd", "max_tokens": 12}
        with client.stream("POST", "/v1/generate", json=body) as reply:
            assert reply.status_code == 200
            assert reply.headers["content-type"].startswith("text/event-stream")
            events = [e for e in reply.read().decode().split("\n\n") if e]
        too_many = client.post("/v1/generate", json={"prompt": "a", "max_tokens": 10**6})
    pieces = [json.loads(e.removeprefix("data: "))["text"] for e in events[:-1]]
    assert pieces == list(stream(translator, "abcd", 12)) and pieces
    assert events[-1] == f'event: done\ndata: {{"pieces": {len(pieces)}}}'
    assert too_many.status_code == 422 and too_many.json()["error"]["field"] == "max_tokens"


@pytest.mark.slow
def test_the_page_streams_generation_in_a_real_browser(text_run: Path) -> None:
    """The web page, with a text generation model: the button says Generate, and the
    continuation appears after the prompt as the server streams it."""
    from helpers import chromium, headless_chromium, serving

    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (dev extra)")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from seq2seq.inference import Translator
    from seq2seq.tasks.text_generation.stream import stream

    browser = chromium()
    if browser is None:
        pytest.skip("no Chromium and chromedriver (apt-get install chromium chromium-driver)")
    # the page's default search (beam 5, sampling off): deterministic
    page = {"beam_size": 5, "nbest": 1, "length_penalty": 0.6, "sampling": False}
    translator = Translator.from_checkpoint(text_run, search=page)
    expected = "abcd" + "".join(stream(translator, "abcd", int(translator.search.max_len_b)))
    with serving(text_run) as (_, base):
        driver = headless_chromium(webdriver, browser)
        try:
            wait = WebDriverWait(driver, 60)
            driver.get(f"{base}/")
            wait.until(lambda d: d.find_element(By.ID, "go").text == "Generate")
            driver.find_element(By.ID, "texts").send_keys("abcd")
            driver.find_element(By.ID, "go").click()
            wait.until(lambda d: d.find_element(By.ID, "stream").get_attribute("data-done"))
            shown = driver.find_element(By.ID, "stream").get_attribute("textContent")
            assert not driver.find_element(By.ID, "error").text
        finally:
            driver.quit()
    assert shown == expected and len(expected) > len("abcd")


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


def write_canard(root: Path, stem: str, dialogs: int) -> None:
    rows, terms = ["id\tquestion\trewrite"], ["id\tquestion\tterms"]
    for d in range(dialogs):
        name = ["unitas", "lovelace", "turing", "curie"][d % 4]
        for k, (q, r, t) in enumerate(
            [
                (f"who was {name}", f"who was {name}?", f"{name} | person"),
                ("where was he born", f"where was {name} born?", f"{name} | birthplace"),
            ]
        ):
            rows.append(f"C_{d}_q#{k}\t{q}\t{r}")
            terms.append(f"C_{d}_q#{k}\t{q}\t{t}")
    (root / f"{stem}.tsv").write_text("\n".join(rows) + "\n")
    (root / f"{stem}.answer_terms.tsv").write_text("\n".join(terms) + "\n")


@pytest.fixture(scope="module")
def canard_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("canard")
    write_canard(data, "train", 40)
    write_canard(data, "dev", 4)
    return train(
        tmp_path_factory,
        "query_expansion/canard.yaml",
        "canard",
        data,
        "tokenizer.vocab_size=60",
        "train.max_steps=6",
        "train.validate_every=6",
        "search.max_len_b=6",
    )


def test_expansion_over_http(canard_run: Path) -> None:
    """POST /v1/expand: rewrites and a bag of terms summing to 1 per query; bad input is
    a 422 naming the field."""
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from seq2seq.inference import Translator
    from seq2seq.serve.api import create_app
    from seq2seq.serve.models import Registry, Served
    from seq2seq.tasks import get_task

    translator = Translator.from_checkpoint(canard_run)
    registry = Registry({"qe": Served("qe", translator, get_task("query_expansion"))})
    query = {"query": "what did he do next?", "context": ["who is john smith?"]}
    with TestClient(create_app(registry)) as client:
        reply = client.post("/v1/expand", json={"queries": [query, {"query": "and then?"}], "n": 3})
        bad_n = client.post("/v1/expand", json={"queries": [query], "n": 0})
        empty = client.post("/v1/expand", json={"queries": [{"query": " "}]})
        none = client.post("/v1/expand", json={"queries": []})
    assert reply.status_code == 200, reply.text
    first, second = reply.json()["expansions"]
    assert first["query"] == query["query"] and first["context"] == query["context"]
    assert second["context"] == []
    for expansion in (first, second):
        assert 1 <= len(expansion["rewrites"]) <= 6  # n beam outputs and n samples, merged
        weights = [t["weight"] for t in expansion["terms"]]
        assert not weights or abs(sum(weights) - 1) < 0.01
    assert bad_n.status_code == 422 and bad_n.json()["error"]["field"] == "n"
    assert empty.status_code == 422 and empty.json()["error"]["field"] == "queries.0.query"
    assert none.status_code == 422 and none.json()["error"]["field"] == "queries"


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


def test_expand_refuses_another_task(text_run: Path, monkeypatch, capsys) -> None:
    code, _, err = run_cli(["expand", str(text_run), "--query", "x"], "", monkeypatch, capsys)
    assert code == 2 and "query_expansion" in err


# --------------------------------------------------------------------- music


@pytest.fixture(scope="module")
def chorale_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tasks.test_chorales import steps

    data = tmp_path_factory.mktemp("jsb")
    pieces = {
        "train": [steps(32, s) for s in range(6)],
        "valid": [steps(32, 10)],
        "test": [steps(48, 11), steps(32, 12)],
    }
    (data / "jsb.json").write_text(json.dumps(pieces))
    return train(
        tmp_path_factory,
        "music/bach_harmonize.yaml",
        "bach",
        data,
        "data.chorales.files=jsb.json",
        "data.chorales.transpose=[0, 1]",
        "train.max_steps=4",
        "train.validate_every=4",
        "search.beam_size=1",
        "search.constrained=false",
    )


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
    assert 0.0 <= metrics["validity"] <= 1.0 and 0.0 <= metrics["token_accuracy"] <= 1.0
    assert metrics["pieces"] == 2
    code, out, _ = run_cli(
        ["evaluate", str(chorale_run), "--split", "test", "--json", "-q", "constrained=true"],
        "",
        monkeypatch,
        capsys,
    )
    assert json.loads(out)["validity"] == 1.0  # the grammar makes every output valid


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
    assert "validity: " in err


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
