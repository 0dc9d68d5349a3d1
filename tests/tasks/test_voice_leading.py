"""Parallel fifths and octaves: counted between every voice pair at each change of chord,
the same as music21's voice-leading analysis on diatonic moves."""

import random

import pytest

from seq2seq.tasks.music.chorales import Chorale, Note
from seq2seq.tasks.music.voice_leading import is_parallel, parallels, sonorities, total


def chorale(**voices: list[int | None]) -> Chorale:
    """One bar per voice of quarter notes (None: a rest); unnamed voices hold one pitch."""
    held = {"S": 79, "A": 64, "T": 57, "B": 41}
    length = max(len(v) for v in voices.values())
    parts = {v: voices.get(v, [held[v]]) for v in "SATB"}
    bars = {
        v: [[Note(p, 4 * length // len(pitches)) for p in pitches]] for v, pitches in parts.items()
    }
    return Chorale("c", f"{length}/4", None, bars)


def test_parallel_and_antiparallel_fifths_and_octaves_are_counted() -> None:
    # soprano and bass rise together a twelfth apart (a compound fifth)
    assert parallels(chorale(S=[72, 74], B=[53, 55])).fifths == 1
    # soprano and alto an octave apart, both rise
    assert parallels(chorale(S=[72, 74], A=[60, 62])).octaves == 1
    # contrary motion from a fifth to a twelfth: antiparallel fifths
    assert parallels(chorale(S=[67, 72], A=[60, 53])).fifths == 1
    # one voice stays (oblique): no fault; a fifth to a sixth: none
    assert parallels(chorale(S=[72, 74], B=[53, 53])).fifths == 0
    assert parallels(chorale(S=[72, 74], B=[53, 57])).fifths == 0


def test_a_rest_breaks_the_line_and_beats_are_quarter_notes() -> None:
    result = parallels(chorale(S=[72, None, 74], B=[53, None, 55]))
    assert (result.fifths, result.beats) == (0, 3.0)
    both = total([chorale(S=[72, 74], B=[53, 55]), chorale(S=[72, 74], A=[60, 62])])
    assert (both.fifths, both.octaves, both.beats) == (1, 1, 4.0)
    assert both.per_100_beats() == (25.0, 25.0)


def test_sonorities_follow_held_notes_across_other_voices_moves() -> None:
    bars = {"S": [[Note(72, 8)]], "A": [[Note(64, 4), Note(65, 4)]]}
    bars |= {"T": [[Note(57, 8)]], "B": [[Note(None, 4), Note(41, 4)]]}
    chords = sonorities(Chorale("c", "2/4", None, bars))
    assert chords == [
        {"S": 72, "A": 64, "T": 57, "B": None},
        {"S": 72, "A": 65, "T": 57, "B": 41},
    ]


def test_moves_agree_with_music21_on_diatonic_pitches() -> None:
    voice_leading = pytest.importorskip("music21.voiceLeading")
    note = pytest.importorskip("music21.note")
    white = [p for p in range(40, 84) if p % 12 in (0, 2, 4, 5, 7, 9, 11)]
    rng = random.Random(0)
    moves = 0
    for _ in range(400):
        a0, a1, b0, b1 = (rng.choice(white) for _ in range(4))
        if rng.random() < 0.5:  # make a fifth or octave to start from, half the time
            b0 = a0 - rng.choice([7, 12, 19, 24])
            b1 = a1 - rng.choice([7, 12, 19, 24])
        quartet = voice_leading.VoiceLeadingQuartet(*(note.Note(p) for p in (a0, a1, b0, b1)))
        assert is_parallel((a0, a1), (b0, b1), 7) == quartet.parallelFifth(), (a0, a1, b0, b1)
        octave = quartet.parallelUnisonOrOctave()
        assert is_parallel((a0, a1), (b0, b1), 0) == octave, (a0, a1, b0, b1)
        moves += is_parallel((a0, a1), (b0, b1), 7) or octave
    assert moves > 20  # the comparison saw faults, not only clean moves
