"""The task endpoints of the HTTP API on tiny runs: streamed generation (also on the web
page, in a real browser) and query expansion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


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


# a soprano as events: four bars of 4/4 in C (16 steps a bar)
SOPRANO = "M:4/4 K:0 p72 d4 p74 d4 p76 d8 | p77 d8 p76 d8 | p74 d4 p72 d4 p71 d8 | p72 d16 |"


def test_music_generation_over_http_gives_musicxml_and_a_midi_file(chorale_run: Path) -> None:
    """POST /v1/generate with a music model: the output the translator makes for the
    prompt, its validity, the chorale as MusicXML with four parts, and a MIDI file; a
    prompt that is not a soprano is a 422 naming the prompt."""
    pytest.importorskip("fastapi")
    music21 = pytest.importorskip("music21")
    import base64

    from fastapi.testclient import TestClient

    from seq2seq.serve.api import create_app
    from seq2seq.serve.models import Registry, Served
    from seq2seq.tasks import get_task, load_translator

    translator = load_translator(chorale_run)
    task = get_task("music")
    registry = Registry({"bach": Served("bach", translator, task)})
    with TestClient(create_app(registry)) as client:
        # room for the untrained model's sixteenth notes: 4 bars of 3 voices
        body = {"prompt": SOPRANO, "search": {"constrained": True}, "max_tokens": 512}
        reply = client.post("/v1/generate", json=body)
        bad = client.post("/v1/generate", json={"prompt": "la la la"})
        long = client.post("/v1/generate", json={"prompt": SOPRANO, "max_tokens": 10**6})
    assert reply.status_code == 200, reply.text
    got = reply.json()
    constrained = translator.with_search(constrained=True, max_len_a=0.0, max_len_b=512)
    source = task.source_from_prompt(constrained, SOPRANO)
    assert got["output"] == constrained.translate([source])[0]
    assert got["valid"] is True and got["reason"] is None  # the grammar holds
    score = music21.converter.parse(got["musicxml"], format="musicxml")
    assert len(score.parts) == 4
    assert [n.pitch.midi for n in score.parts[0].flatten().notes][:3] == [72, 74, 76]
    midi = base64.b64decode(got["midi"])
    assert midi.startswith(b"MThd")
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "prompt"
    assert long.status_code == 422 and long.json()["error"]["field"] == "max_tokens"


def test_a_bar_by_bar_harmoniser_answers_over_http_with_a_whole_chorale(
    bar_chorale_run: Path,
) -> None:
    """/v1/generate with a model trained bar by bar: the chorale it harmonises bar after
    bar (what ``generate`` makes), every bar of the prompt in it, under the grammar."""
    pytest.importorskip("fastapi")
    pytest.importorskip("music21")
    from fastapi.testclient import TestClient

    from seq2seq.serve.api import create_app
    from seq2seq.serve.models import Registry, Served
    from seq2seq.tasks import get_task, load_translator
    from seq2seq.tasks.music.chorales import parse_target

    translator = load_translator(bar_chorale_run)
    task = get_task("music")
    registry = Registry({"bach": Served("bach", translator, task)})
    with TestClient(create_app(registry)) as client:
        reply = client.post("/v1/generate", json={"prompt": SOPRANO})
    assert reply.status_code == 200, reply.text
    got = reply.json()
    source = task.source_from_prompt(translator, SOPRANO)
    assert got["output"] == task.outputs(translator, [source])[0]
    assert len(parse_target(got["output"])) == 4 and got["valid"] is True


@pytest.mark.slow
def test_the_page_offers_the_midi_file_of_a_music_output(chorale_run: Path) -> None:
    """The web page with a music model: Generate, then the validity, the chorale's
    tokens and a link whose download is the MIDI file (read back through the page)."""
    from helpers import chromium, headless_chromium, serving

    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (dev extra)")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser = chromium()
    if browser is None:
        pytest.skip("no Chromium and chromedriver (apt-get install chromium chromium-driver)")
    grammar = ("search.constrained=true", "search.max_len_a=0", "search.max_len_b=512")
    with serving(chorale_run, *grammar) as (_, base):
        driver = headless_chromium(webdriver, browser)
        try:
            wait = WebDriverWait(driver, 60)
            driver.get(f"{base}/")
            wait.until(lambda d: d.find_element(By.ID, "go").text == "Generate")
            driver.find_element(By.ID, "texts").send_keys(SOPRANO)
            driver.find_element(By.ID, "go").click()
            wait.until(lambda d: d.find_elements(By.ID, "output-mid"))
            link = driver.find_element(By.ID, "output-mid")
            assert link.get_attribute("download") == "output.mid"
            assert driver.find_element(By.ID, "validity").text == "valid"
            assert driver.find_element(By.ID, "score").text.startswith("V:A")
            header = driver.execute_async_script(
                "const done = arguments[arguments.length - 1];"
                "fetch(arguments[0]).then((r) => r.arrayBuffer())"
                ".then((b) => done(String.fromCharCode(...new Uint8Array(b).slice(0, 4))));",
                link.get_attribute("href"),
            )
            assert not driver.find_element(By.ID, "error").text
        finally:
            driver.quit()
    assert header == "MThd"
