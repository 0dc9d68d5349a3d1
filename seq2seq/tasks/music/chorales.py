"""Four-part chorales as music events (tokenizers/music_events.yaml), for harmonisation:
the soprano line (source) -> the alto, tenor and bass lines (target), bar by bar.

    source  M:4/4 K:-1 p65 d4 p67 d4 p69 d8 | p70 d16 |
    target  V:A p60 d8 p62 d8 V:T p57 d16 V:B p53 d8 p50 d8 | V:A ... |

Durations are in sixteenths; every bar ends with ``|``. ``encode`` and ``parse_*`` are
exact inverses on well-formed text (tests check the round trip). Two sources:

- the JSB JSON of Boulanger-Lewandowski et al. (``Jsb16thSeparated.json``: 16th-note steps,
  one pitch per voice, -1 = silent). It has no meter or key: bars are cut every 16 steps
  (4/4), a held note and a repeated one look the same (both become one note per bar), and
  the key token is left out. Its train/valid/test splits are used as they are.
- the chorales inside the ``music21`` package (``data.chorales.files: music21``): real meters, keys,
  pickups and note lengths; parsed once (about a minute) and cached as JSON under
  ``$SEQ2SEQ_CACHE`` (default ~/.cache/seq2seq). Held out by a hash of the chorale's name:
  ``holdout`` of them for valid, as many again for test.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from seq2seq.config import Data, format_options, ranged
from seq2seq.data.files import atomic_write_text
from seq2seq.data.formats import FileOptions, check_shifts, holdout_part
from seq2seq.data.readers import Corpus, DataError, data_root

log = logging.getLogger(__name__)

VOICES = ("S", "A", "T", "B")
LOWER = ("A", "T", "B")
# the range each voice may use: the compass of the JSB chorales (S 60-81, A 52-74, T 46-69,
# B 36-66) widened by 3 semitones each way, the largest transposition training adds
VOICE_RANGES = {"S": (57, 84), "A": (49, 77), "T": (43, 72), "B": (33, 69)}
PITCH_RANGE = (28, 96)
MAX_DURATION = 32


class MusicError(ValueError):
    """Text that is not a well-formed event sequence."""


@dataclass(frozen=True)
class Note:
    pitch: int | None  # MIDI number; None = rest
    duration: int  # sixteenths


@dataclass
class Chorale:
    """Bars of notes per voice; every voice has the same number of bars."""

    name: str
    meter: str  # "4/4"
    key: int | None  # sharps (negative: flats); None = unknown
    voices: dict[str, list[list[Note]]] = field(default_factory=dict)

    @property
    def bars(self) -> int:
        return len(self.voices["S"])


def bar_length(meter: str) -> int:
    """Sixteenths in a full bar of ``meter`` ("3/4" -> 12)."""
    num, _, den = meter.partition("/")
    return int(num) * 16 // int(den)


# --------------------------------------------------------------------- events <-> text


def note_tokens(notes: list[Note]) -> list[str]:
    out = []
    for note in notes:
        out += ["r" if note.pitch is None else f"p{note.pitch}", f"d{note.duration}"]
    return out


def encode_source(chorale: Chorale) -> str:
    head = [f"M:{chorale.meter}"] + ([] if chorale.key is None else [f"K:{chorale.key}"])
    body = [tok for bar in chorale.voices["S"] for tok in [*note_tokens(bar), "|"]]
    return " ".join(head + body)


def encode_target(chorale: Chorale) -> str:
    return " ".join(bar_target(chorale, b) for b in range(chorale.bars))


def bar_source(
    meter: str, key: int | None, soprano: list[list[Note]], bar: int, previous: str | None
) -> str:
    """The source of one bar for a bar-by-bar harmoniser: the head, the previous bar's
    four voices (``previous`` is its lower voices as written, ``V:A ... V:B ... |``; None
    for the first bar), then the soprano of this bar and of the next (none after the last):

        M:4/4 K:-1 V:S p67 d16 V:A p62 d16 V:T p59 d16 V:B p55 d16 | p69 d8 p67 d8 | p65 d16 |
    """
    out = [f"M:{meter}"] + ([] if key is None else [f"K:{key}"])
    if previous is not None:
        lower = previous.split()
        if lower and lower[-1] == "|":
            lower = lower[:-1]
        out += ["V:S", *note_tokens(soprano[bar - 1]), *lower]
    for notes in soprano[bar : bar + 2]:
        out += ["|", *note_tokens(notes)]
    return " ".join([*out, "|"])


def longest_bar_output(sixteenths: int) -> int:
    """The most tokens a valid harmonisation of a bar this long can have: every lower
    voice a marker and one sixteenth note (pitch, duration) per sixteenth, then ``|``."""
    return len(LOWER) * (1 + 2 * sixteenths) + 1


def bar_target(chorale: Chorale, bar: int) -> str:
    """One bar of ``encode_target``: ``V:A ... V:T ... V:B ... |``."""
    out = [
        tok for voice in LOWER for tok in [f"V:{voice}", *note_tokens(chorale.voices[voice][bar])]
    ]
    return " ".join([*out, "|"])


def bar_examples(chorale: Chorale) -> list[tuple[str, str]]:
    """(source, target) per bar, each source with Bach's own previous bar."""
    soprano = chorale.voices["S"]
    targets = [bar_target(chorale, b) for b in range(chorale.bars)]
    return [
        (
            bar_source(chorale.meter, chorale.key, soprano, b, targets[b - 1] if b else None),
            targets[b],
        )
        for b in range(chorale.bars)
    ]


