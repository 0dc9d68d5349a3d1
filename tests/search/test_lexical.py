"""Terminology constraints (search/lexical.py): every output holds every required phrase,
sentences without phrases search as plain beam does, and the bank bookkeeping."""

from __future__ import annotations

import pytest
import torch
from helpers import random_batch, tiny_model

from seq2seq.data.tokenizer import BOS_ID, EOS_ID
from seq2seq.search import beam_search, max_lengths
from seq2seq.search.lexical import RequiredPhrases, _bank_sizes, _taken, word_continuations

VOCAB = 19


def contains(tokens: list[int], phrase: list[int]) -> bool:
    return any(tokens[i : i + len(phrase)] == phrase for i in range(len(tokens)))


def random_phrases(seed: int, sentences: int) -> list[list[list[int]]]:
    """0-2 phrases of 1-3 non-special tokens per sentence; the first sentence has none."""
    g = torch.Generator().manual_seed(seed)

    def draw(high: int) -> int:
        return int(torch.randint(0, high, (1,), generator=g))

    phrases = [[[4 + draw(VOCAB - 4) for _ in range(1 + draw(3))] for _ in range(draw(3))]]
    phrases[0] = []
    for _ in range(sentences - 1):
        phrases.append(
            [[4 + draw(VOCAB - 4) for _ in range(1 + draw(3))] for _ in range(1 + draw(2))]
        )
    return phrases


@pytest.mark.parametrize("beam_size", [1, 2, 5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_output_holds_every_phrase(seed: int, beam_size: int):
    model = tiny_model(VOCAB, seed=seed)
    src, lengths = random_batch(6, VOCAB, seed=seed)
    limits = max_lengths(lengths, 1.5, 3)
    phrases = random_phrases(seed, 6)
    required = RequiredPhrases(phrases, VOCAB, EOS_ID)
    found = beam_search(
        model,
        src,
        lengths,
        limits + required.total,
        BOS_ID,
        EOS_ID,
        beam_size=beam_size,
        nbest=beam_size,
        constraint=required,
    )
    plain = beam_search(model, src, lengths, limits, BOS_ID, EOS_ID, beam_size=beam_size)
    for sentence, (hyps, wanted) in enumerate(zip(found, phrases, strict=True)):
        assert hyps
        best = hyps[0]
        assert all(contains(best.tokens, p) for p in wanted), (sentence, wanted, best.tokens)
        assert best.score > float("-inf")
        for hyp in hyps:  # in the n-best, only outputs forced to end at the limit miss one
            met = all(contains(hyp.tokens, p) for p in wanted)
            assert met or (
                hyp.score == float("-inf")
                and len(hyp.tokens) == limits[sentence] + required.total[sentence]
            )
        if not wanted:  # a sentence without phrases searches exactly as plain beam search
            assert hyps[0].tokens == plain[sentence][0].tokens
            assert hyps[0].score == pytest.approx(plain[sentence][0].score, abs=1e-5)


def test_phrase_progress_state_machine():
    required = RequiredPhrases([[[5, 6, 7], [9]]], VOCAB, EOS_ID)
    state = required.start(torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, dtype=torch.long))
    seen = []
    for token in [5, 6, 8, 5, 6, 7, 9]:  # 5 6 then a wrong token: the phrase starts over
        state = required.advance(state, torch.tensor([token]))
        seen.append(int(required.progress(state)[0]))
    assert seen == [1, 2, 0, 1, 2, 3, 4]
    assert not bool(required.unmet(state)[0])
    eos_allowed = required.allowed(required.start(torch.zeros(1, 3), torch.zeros(1).long()))
    assert not eos_allowed[0, EOS_ID] and eos_allowed[0, 4]
    assert required.allowed(state)[0, EOS_ID]


def test_a_wrong_token_that_starts_another_phrase_takes_it_up():
    required = RequiredPhrases([[[5, 6], [6, 8]]], VOCAB, EOS_ID)
    state = required.start(torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, dtype=torch.long))
    for token in [5, 5, 6, 8]:  # 5 5: the second 5 restarts phrase 1; 5 6 meets it; 6 8?
        state = required.advance(state, torch.tensor([token]))
    # 6 was taken by phrase 1, so phrase 2 (6 8) is not met by this output
    assert state["met"].tolist() == [[True, False]]


def test_bank_sizes_split_the_beam_and_give_the_rest_to_the_advanced_banks():
    sizes = _bank_sizes(torch.tensor([2, 0, 5]), k=5, banks=6)
    assert sizes.tolist() == [[1, 2, 2, 0, 0, 0], [5, 0, 0, 0, 0, 0], [0, 1, 1, 1, 1, 1]]


def test_slots_a_bank_cannot_fill_go_down_to_the_next():
    bank = torch.tensor([[0, 0, 0, 1, 0, 0]])  # five candidates in bank 0, one in bank 1
    usable = torch.ones_like(bank, dtype=torch.bool)
    taken = _taken(bank, usable, torch.tensor([[1, 2, 2]]))  # bank 2 has none
    assert taken.tolist() == [[4, 1, 0]]


def test_phrases_must_not_be_empty():
    with pytest.raises(ValueError, match="sentence 2: required phrase 1 is empty"):
        RequiredPhrases([[[5]], [[]]], VOCAB, EOS_ID)


def test_a_phrase_is_not_followed_by_a_piece_that_continues_its_word():
    pieces = ["<pad>", "<unk>", "<s>", "</s>", "▁kick", "ing", "▁ball", ",", "s"]
    continuation = word_continuations(pieces)
    assert continuation is not None and continuation.tolist() == [
        False, False, False, False, False, True, False, False, True,
    ]  # fmt: skip
    assert word_continuations(["<pad>", "a", "b"]) is None  # no word starts: no rule
    required = RequiredPhrases([[[4]]], len(pieces), EOS_ID, continuation)
    state = required.start(torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, dtype=torch.long))
    assert required.allowed(state)[0, 5]  # before the phrase, "ing" may come
    state = required.advance(state, torch.tensor([4]))  # "▁kick": the phrase is met
    allowed = required.allowed(state)[0]
    assert not allowed[5] and not allowed[8]  # not "kicking", not "kicks"
    assert allowed[6] and allowed[7] and allowed[EOS_ID]
    state = required.advance(state, torch.tensor([7]))
    assert required.allowed(state)[0, 5]  # one token later the rule is off again
