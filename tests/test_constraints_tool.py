"""tools/constraints_eval.py: the noun phrases it draws as constraints, and the match."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

from constraints_eval import draw_constraints, holds, noun_phrases


def test_noun_phrases_follow_determiners_and_stop_at_function_words():
    sentence = "A man in an orange hat starring at a Boston Terrier on the lush green grass."
    assert noun_phrases(sentence) == ["man", "orange hat", "Boston Terrier", "lush green grass"]
    assert noun_phrases("A woman wearing a hat.") == ["woman", "hat"]  # stops at -ing
    assert noun_phrases("Two dogs, the cat.") == ["dogs", "cat"]
    assert noun_phrases("the") == [] and noun_phrases("the 3 dogs") == []


def test_draws_are_seeded_distinct_and_capped():
    refs = ["A dog and a dog with a ball near the big red barn.", "Nothing here.", ""]
    first = draw_constraints(refs, 2, seed=3)
    assert first == draw_constraints(refs, 2, seed=3)
    assert len(first[0]) == 2 and len(set(first[0])) == 2
    assert set(first[0]) <= {"dog", "ball", "big red barn"}
    assert first[1:] == [[], []]


def test_a_phrase_holds_only_as_whole_words():
    assert holds("A man in an orange hat.", "orange hat")
    assert not holds("A man in an orange hats.", "orange hat")
    assert not holds("A Man.", "man")