def parse_notes(tokens: list[str]) -> list[Note]:
    """``p60 d4 r d2`` -> notes; raises MusicError on anything else."""
    if len(tokens) % 2:
        raise MusicError(f"a note needs a pitch and a duration: {' '.join(tokens[-3:])!r}")
    notes = []
    for head, dur in zip(tokens[::2], tokens[1::2], strict=True):
        if not (dur.startswith("d") and dur[1:].isdigit() and int(dur[1:]) > 0):
            raise MusicError(f"expected a duration after {head!r}, got {dur!r}")
        if head == "r":
            pitch = None
        elif head.startswith("p") and head[1:].isdigit():
            pitch = int(head[1:])
        else:
            raise MusicError(f"expected a pitch or a rest, got {head!r}")
        notes.append(Note(pitch, int(dur[1:])))
    return notes


def _split_bars(tokens: list[str]) -> list[list[str]]:
    bars: list[list[str]] = [[]]
    for tok in tokens:
        if tok == "|":
            bars.append([])
        else:
            bars[-1].append(tok)
    if bars[-1]:
        raise MusicError("the last bar has no bar line")
    return bars[:-1]


def parse_source(text: str) -> tuple[str, int | None, list[list[Note]]]:
    """Source text -> (meter, key, the soprano bars to harmonise): all bars of a whole
    source, the one bar a bar source (``bar_source``) asks for."""
    tokens = text.split()
    if not tokens or not tokens[0].startswith("M:"):
        raise MusicError("a source starts with its time signature, e.g. M:4/4")
    meter, key, rest = tokens[0][2:], None, tokens[1:]
    if rest and rest[0].startswith("K:"):
        key, rest = int(rest[0][2:]), rest[1:]
    if rest and rest[0] in ("|", "V:S"):  # a bar source: its bar follows the first "|"
        rest = rest[rest.index("|") + 1 :] if "|" in rest else rest
        return meter, key, [parse_notes(bar) for bar in _split_bars(rest)[:1]]
    return meter, key, [parse_notes(bar) for bar in _split_bars(rest)]


def parse_target(text: str) -> list[dict[str, list[Note]]]:
    """Target text -> per bar, the notes of each lower voice (in the order written)."""
    bars = []
    for number, bar in enumerate(_split_bars(text.split()), start=1):
        voices: dict[str, list[Note]] = {}
        current: list[str] | None = None
        groups: list[tuple[str, list[str]]] = []
        for tok in bar:
            if tok.startswith("V:"):
                current = []
                groups.append((tok[2:], current))
            elif current is None:
                raise MusicError(f"bar {number}: events before a voice marker")
            else:
                current.append(tok)
        for voice, toks in groups:
            if voice in voices:
                raise MusicError(f"bar {number}: voice {voice} twice")
            voices[voice] = parse_notes(toks)
        bars.append(voices)
    return bars


def decode(source: str, target: str, name: str = "generated") -> Chorale:
    """A source and a (well-formed) target back into a chorale."""
    meter, key, soprano = parse_source(source)
    bars = parse_target(target)
    voices = {"S": soprano}
    for voice in LOWER:
        voices[voice] = [bar.get(voice, []) for bar in bars]
    return Chorale(name, meter, key, voices)


# --------------------------------------------------------------------- validity


@dataclass(frozen=True)
class Check:
    valid: bool
    reason: str = ""


