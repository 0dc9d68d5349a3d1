"""The HTTP API on the trained toy model: answers, dynamic batching, and every kind of
bad request getting a 4xx that names its field (never a 500)."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from pathlib import Path

import pytest
from helpers import chromium, headless_chromium, serving

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from seq2seq.config import ConfigError  # noqa: E402
from seq2seq.inference import Translator  # noqa: E402
from seq2seq.serve.api import create_app  # noqa: E402
from seq2seq.serve.command import check_bind  # noqa: E402
from seq2seq.serve.limits import Limits  # noqa: E402
from seq2seq.serve.models import Registry, Served  # noqa: E402
from seq2seq.tasks import get_task  # noqa: E402


@pytest.fixture(scope="module")
def translator(trained: Path) -> Translator:
    return Translator.from_checkpoint(trained, search={"precision": "fp32"})


def registry_of(translator: Translator) -> Registry:
    return Registry({"toy": Served("toy", translator, get_task(translator.recipe.task))})


@pytest.fixture
def client(translator: Translator):
    app = create_app(registry_of(translator), Limits(max_texts=4, max_input_tokens=12))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_health_ready_models(client: TestClient):
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json() == {"ready": True, "models": ["toy"]}
    (model,) = client.get("/v1/models").json()["models"]
    assert model["name"] == "toy" and model["search"]["beam_size"] == 5
    assert "/v1/translate" in client.get("/openapi.json").json()["paths"]
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/v1/translate" in page.text and "http://" not in page.text
    assert "https://" not in page.text  # nothing from a CDN: it works offline


def test_translate_with_scores_and_attention(client: TestClient, translator: Translator):
    body = {"texts": ["1 2 3", "4 5"], "return_scores": True, "return_attention": True}
    reply = client.post("/v1/translate", json=body)
    assert reply.status_code == 200, reply.text
    results = reply.json()["results"]
    assert [r["outputs"][0]["text"] for r in results] == translator.translate(body["texts"])
    best = results[0]["outputs"][0]
    assert len(best["token_log_probs"]) == len(best["pieces"]) == best["tokens"] + 1
    assert len(best["attention"]) == len(best["pieces"])
    assert all(len(row) == len(best["source_pieces"]) for row in best["attention"])
    nbest = client.post("/v1/translate", json={"texts": ["1 2"], "search": {"nbest": 3}})
    scores = [o["score"] for o in nbest.json()["results"][0]["outputs"]]
    assert len(scores) > 1 and scores == sorted(scores, reverse=True)


def test_concurrent_requests_are_decoded_together(translator: Translator):
    app = create_app(registry_of(translator), Limits(max_wait_ms=200))
    texts = ["1 2 3", "4 5", "6 7 8 9", "3 1", "2 2 5", "9 8"]

    async def send_all() -> list[httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                posts = [http.post("/v1/translate", json={"texts": [t]}) for t in texts]
                replies = await asyncio.gather(*posts)
                replies.append(await http.get("/metrics"))
                return replies

    *replies, metrics = asyncio.run(send_all())
    outputs = [r.json()["results"][0]["outputs"][0]["text"] for r in replies]
    assert outputs == translator.translate(texts)  # each answer went to its own request
    count = next(
        int(line.split()[-1])
        for line in metrics.text.splitlines()
        if line.startswith("seq2seq_batch_requests_count")
    )
    assert count < len(texts)  # fewer batches than requests


@pytest.mark.parametrize(
    "body,status,field",
    [
        (b"{not json", 400, "body"),
        (b"[1, 2]", 422, "body"),
        (b'{"texts": ["1 2"], "colour": "red"}', 422, "colour"),
        (b'{"texts": "1 2"}', 422, "texts"),
        (b'{"texts": [1, 2]}', 422, "texts.0"),
        (b'{"texts": []}', 422, "texts"),
        (b'{"texts": ["1", "2", "3", "4", "5"]}', 422, "texts"),
        (b'{"texts": ["' + b"1 " * 40 + b'"]}', 422, "texts.0"),
        (b'{"texts": ["1 2"], "model": "nope"}', 422, "model"),
        (b'{"texts": ["1 2"], "search": {"beam_size": 0}}', 422, "search.beam_size"),
        (b'{"texts": ["1 2"], "search": {"beam_size": 1000000}}', 422, "search.beam_size"),
        (b'{"texts": ["1 2"], "search": {"beam_size": 100}}', 422, "search.beam_size"),
        (b'{"texts": ["1 2"], "search": {"top_p": 2}}', 422, "search.top_p"),
        (b'{"texts": ["1 2"], "search": {"beam_sise": 2}}', 422, "search.beam_sise"),
        (b'{"texts": ["1 2"], "search": {"beam_size": "five"}}', 422, "search.beam_size"),
        (b'{"texts": ["1 2"], "search": {"beam_size": [1]}}', 422, "search.beam_size"),
        (b'{"texts": ["1 2"], "search": {"batch_size": 8}}', 422, "search.batch_size"),
        (b'{"texts": ["1 2"], "search": {"engine": "onnx"}}', 422, "search.engine"),
        (b'{"texts": ["1 2"], "return_scores": "yes"}', 422, "return_scores"),
    ],
)
def test_bad_requests_name_their_field(client: TestClient, body: bytes, status: int, field: str):
    reply = client.post("/v1/translate", content=body, headers={"content-type": "application/json"})
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert error["field"] == field and error["message"] and "\n" not in error["message"]
    assert client.post("/v1/translate", json={"texts": ["1 2"]}).status_code == 200


def test_an_oversized_body_is_413(translator: Translator):
    app = create_app(registry_of(translator), Limits(max_body_bytes=100))
    with TestClient(app) as client:
        reply = client.post("/v1/translate", json={"texts": ["1 2 3 " * 30]})
    assert reply.status_code == 413 and reply.json()["error"]["field"] == "body"


def _blocked(translator: Translator) -> tuple[Registry, threading.Event]:
    """A registry whose decoding waits for the event."""
    registry = registry_of(translator)
    release = threading.Event()
    decode = registry.decode

    def slow(key, texts):
        release.wait(10)
        return decode(key, texts)

    registry.decode = slow  # type: ignore[method-assign]
    return registry, release


def test_full_queue_is_503_with_retry_after_and_slow_requests_504(translator: Translator):
    registry, release = _blocked(translator)
    app = create_app(registry, Limits(max_queue=1, timeout_s=0.5))

    async def scenario() -> list[httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                first = asyncio.ensure_future(http.post("/v1/translate", json={"texts": ["1"]}))
                await asyncio.sleep(0.1)  # the first one decodes (blocked); the next waits
                second = asyncio.ensure_future(http.post("/v1/translate", json={"texts": ["2"]}))
                await asyncio.sleep(0.05)
                third = await http.post("/v1/translate", json={"texts": ["3"]})
                health = await http.get("/health")  # the loop answers while a batch decodes
                timed_out = await asyncio.gather(first, second)
                release.set()
                return [third, health, *timed_out]

    third, health, *timed_out = asyncio.run(scenario())
    assert third.status_code == 503 and third.headers["retry-after"] == "1"
    assert third.json()["error"]["field"] == "queue"
    assert health.status_code == 200
    assert [r.status_code for r in timed_out] == [504, 504]


def test_an_internal_error_is_a_500_with_an_id_and_the_server_goes_on(
    translator: Translator, caplog
):
    registry = registry_of(translator)
    decode, calls = registry.decode, []

    def flaky(key, texts):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return decode(key, texts)

    registry.decode = flaky  # type: ignore[method-assign]
    with TestClient(create_app(registry), raise_server_exceptions=False) as client:
        failed = client.post("/v1/translate", json={"texts": ["1 2"]})
        assert failed.status_code == 500
        error_id = failed.json()["error"]["id"]
        assert error_id in caplog.text and "boom" in caplog.text
        assert client.post("/v1/translate", json={"texts": ["1 2"]}).status_code == 200
        metrics = client.get("/metrics").text
    assert 'seq2seq_requests_total{endpoint="/v1/translate",status="500"} 1' in metrics
    assert "seq2seq_errors_total 1" in metrics


def test_api_key_guards_v1_and_metrics_but_not_health(translator: Translator):
    app = create_app(registry_of(translator), api_key="s3cret")
    with TestClient(app) as client:
        assert client.get("/health").status_code == 200
        denied = client.post("/v1/translate", json={"texts": ["1 2"]})
        assert denied.status_code == 401 and denied.headers["www-authenticate"] == "Bearer"
        assert client.get("/metrics").status_code == 401
        wrong = {"authorization": "Bearer nope"}
        assert client.get("/v1/models", headers=wrong).status_code == 401
        right = {"authorization": "Bearer s3cret"}
        assert (
            client.post("/v1/translate", json={"texts": ["1 2"]}, headers=right).status_code == 200
        )


def test_a_public_bind_needs_a_key_or_insecure():
    check_bind("127.0.0.1", None, False)
    check_bind("0.0.0.0", "key", False)
    check_bind("0.0.0.0", None, True)
    with pytest.raises(ConfigError, match=r"--host 0\.0\.0\.0: a non-local bind needs --api-key"):
        check_bind("0.0.0.0", None, False)


@pytest.mark.slow
def test_the_command_serves_then_drains_on_sigterm_and_exits_0(trained: Path):
    """A SIGTERM while a request is in flight lets that request finish, then the process
    exits 0."""
    with serving(trained) as (server, base):
        replies: list[httpx.Response] = []
        # many texts at beam 32: a request that is still decoding when the signal comes
        body = {"texts": ["1 2 3 4 5 6 7"] * 64, "search": {"beam_size": 32, "nbest": 32}}

        def send() -> None:
            replies.append(httpx.post(f"{base}/v1/translate", json=body, timeout=120))

        sender = threading.Thread(target=send)
        sender.start()
        time.sleep(0.5)
        server.send_signal(signal.SIGTERM)
        sender.join(120)
        assert server.wait(120) == 0
    assert replies and replies[0].status_code == 200
    assert len(replies[0].json()["results"]) == 64


# everyday German and its English: a model of the shipped demo recipe learns them by heart
# in seconds, so the page can be tested on real German input (umlauts, ß, punctuation)
GERMAN = [
    ("Wo ist der Bahnhof?", "Where is the station?"),
    ("Ich habe Hunger.", "I am hungry."),
    ("Das Wetter ist heute schön.", "The weather is nice today."),
    ("Ein Hund läuft über die Wiese.", "A dog runs across the meadow."),
    ("Ich bin müde.", "I am tired."),
    ("Wir gehen morgen ins Kino.", "We are going to the cinema tomorrow."),
    ("Die Straße ist nass.", "The street is wet."),
    ("Er trinkt gern Kaffee.", "He likes drinking coffee."),
    ("Sie liest ein Buch.", "She is reading a book."),
    ("Das Mädchen spielt Fußball.", "The girl is playing football."),
    ("Wie spät ist es?", "What time is it?"),
    ("Ich möchte ein Glas Wasser.", "I would like a glass of water."),
]


@pytest.fixture(scope="module")
def german_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped Tatoeba demo recipe (sentencepiece, shared vocabulary), small, trained
    300 steps on GERMAN (about 15 s): it translates those sentences."""
    from helpers import ROOT

    from seq2seq.cli import main

    data = tmp_path_factory.mktemp("german")
    for split in ("train", "valid", "test"):
        for side, lang in ((0, "de"), (1, "en")):
            lines = "".join(pair[side] + "\n" for pair in GERMAN)
            (data / f"{split}.{lang}").write_text(lines, encoding="utf-8")
    run = tmp_path_factory.mktemp("runs") / "german"
    small = [f"model.{k}=0" for k in ("emb_dropout", "output_dropout")] + [
        f"model.{part}.dropout=0" for part in ("encoder", "decoder")
    ]
    args = [
        f"output_dir={run}",
        f"data.root={data}",
        "model.emb_dim=64",
        "model.encoder.hidden_dim=64",
        "model.decoder.hidden_dim=128",
        *small,
        "train.max_steps=300",
        "train.validate_every=300",
        "train.batch_tokens=400",
        "train.warmup_steps=10",
        "train.label_smoothing=0",
        "train.progress=false",
        "train.num_threads=1",
    ]
    recipe = ROOT / "recipes" / "translation" / "tatoeba_demo_de_en.yaml"
    assert main(["train", str(recipe), *args]) == 0
    return run


