"""Constrained decoding: with the harmony grammar, every search's every output is a valid
harmonisation, whatever the (random) model prefers; without it, they are not."""

from pathlib import Path

import pytest
import torch
from helpers import tiny_model

from seq2seq.data.tokenizer import BOS_ID, EOS_ID
from seq2seq.data.vocab import SPECIALS, read_symbol_file
from seq2seq.search import beam_search, greedy_search, sample_search
from seq2seq.tasks.music.chorale_readers import from_steps
from seq2seq.tasks.music.chorales import Chorale, Note, check_harmony, encode_source
from seq2seq.tasks.music.grammar import HarmonyConstraint

ROOT = Path(__file__).resolve().parents[2]
PIECES = SPECIALS + read_symbol_file(ROOT / "tokenizers" / "music_events.yaml")
IDS = {p: i for i, p in enumerate(PIECES)}


def sources() -> list[str]:
    pickup = Chorale(
        "p",
        "3/4",
        0,
        {v: [[Note(72, 4)], [Note(74, 8), Note(None, 4)], [Note(76, 12)]] for v in "SATB"},
    )
    steps = [[60 + (i // 4) % 5, 55, 52, 48] for i in range(40)]
    return [encode_source(pickup), encode_source(from_steps("j", steps))]


def batch(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    rows = [[IDS[p] for p in t.split()] + [EOS_ID] for t in texts]
    width = max(map(len, rows))
    src = torch.tensor([r + [0] * (width - len(r)) for r in rows])
    return src, torch.tensor([len(r) for r in rows])


def decode(ids: list[int]) -> str:
    return " ".join(PIECES[i] for i in ids)


@pytest.mark.parametrize("search", ["greedy", "beam", "sample"])
def test_every_constrained_output_is_a_valid_harmonisation(search: str) -> None:
    model = tiny_model(vocab=len(PIECES), seed=2)
    texts = sources()
    src, lengths = batch(texts)
    limit = torch.full((len(texts),), 400)
    grammar = HarmonyConstraint(PIECES, PIECES)
    if search == "greedy":
        hyps = greedy_search(model, src, lengths, limit, BOS_ID, EOS_ID, constraint=grammar)
    elif search == "beam":
        hyps = beam_search(
            model, src, lengths, limit, BOS_ID, EOS_ID, beam_size=3, nbest=3, constraint=grammar
        )
    else:
        generator = torch.Generator().manual_seed(0)
        hyps = sample_search(
            model,
            src,
            lengths,
            limit,
            BOS_ID,
            EOS_ID,
            num_samples=3,
            generator=generator,
            temperature=2.0,
            constraint=grammar,
        )
    for text, outputs in zip(texts, hyps, strict=True):
        assert outputs
        for hyp in outputs:
            result = check_harmony(text, decode(hyp.tokens))
            assert result.valid, (result.reason, decode(hyp.tokens)[:200])


def test_without_the_grammar_a_random_model_is_invalid() -> None:
    model = tiny_model(vocab=len(PIECES), seed=2)
    texts = sources()
    src, lengths = batch(texts)
    hyps = greedy_search(model, src, lengths, torch.full((2,), 400), BOS_ID, EOS_ID)
    assert not any(
        check_harmony(t, decode(h[0].tokens)).valid for t, h in zip(texts, hyps, strict=True)
    )


def test_an_unparsable_source_is_left_unconstrained() -> None:
    grammar = HarmonyConstraint(PIECES, PIECES)
    src, _ = batch(["p60 d4 |"])  # no time signature
    state = grammar.start(src, torch.tensor([0]))
    assert bool(grammar.allowed(state).all())