def check_harmony(source: str, target: str) -> Check:
    """Is ``target`` a usable harmonisation of ``source``: well-formed, one bar per source
    bar, alto/tenor/bass once each in every bar, each voice's durations filling the bar
    exactly as the soprano's do, and every pitch within its voice's range."""
    try:
        _, _, soprano = parse_source(source)
        bars = parse_target(target)
    except (MusicError, ValueError) as err:
        return Check(False, f"malformed: {str(err).split(':')[0]}")
    if len(bars) != len(soprano):
        return Check(False, "bar count")
    for s_bar, bar in zip(soprano, bars, strict=True):
        if sorted(bar) != sorted(LOWER):
            return Check(False, "voices")
        length = sum(n.duration for n in s_bar)
        for voice in LOWER:
            if sum(n.duration for n in bar[voice]) != length:
                return Check(False, "durations")
            low, high = VOICE_RANGES[voice]
            if any(n.pitch is not None and not low <= n.pitch <= high for n in bar[voice]):
                return Check(False, "range")
    return Check(True)


# --------------------------------------------------------------------- transposition


def transpose(chorale: Chorale, semitones: int) -> Chorale:
    """All voices moved by ``semitones``; the key signature follows (sharps = 7 per
    semitone, mod 12, written from -5 to 6)."""

    def move(note: Note) -> Note:
        return note if note.pitch is None else Note(note.pitch + semitones, note.duration)

    key = None if chorale.key is None else (chorale.key + 7 * semitones + 5) % 12 - 5
    voices = {v: [[move(n) for n in bar] for bar in bars] for v, bars in chorale.voices.items()}
    return Chorale(f"{chorale.name}{semitones:+d}", chorale.meter, key, voices)


# --------------------------------------------------------------------- readers


def from_steps(name: str, steps: list[list[int]], steps_per_bar: int = 16) -> Chorale:
    """JSB 16th-note steps (T, 4 voices; -1 = silent) -> a 4/4 chorale (see module doc)."""
    voices: dict[str, list[list[Note]]] = {}
    for v, voice in enumerate(VOICES):
        bars = []
        for start in range(0, len(steps), steps_per_bar):
            bar: list[Note] = []
            for step in steps[start : start + steps_per_bar]:
                pitch = None if step[v] < 0 else int(step[v])
                if bar and bar[-1].pitch == pitch:
                    bar[-1] = Note(pitch, bar[-1].duration + 1)
                else:
                    bar.append(Note(pitch, 1))
            bars.append(bar)
        voices[voice] = bars
    return Chorale(name, "4/4", None, voices)


def from_music21(name: str, score: Any) -> Chorale | None:
    """A music21 score with four parts -> a chorale; None (with the reason logged) when
    it has another number of parts, tuplets or notes shorter than a sixteenth."""
    parts = list(score.parts)
    if len(parts) != 4:
        log.debug("%s: %d parts, not 4", name, len(parts))
        return None
    signatures = parts[0].recurse().getElementsByClass("TimeSignature")
    keys = parts[0].recurse().getElementsByClass("KeySignature")
    meter = signatures[0].ratioString if signatures else "4/4"
    voices: dict[str, list[list[Note]]] = {}
    for voice, part in zip(VOICES, parts, strict=True):
        bars = []
        for measure in part.getElementsByClass("Measure"):
            bar = []
            for item in measure.notesAndRests:
                sixteenths = float(item.quarterLength) * 4
                if sixteenths == 0:  # grace note
                    continue
                if not sixteenths.is_integer() or sixteenths > MAX_DURATION:
                    return None
                pitch = None if item.isRest else int(max(p.midi for p in item.pitches))
                bar.append(Note(pitch, int(sixteenths)))
            bars.append(bar)
        voices[voice] = bars
    if len({len(b) for b in voices.values()}) != 1 or not voices["S"]:
        return None
    return Chorale(name, meter, int(keys[0].sharps) if keys else None, voices)


def _cache_dir() -> Path:
    return Path(os.environ.get("SEQ2SEQ_CACHE", Path.home() / ".cache" / "seq2seq"))


def _chorale_to_json(ch: Chorale) -> dict[str, Any]:
    return {
        "name": ch.name,
        "meter": ch.meter,
        "key": ch.key,
        "voices": {
            v: [[[n.pitch, n.duration] for n in bar] for bar in bars]
            for v, bars in ch.voices.items()
        },
    }


def _chorale_from_json(d: dict[str, Any]) -> Chorale:
    voices = {
        v: [[Note(p, dur) for p, dur in bar] for bar in bars] for v, bars in d["voices"].items()
    }
    return Chorale(d["name"], d["meter"], d["key"], voices)


