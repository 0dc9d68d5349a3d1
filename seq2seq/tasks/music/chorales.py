"""Four-part chorales as music events (tokenizers/music_events.yaml), for harmonisation:
the soprano line (source) -> the alto, tenor and bass lines (target), bar by bar.

    source  M:4/4 K:-1 p65 d4 p67 d4 p69 d8 | p70 d16 |
    target  V:A p60 d8 p62 d8 V:T p57 d16 V:B p53 d8 p50 d8 | V:A ... |

Durations are in sixteenths; every bar ends with ``|``. ``encode`` and ``parse_*`` are
exact inverses on well-formed text (tests check the round trip). A model trained bar
by bar reads one bar's source (``bar_source``) and writes one bar. The data sets are
read in ``chorale_readers.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
