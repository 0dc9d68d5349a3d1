"""Transposing ABC tunes, for training data in more keys (``data.abc.transpose``).

A tune moves by ``semitones`` and by a number of letter ``steps`` chosen so that the new
key needs as few sharps or flats as possible (G up 2 semitones: 1 step, A major; not
Bbb). Moving every letter by the same steps keeps the tune's relation to its key
signature, so a note written without an accidental stays so: the new key's signature
supplies the alteration. A note with an accidental gets the one that spells its new
pitch on its new letter (ABC accidentals last to the bar line, and the notes after it
move with it, so those stay right too). Chord symbols and keys (the K: field and inline
``[K:...]``) move the same way.

    K:G  "G" B^cd  "D7" =f2      +2 semitones ->   K:A  "A" c^de  "E7" =g2
"""

from __future__ import annotations

import re
from dataclasses import replace

from seq2seq.tasks.music.abc import Tune

LETTERS = "CDEFGAB"
NATURAL = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
FIFTHS = {"F": -1, "C": 0, "G": 1, "D": 2, "A": 3, "E": 4, "B": 5}  # sharps of the major key
# sharps a mode's signature has against the major key on the same tonic (by first 3 letters)
MODE_SHIFT = {"": 0, "maj": 0, "ion": 0, "mix": -1, "dor": -2, "m": -3, "min": -3, "aeo": -3}
MODE_SHIFT |= {"phr": -4, "loc": -5, "lyd": 1}
MAX_ACCIDENTALS = 6  # keys of more sharps or flats than this are not written

_NOTE = re.compile(r"([_^=]*)([A-Ga-g])([,']*)")
_KEY = re.compile(r"^([A-G])([#b]?)\s*([A-Za-z]*)(.*)$")
_CHORD_ROOT = re.compile(r"([A-G])([#b]?)")


class Untransposable(ValueError):
    """A tune whose key this module cannot move (pipes, none, an unknown mode)."""


def transpose_tune(tune: Tune, semitones: int) -> Tune:
    """``tune`` moved by ``semitones``; raises Untransposable where its key cannot move
    or would need more than ``MAX_ACCIDENTALS`` sharps or flats."""
    if semitones == 0:
        return tune
    steps = best_steps(tune.key, semitones)
    tokens = [transpose_token(tok, steps, semitones) for tok in tune.tokens]
    key = transpose_key(tune.key, steps, semitones)
    return replace(tune, name=f"{tune.name}{semitones:+d}", key=key, tokens=tokens)


def key_sharps(key: str) -> int:
    """Sharps of a K: value's signature (negative: flats): "G" 1, "Dm" -1, "Ador" 0."""
    match = _KEY.match(key.strip())
    if not match:
        raise Untransposable(f"key {key!r}")
    letter, accidental, mode, _ = match.groups()
    shift = MODE_SHIFT.get(mode.lower()[:3] if len(mode) > 1 else mode.lower())
    if shift is None:
        raise Untransposable(f"mode {mode!r} of key {key!r}")
    return FIFTHS[letter] + 7 * {"#": 1, "b": -1, "": 0}[accidental] + shift


def best_steps(key: str, semitones: int) -> int:
    """The letter steps for ``semitones`` that give the key with the fewest accidentals."""
    around = round(semitones * 7 / 12)
    options = []
    for steps in (around - 1, around, around + 1):
        try:
            options.append((abs(key_sharps(transpose_key(key, steps, semitones))), steps))
        except Untransposable:
            continue
    if not options or min(options)[0] > MAX_ACCIDENTALS:
        raise Untransposable(f"key {key!r} moved by {semitones} semitones")
    return min(options)[1]


def transpose_key(key: str, steps: int, semitones: int) -> str:
    """A K: value moved: "G" -> "A", "F#m" -> "G#m", "D mix" -> "E mix"."""
    match = _KEY.match(key.strip())
    if not match:
        raise Untransposable(f"key {key!r}")
    letter, accidental, rest = match.group(1), match.group(2), key.strip()[match.end(2) :]
    return _spell_root(letter, accidental, steps, semitones) + rest


def transpose_token(token: str, steps: int, semitones: int) -> str:
    """One body token moved: notes (alone or in a chord), chord symbols, inline keys;
    everything else as it is."""
    if token.startswith('"'):
        return _CHORD_ROOT.sub(
            lambda m: _spell_root(m.group(1), m.group(2), steps, semitones), token
        )
    if token.startswith("[K:"):
        return f"[K:{transpose_key(token[3:-1], steps, semitones)}]"
    if (token.startswith("[") and ":" in token[:3]) or token.startswith(("!", "(")):
        return token  # another inline field, a decoration, a tuplet or a slur
    if token[:1] in "_^=ABCDEFGabcdefg[":
        return _NOTE.sub(lambda m: _move_note(m, steps, semitones), token)
    return token


def _spell_root(letter: str, accidental: str, steps: int, semitones: int) -> str:
    """A tonic or chord root (letter and # or b) moved; '' / '#' / 'b' / '##' / 'bb'."""
    pitch = NATURAL[letter] + {"#": 1, "b": -1, "": 0}[accidental] + semitones
    new = LETTERS[(LETTERS.index(letter) + steps) % 7]
    alteration = (pitch - NATURAL[new] + 6) % 12 - 6
    if abs(alteration) > 2:
        raise Untransposable(f"{letter}{accidental} by {semitones} semitones in {steps} steps")
    return new + ("#" * alteration if alteration > 0 else "b" * -alteration)


def _move_note(match: re.Match[str], steps: int, semitones: int) -> str:
    accidentals, letter, marks = match.groups()
    old_octave = (5 if letter.islower() else 4) + marks.count("'") - marks.count(",")
    octave, new = divmod(old_octave * 7 + LETTERS.index(letter.upper()) + steps, 7)
    written = LETTERS[new].lower() if octave >= 5 else LETTERS[new]
    written += "'" * (octave - 5) if octave >= 5 else "," * (4 - octave)
    if not accidentals:  # the key signature (or the bar's earlier accidental) alters it
        return written
    # the pitch it sounds, against its new letter's natural pitch: the accidental to write
    pitch = old_octave * 12 + NATURAL[letter.upper()] + _alteration(accidentals) + semitones
    alteration = pitch - (octave * 12 + NATURAL[LETTERS[new]])
    if abs(alteration) > 2:
        raise Untransposable(f"note {match.group()} by {semitones} semitones")
    if alteration == 0:
        return "=" + written
    return ("^" * alteration if alteration > 0 else "_" * -alteration) + written


def _alteration(accidentals: str) -> int:
    return accidentals.count("^") - accidentals.count("_")
