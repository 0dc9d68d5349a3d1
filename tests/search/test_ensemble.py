"""Ensembles: a model with itself is that model; the step is the mean of the members'
log-probs; runs with different vocabularies are refused."""

import shutil
from pathlib import Path

import pytest
import torch
from helpers import random_batch, run_cli, tiny_model

from seq2seq.config import ConfigError, Search
from seq2seq.data.tokenizer import train_tokenizer
from seq2seq.inference import Translator, search_batch
from seq2seq.model.ensemble import Ensemble

VOCAB = 23


@pytest.mark.parametrize(
    "search",
    [
        Search(beam_size=1),
        Search(beam_size=4, nbest=3),
        Search(sampling=True, nbest=3, seed=3, top_k=5),
    ],
    ids=["greedy", "beam", "sampling"],
)
def test_ensemble_of_a_model_with_itself_is_the_model(search: Search):
    model = tiny_model(VOCAB, seed=1)
    src, lengths = random_batch(5, VOCAB, seed=2)
    gen_a, gen_b = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    alone = search_batch(model, src, lengths, search, generator=gen_a)
    paired = search_batch(Ensemble([model, model]), src, lengths, search, generator=gen_b)
    for hyps_a, hyps_b in zip(alone, paired, strict=True):
        assert [h.tokens for h in hyps_a] == [h.tokens for h in hyps_b]
        for a, b in zip(hyps_a, hyps_b, strict=True):
            assert a.score == pytest.approx(b.score, abs=1e-5)


def test_ensemble_step_is_the_mean_of_member_log_probs():
    first, second = tiny_model(VOCAB, seed=1), tiny_model(VOCAB, seed=2, input_feeding=True)
    ensemble = Ensemble([first, second])
    src, lengths = random_batch(3, VOCAB, seed=4)
    tokens = torch.tensor([2, 5, 7])
    with torch.no_grad():
        lp, _, attn = ensemble.step(tokens, ensemble.init_state(ensemble.encode(src, lengths)))
        parts = [m.step(tokens, m.init_state(m.encode(src, lengths))) for m in (first, second)]
    torch.testing.assert_close(lp, (parts[0][0] + parts[1][0]) / 2)
    torch.testing.assert_close(attn, (parts[0][2] + parts[1][2]) / 2)
    assert not torch.allclose(parts[0][0], parts[1][0])  # the members really differ


def test_ensemble_teacher_forcing_is_the_mean_of_member_log_probs():
    """What ``evaluate`` scores a split with (text generation's nats per character)."""
    first, second = tiny_model(VOCAB, seed=1), tiny_model(VOCAB, seed=2, input_feeding=True)
    src, lengths = random_batch(3, VOCAB, seed=4)
    tgt_in = torch.randint(4, VOCAB, (3, 6), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        mean = Ensemble([first, second])(src, lengths, tgt_in)
        parts = [m(src, lengths, tgt_in).log_softmax(-1) for m in (first, second)]
        itself = Ensemble([first, first])(src, lengths, tgt_in)
    torch.testing.assert_close(mean, (parts[0] + parts[1]) / 2)
    torch.testing.assert_close(itself, parts[0])
    assert mean.shape == (3, 6, VOCAB)


def test_cli_ensemble_of_a_run_with_itself(trained: Path, monkeypatch, capsys):
    text = "1 2 3\n4 5 6 7 8\n"
    one = run_cli(
        ["translate", str(trained), "-q", "--nbest", "nbest=2"], text, monkeypatch, capsys
    )
    two = run_cli(
        ["translate", str(trained), str(trained), "-q", "--nbest", "nbest=2"],
        text,
        monkeypatch,
        capsys,
    )
    assert one[0] == two[0] == 0
    rows_one = [line.split("\t") for line in one[1].splitlines()]
    rows_two = [line.split("\t") for line in two[1].splitlines()]
    assert [(r[0], r[2]) for r in rows_one] == [(r[0], r[2]) for r in rows_two]
    for a, b in zip(rows_one, rows_two, strict=True):
        assert float(a[1]) == pytest.approx(float(b[1]), abs=1e-3)


def test_ensemble_with_another_vocabulary_is_refused(trained: Path, tmp_path: Path):
    other = tmp_path / "other"
    shutil.copytree(trained, other)
    (other / "tokenizer" / "joint.model").unlink()
    letters = [
        " ".join("abcdefghij"[int(c)] for c in line.split())
        for line in ["0 1 2 3 4 5 6 7 8 9"] * 50
    ]
    mine = Translator.from_checkpoint(trained)
    train_tokenizer(
        letters,
        other / "tokenizer" / "joint.model",
        model_type="word",
        vocab_size=len(mine.tgt_tok),
        character_coverage=1.0,
        max_sentences=1000,
        byte_fallback=False,
        seed=1,
    )
    with pytest.raises(ConfigError, match="target vocabulary differs"):
        Translator.from_checkpoint([trained, other])
