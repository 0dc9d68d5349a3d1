"""Parallel fifths and octaves, the voice-leading faults a harmony teacher marks first:
two voices a perfect fifth apart (or an octave or unison; compound intervals count) at
one chord and again at the next, both having moved (in parallel or contrary motion).
Counted for every pair of the four voices at each change of chord (each time any voice
starts a note; a rest breaks the line), and reported per 100 beats (quarter notes), so
outputs and Bach's own chorales compare whatever their lengths. music21's
``VoiceLeadingQuartet.parallelFifth``/``parallelUnisonOrOctave`` agree on every move
between diatonic pitches (tested; music21 spells MIDI numbers, so a fifth it spells as
a diminished sixth, G#-Eb, is not one to it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import combinations, pairwise

from seq2seq.tasks.music.chorales import VOICES, Chorale

PAIRS = tuple(combinations(VOICES, 2))  # (S, A), (S, T) ... (T, B)
SIXTEENTHS_PER_BEAT = 4

Sonority = dict[str, int | None]  # voice -> MIDI pitch sounding (None: silent)


@dataclass(frozen=True)
class Parallels:
    fifths: int = 0
    octaves: int = 0
    beats: float = 0.0

    def __add__(self, other: Parallels) -> Parallels:
        return Parallels(
            self.fifths + other.fifths, self.octaves + other.octaves, self.beats + other.beats
        )

    def per_100_beats(self) -> tuple[float, float]:
        """(fifths, octaves) per 100 beats; (0, 0) for no music."""
        if not self.beats:
            return 0.0, 0.0
        return 100 * self.fifths / self.beats, 100 * self.octaves / self.beats


def sonorities(chorale: Chorale) -> list[Sonority]:
    """The pitch of each voice at each time a voice starts a note or rest, in time order."""
    events: dict[str, list[tuple[int, int | None]]] = {}
    for voice in VOICES:
        start, notes = 0, []
        for bar in chorale.voices.get(voice, []):
            for note in bar:
                notes.append((start, note.pitch))
                start += note.duration
        events[voice] = notes
    times = sorted({t for notes in events.values() for t, _ in notes})
    chords, index = [], dict.fromkeys(VOICES, -1)
    for time in times:
        for voice in VOICES:
            notes = events[voice]
            while index[voice] + 1 < len(notes) and notes[index[voice] + 1][0] <= time:
                index[voice] += 1
        chords.append({v: events[v][index[v]][1] if index[v] >= 0 else None for v in VOICES})
    return chords


def is_parallel(upper: tuple[int, int], lower: tuple[int, int], semitones: int) -> bool:
    """Do two voices (each a pitch before and after) both move, from one ``semitones``
    interval (modulo the octave: 7 fifth, 0 octave or unison) to another? Moving the same
    way is parallel motion, moving apart or together by the compound is antiparallel
    (music21 counts both, as strict counterpoint does)."""
    (a0, a1), (b0, b1) = upper, lower
    if a1 == a0 or b1 == b0:
        return False
    return abs(a0 - b0) % 12 == semitones and abs(a1 - b1) % 12 == semitones


def parallels(chorale: Chorale) -> Parallels:
    """Parallel fifths and octaves of ``chorale`` between all voice pairs, and its beats."""
    fifths = octaves = 0
    for before, after in pairwise(sonorities(chorale)):
        for x, y in PAIRS:
            a0, a1, b0, b1 = before[x], after[x], before[y], after[y]
            if a0 is None or a1 is None or b0 is None or b1 is None:
                continue  # a rest breaks the line
            fifths += is_parallel((a0, a1), (b0, b1), 7)
            octaves += is_parallel((a0, a1), (b0, b1), 0)
    sixteenths = sum(n.duration for bar in chorale.voices.get("S", []) for n in bar)
    return Parallels(fifths, octaves, sixteenths / SIXTEENTHS_PER_BEAT)


def total(chorales: Iterable[Chorale]) -> Parallels:
    out = Parallels()
    for chorale in chorales:
        out = out + parallels(chorale)
    return out
