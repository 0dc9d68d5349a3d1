"""Bar counting in ABC token text: note lengths, each token with the bar's count after
it (``bar_lengths`` for the validity check), and position tokens (``with_positions``:
what is left of the bar after each note, a count a model can read instead of keep).

Lengths are in units of the tune's unit note length L; tuplets count after their factor;
an inline ``[M:...]`` or ``[L:...]`` changes the bar from there on.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from fractions import Fraction
from typing import NamedTuple

NOTE_PATTERN = r"[_^=]*[A-Ga-gzx][,']*\d*(?:/+\d*)?"
_NOTE_START = "_^=ABCDEFGabcdefgzx["  # notes, rests and chords (after inline fields, endings)
BAR_TOKENS = re.compile(r"^(?::\|:|::|:\|\]?|\|\]|\|\||\|:|\|\d?)$")
POSITION = "@"  # the position tokens' mark (with_positions)
Bar = tuple[Fraction, Fraction, bool]  # length, full length, touches a repeat or ending


def parse_fraction(text: str) -> Fraction:
    num, _, den = text.partition("/")
    return Fraction(int(num)) / (Fraction(int(den)) if den else 1)


def note_length(token: str) -> Fraction:
    """A note's, rest's or chord's length in units of L."""
    if token.startswith("["):
        inner, outer = token[1:].split("]", 1)
        first = re.match(NOTE_PATTERN, inner)
        return note_length(first.group() if first else "C") * note_length("C" + outer)
    match = re.search(r"(\d*)(/*)(\d*)$", token)
    assert match is not None
    num = int(match.group(1)) if match.group(1) else 1
    slashes = len(match.group(2))
    den = int(match.group(3)) if match.group(3) else 2**slashes
    return Fraction(num, den if slashes else 1)


def default_unit(meter: str) -> Fraction:
    m = meter_length(meter)
    return Fraction(1, 16) if m < Fraction(3, 4) else Fraction(1, 8)


def meter_length(meter: str) -> Fraction:
    if meter in ("C", "C|"):
        return Fraction(1) if meter == "C" else Fraction(2, 2)
    return parse_fraction(meter)


TUPLET_FACTORS = {2: Fraction(3, 2), 3: Fraction(2, 3), 4: Fraction(3, 4)}


class Counted(NamedTuple):
    """One token of a tune body with the bar's count after it (in L units)."""

    token: str
    total: Fraction  # the current bar's length so far (tuplets after their factor)
    full: Fraction  # a whole bar's length
    closed: Bar | None  # for a bar line, the bar it closes
    note: bool  # a note, rest or chord


def _walk(header: list[str], tokens: list[str]) -> Iterator[Counted]:
    """Each token with the bar's count after it."""
    fields = {t.split(":", 1)[0]: t.split(":", 1)[1] for t in header if ":" in t}
    meter = fields.get("M", "4/4")
    unit = parse_fraction(fields["L"]) if fields.get("L") else default_unit(meter)
    full = meter_length(meter) / unit
    total, special, tuplet_left, tuplet_factor = Fraction(0), False, 0, Fraction(1)
    for tok in tokens:
        closed: Bar | None = None
        note = False
        if tok.startswith("[") and ":" in tok[:3]:  # inline field
            key, value = tok[1:-1].split(":", 1)
            if key == "M":
                meter = value
            if key == "L":
                unit = parse_fraction(value)
            if key in "ML":
                full = meter_length(meter) / unit
        elif BAR_TOKENS.match(tok):
            repeat = tok not in ("|",)
            closed = (total, full, special or repeat)
            total, special = Fraction(0), repeat
        elif tok.startswith("[") and tok[1:].isdigit():
            special = True
        elif tok.startswith("(") and tok[1:].isdigit():
            tuplet_left, tuplet_factor = (
                int(tok[1:]),
                TUPLET_FACTORS.get(int(tok[1:]), Fraction(2, 3)),
            )
        elif tok[0] in _NOTE_START:
            length = note_length(tok)
            if tuplet_left:
                length, tuplet_left = length * tuplet_factor, tuplet_left - 1
            total, note = total + length, True
        yield Counted(tok, total, full, closed, note)


def bar_lengths(header: list[str], tokens: list[str]) -> list[Bar]:
    """Per bar: (length in L units, full length, whether it touches a repeat or ending)."""
    bars: list[Bar] = []
    last = None
    for last in _walk(header, tokens):
        if last.closed is not None:
            bars.append(last.closed)
    if last is not None and last.total:
        bars.append((last.total, last.full, True))
    return bars


def with_positions(header: list[str], tokens: list[str]) -> list[str]:
    """``tokens`` with a position token after each note, rest and chord: what is left of
    the bar after it in L units (``@3/2``, ``@0`` where the bar is full), so that a model
    reads the bar's count where it chooses the next note or bar line."""
    out: list[str] = []
    for step in _walk(header, tokens):
        out.append(step.token)
        if step.note:
            out.append(f"{POSITION}{step.full - step.total}")
    return out


def without_positions(text: str) -> str:
    """Token text with the position tokens of ``with_positions`` removed."""
    return " ".join(t for t in text.split() if not t.startswith(POSITION))