@pytest.mark.slow
def test_the_page_translates_german_in_a_real_browser(german_run: Path):
    """Headless Chromium types two German sentences into the page, submits, and sees
    their English translations (the translator's own outputs), the n-best, and the
    attention heat map of a chosen output."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (dev extra)")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser = chromium()
    if browser is None:
        pytest.skip("no Chromium and chromedriver (apt-get install chromium chromium-driver)")
    typed = [GERMAN[0][0], GERMAN[9][0]]  # Wo ist der Bahnhof? / Das Mädchen spielt Fußball.
    expected = Translator.from_checkpoint(german_run).translate(typed)
    with serving(german_run) as (_, base):
        driver = headless_chromium(webdriver, browser)
        try:
            wait = WebDriverWait(driver, 60)
            driver.get(f"{base}/")
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#model option"))
            driver.find_element(By.ID, "texts").send_keys("\n".join(typed))
            driver.find_element(By.ID, "nbest").clear()
            driver.find_element(By.ID, "nbest").send_keys("2")
            driver.find_element(By.ID, "go").click()
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".line .output .text"))
            lines = driver.find_elements(By.CSS_SELECTOR, ".line")
            sources = [line.find_element(By.CSS_SELECTOR, ".source").text for line in lines]
            firsts = [line.find_element(By.CSS_SELECTOR, ".output .text").text for line in lines]
            counts = [len(line.find_elements(By.CSS_SELECTOR, ".output")) for line in lines]
            assert not driver.find_element(By.ID, "error").text
            driver.find_element(By.CSS_SELECTOR, ".line .output").click()
            rows = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "table.heat tr"))
        finally:
            driver.quit()
    assert sources == typed and firsts == expected
    assert firsts == ["Where is the station?", "The girl is playing football."]
    assert counts == [2, 2]
    assert len(rows) >= 2  # the source pieces, then one row per output piece


def test_required_phrases_through_the_api(client: TestClient):
    body = {"texts": ["1 2 3", "4 5"], "required": [["8 8"], []]}
    reply = client.post("/v1/translate", json=body)
    assert reply.status_code == 200, reply.text
    first, second = (r["outputs"][0]["text"] for r in reply.json()["results"])
    assert " 8 8 " in f" {first} " and second == "5 4"
    for bad, field in (
        ({"texts": ["1 2"], "required": [["8"], ["9"]]}, "required"),
        ({"texts": ["1 2"], "required": [[" "]]}, "required.0.0"),
        ({"texts": ["1 2"], "required": [["8"]], "search": {"sampling": True}}, "required"),
    ):
        failed = client.post("/v1/translate", json=bad)
        assert failed.status_code == 422 and failed.json()["error"]["field"] == field


def test_a_translation_model_does_not_generate(client: TestClient):
    reply = client.post("/v1/generate", json={"prompt": "1 2 3"})
    assert reply.status_code == 422 and reply.json()["error"]["field"] == "model"
    assert "use /v1/translate" in reply.json()["error"]["message"]


def test_a_translation_model_does_not_expand(client: TestClient):
    reply = client.post("/v1/expand", json={"queries": [{"query": "1 2"}]})
    assert reply.status_code == 422 and reply.json()["error"]["field"] == "model"


def test_routing_errors_have_the_error_shape(client: TestClient):
    """404 and 405 come in the same JSON shape as every other client error."""
    missing = client.get("/v2/translate")
    assert missing.status_code == 404
    assert missing.json() == {"error": {"field": None, "message": "Not Found"}}
    wrong = client.get("/v1/translate")
    assert wrong.status_code == 405 and wrong.json()["error"]["message"] == "Method Not Allowed"
    assert "POST" in wrong.headers["allow"]