def music21_chorales() -> list[Chorale]:
    """The four-part Bach chorales of the music21 corpus (parsed once, then cached)."""
    try:
        import music21
    except ImportError:
        raise DataError(
            "data.chorales.files: music21 needs the music21 package (pip install 'seq2seq[music]')"
        ) from None
    cache = _cache_dir() / f"music21-{music21.__version__}-chorales.json"
    if cache.is_file():
        try:
            return [_chorale_from_json(d) for d in json.loads(cache.read_text(encoding="utf-8"))]
        except (ValueError, KeyError, TypeError):
            log.warning("%s: unreadable cache, parsing the corpus again", cache)
    from music21 import corpus

    log.info(
        "parsing the Bach chorales of music21 %s (once; cached in %s)", music21.__version__, cache
    )
    chorales, skipped = [], 0
    for name in corpus.chorales.Iterator(returnType="filename"):
        chorale = from_music21(str(name), corpus.parse(name))
        if chorale is None:
            skipped += 1
        else:
            chorales.append(chorale)
    log.info(
        "music21: %d chorales kept, %d skipped (not 4 parts, or tuplets)", len(chorales), skipped
    )
    cache.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(cache, json.dumps([_chorale_to_json(c) for c in chorales]))
    return chorales


@dataclass(frozen=True)
class ChoraleOptions(FileOptions):
    """``data.chorales``: ``files`` is the JSB JSON (splits are its keys) or ``music21``
    (the corpus inside music21, ``holdout`` of it for valid and again for test);
    ``transpose``: semitone shifts added to the training split, [down <= 0, up >= 0]."""

    files: str = "Jsb16thSeparated.json"
    transpose: tuple[int, int] = ranged((0, 0), -24, 24)
    # piece: one example per chorale (the whole soprano -> the whole lower voices);
    # bar: one per bar (``bar_source``: the previous bar's four voices and the soprano of
    # this bar and the next -> this bar's lower voices), harmonised bar after bar (bars.py)
    unit: Literal["piece", "bar"] = "piece"

    def __post_init__(self) -> None:
        check_shifts("data.chorales.transpose", self.transpose)


def by_bars(data: Data) -> bool:
    """Whether the recipe's model harmonises chorales bar by bar (``unit: bar``)."""
    return data.format == "chorales" and format_options(data, ChoraleOptions).unit == "bar"


def read_chorales(data: Data, part: str, name: str, seed: int) -> Corpus:
    """Harmonisation examples of one split, whole chorales or bars (``data.chorales.unit``);
    the training split also gets every transposition in ``data.chorales.transpose``
    (semitones, e.g. [-3, 3])."""
    chorales = load_chorales(data, part, name)
    if by_bars(data):
        pairs = [pair for chorale in chorales for pair in bar_examples(chorale)]
        return Corpus(name, [src for src, _ in pairs], [tgt for _, tgt in pairs])
    return Corpus(name, [encode_source(c) for c in chorales], [encode_target(c) for c in chorales])


def read_pieces(data: Data, part: str) -> Corpus:
    """Whole chorales of one split (source: the soprano, target: the lower voices),
    whatever unit the model is trained on: what harmonisations are scored on."""
    chorales = load_chorales(data, part, part)
    return Corpus(part, [encode_source(c) for c in chorales], [encode_target(c) for c in chorales])


def load_chorales(data: Data, part: str, name: str) -> list[Chorale]:
    """The chorales of one split, the training split in every transposition."""
    opts = format_options(data, ChoraleOptions)
    if opts.files == "music21":
        if part not in ("train", "valid", "test"):
            raise DataError(
                f"data.splits: music21 chorale splits are train/valid/test, not '{part}'"
            )
        chorales = [c for c in music21_chorales() if holdout_part(c.name, opts.holdout) == part]
    else:
        path = data_root(data.root) / (opts.files or "Jsb16thSeparated.json")
        try:
            pieces = json.loads(path.read_text(encoding="utf-8"))[part]
        except FileNotFoundError:
            raise DataError(f"{path}: file not found") from None
        except (ValueError, UnicodeDecodeError) as err:
            raise DataError(f"{path}: not valid JSON ({err})") from None
        except KeyError:
            raise DataError(f"{path}: no split '{part}'") from None
        for number, steps in enumerate(pieces):
            if not steps or any(len(s) != 4 for s in steps):
                raise DataError(f"{path}: {part}[{number}] is not a list of 4-voice steps")
        chorales = [from_steps(f"{part}-{i}", steps) for i, steps in enumerate(pieces)]
    if not chorales:
        raise DataError(f"chorales: split '{name}' is empty")
    if part == "train":
        low, high = opts.transpose
        chorales = [transpose(c, k) if k else c for c in chorales for k in range(low, high + 1)]
    return chorales
