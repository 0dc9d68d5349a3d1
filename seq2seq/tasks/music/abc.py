"""Folk tunes in ABC notation as tokens: a tune's header and first bar -> the rest.

A tune body is cut into tokens that rejoin to the body with its spaces, line breaks and
line continuations removed (which in ABC change beaming and layout only):

    chord symbol "G"   note ^c'3/2   rest z2   chord [ce]   tuplet (3   tie -
    broken rhythm > <  bar lines | || |: :| :: |] [1 |1   inline field [K:D]
    slur ( )  decorations ~ . !trill!

Header fields inside the body (a new key or meter between parts) become inline fields;
part labels (P:), the playing order (Y:), sources (S:) and % comments are dropped.

    source  M:6/8 K:G L:1/8 T:abacus "G" g2g B^AB |
    target  d2d G3 | "Em" GAB "Am" A2A | ... :|

The title is written as lower-cased word symbols (``T:abacus``); a title word too rare for
the vocabulary reads as unknown. Tunes are held out by a hash of their file and number.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, NamedTuple

from seq2seq.config import Data, format_options, ranged
from seq2seq.data.formats import FileOptions, check_shifts, holdout_part
from seq2seq.data.readers import Corpus, DataError, data_root, read_lines
from seq2seq.tasks.music.chorales import Check

log = logging.getLogger(__name__)

_NOTE = r"[_^=]*[A-Ga-gzx][,']*\d*(?:/+\d*)?"
TOKEN = re.compile(
    r'"[^"]*"'  # chord symbol
    r"|\[[A-Za-z]:[^\]]*\]"  # inline field
    r"|\[(?:\s*" + _NOTE + r"-?)+\s*\]\d*(?:/+\d*)?"  # chord of notes
    r"|\[\d"  # ending
    r"|:\|:|::|:\|\]?|\|\]|\|\||\|:|\|\d?"  # bar lines (|1 = bar + first ending)
    r"|\(\d"  # tuplet
    r"|" + _NOTE + r"|[<>]+|-|[()~.]|!\w+!"
)
_NOTE_START = "_^=ABCDEFGabcdefgzx["  # notes, rests and chords (after inline fields, endings)
POSITION = "@"  # the position tokens' mark (with_positions)
Bar = tuple[Fraction, Fraction, bool]
BAR_TOKENS = re.compile(r"^(?::\|:|::|:\|\]?|\|\]|\|\||\|:|\|\d?)$")
_FIELD = re.compile(r"^([A-Za-z]):\s*(.*)$")


class AbcError(ValueError):
    """Text that is not ABC this module can read."""


@dataclass
class Tune:
    name: str  # "file.abc#X"
    title: str
    meter: str
    unit: str  # L: field ("" = ABC's default for the meter)
    key: str
    tokens: list[str]  # the body


def tokenize(body: str) -> list[str]:
    """ABC body text -> tokens; raises AbcError naming the first character it cannot read."""
    text = re.sub(r"\\\s*\n", "", body)
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        match = TOKEN.match(text, pos)
        if not match:
            raise AbcError(f"cannot read {text[pos : pos + 10]!r} (character {pos + 1})")
        tokens.append(re.sub(r"\s+", "", match.group()))  # "[f/2 B/2 ]" -> "[f/2B/2]"
        pos = match.end()
    return tokens


def parse_tunes(text: str, source: str) -> tuple[list[Tune], list[str]]:
    """Every tune (``X:`` to the next ``X:``) of a tune book, and an error line for each
    tune whose body does not tokenize (it is left out)."""
    tunes: list[Tune] = []
    errors: list[str] = []
    fields: dict[str, str] = {}
    body: list[str] = []
    in_body = False

    def finish() -> None:
        if fields.get("X") is not None and body:
            name = f"{source}#{fields['X']}"
            try:
                tokens = tokenize("\n".join(body))
            except AbcError as err:
                errors.append(f"{name}: {err}")
                return
            tunes.append(
                Tune(
                    name,
                    fields.get("T", ""),
                    fields.get("M", "4/4"),
                    fields.get("L", ""),
                    fields.get("K", "C"),
                    tokens,
                )
            )

    for line in text.split("\n"):
        line = line.split("%", 1)[0].rstrip()
        field = _FIELD.match(line)
        if field and field.group(1) == "X":
            finish()
            fields, body, in_body = {"X": field.group(2).strip()}, [], False
        elif field and not in_body:
            fields.setdefault(field.group(1), field.group(2).strip())
            in_body = field.group(1) == "K"
        elif field:  # a field between parts: keep what changes the music
            if field.group(1) in "KML":
                body.append(f"[{field.group(1)}:{field.group(2).strip()}]")
        elif line.strip() and "X" in fields:
            in_body = True
            body.append(line)
    finish()
    return tunes, errors


def header_tokens(tune: Tune) -> list[str]:
    words = re.findall(r"[a-z0-9']+", tune.title.lower())
    unit = [f"L:{tune.unit}"] if tune.unit else []
    return [f"M:{tune.meter}", f"K:{tune.key.replace(' ', '')}", *unit, *(f"T:{w}" for w in words)]


def first_bar_end(tokens: list[str]) -> int:
    """Index just past the first bar line."""
    for i, tok in enumerate(tokens):
        if BAR_TOKENS.match(tok):
            return i + 1
    return len(tokens)


def to_abc(source: str, target: str, number: int = 1) -> str:
    """A source and a target (token text, position tokens or not) back into a complete
    ABC tune."""
    source, target = without_positions(source), without_positions(target)
    head: list[str] = []
    body: list[str] = []
    fields = {"M": "4/4", "K": "C", "L": ""}
    titles: list[str] = []
    for tok in source.split():
        key, sep, value = tok.partition(":")
        if sep and key in ("M", "K", "L") and not body:
            fields[key] = value
        elif sep and key == "T" and not body:
            titles.append(value)
        else:
            body.append(tok)
    body += target.split()
    head.append(f"X:{number}")
    head.append(f"T:{' '.join(titles).title() or 'Generated'}")
    head.append(f"M:{fields['M']}")
    if fields["L"]:
        head.append(f"L:{fields['L']}")
    head.append(f"K:{fields['K']}")
    lines, bars, current = [], 0, ""
    for tok in body:
        current += tok
        if BAR_TOKENS.match(tok):
            bars += 1
            if bars % 8 == 0:
                lines.append(current)
                current = ""
    if current:
        lines.append(current)
    return "\n".join(head + lines) + "\n"


# --------------------------------------------------------------------- validity


def parse_fraction(text: str) -> Fraction:
    num, _, den = text.partition("/")
    return Fraction(int(num)) / (Fraction(int(den)) if den else 1)


def note_length(token: str) -> Fraction:
    """A note's, rest's or chord's length in units of L."""
    if token.startswith("["):
        inner, outer = token[1:].split("]", 1)
        first = re.match(_NOTE, inner)
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


def check_tune(source: str, target: str, parse: bool = True) -> Check:
    """Is source + target a playable tune: it tokenizes, music21 parses it (with
    ``parse``), it has notes, no bar is over-full, and every bar is full except the first,
    the last and those beside a repeat, double bar or ending (pickups and their partners).
    Position tokens (``with_positions``) are left out: they carry no music."""
    source, target = without_positions(source), without_positions(target)
    header = [t for t in source.split() if re.match(r"^[MKLT]:", t)]
    body = [t for t in source.split() if t not in header] + target.split()
    if not all(TOKEN.fullmatch(t) for t in body):
        return Check(False, "tokens")
    if not any(re.match(r"\[?[_^=]*[A-Ga-g]", t) for t in body):
        return Check(False, "no notes")
    bars = bar_lengths(header, body)
    for i, (length, full, special) in enumerate(bars):
        if length > full:
            return Check(False, "over-full bar")
        if length < full and not special and 0 < i < len(bars) - 1:
            return Check(False, "short bar")
    if parse:
        try:
            score = parse_abc(to_abc(source, target))
        except Exception as err:  # music21 raises many kinds
            return Check(False, f"music21: {type(err).__name__}")
        if not score.flatten().notes:
            return Check(False, "no notes")
    return Check(True)


def parse_abc(text: str) -> Any:
    from music21 import converter

    return converter.parse(text, format="abc")


# --------------------------------------------------------------------- reader


@dataclass(frozen=True)
class AbcOptions(FileOptions):
    """``data.abc``: the tune books (``files``, a glob under the root) and the share of
    tunes held out (by a hash of the title) for valid, and again for test."""

    files: str = "*.abc"
    # semitone shifts added to the training split, [down <= 0, up >= 0] (abc_transpose.py;
    # a tune whose key would need more than 6 sharps or flats skips that shift)
    transpose: tuple[int, int] = ranged((0, 0), -12, 12)
    # a position token after each note: what is left of its bar (with_positions)
    positions: bool = False

    def __post_init__(self) -> None:
        check_shifts("data.abc.transpose", self.transpose)


def read_abc(data: Data, part: str, name: str, seed: int = 0) -> Corpus:
    """Examples of one split (``train``, ``valid``, ``test``: held out by tune)."""
    if part not in ("train", "valid", "test"):
        raise DataError(f"data.splits: abc splits are train/valid/test, not '{part}'")
    opts = format_options(data, AbcOptions)
    base = data_root(data.root)
    files = sorted(base.glob(opts.files or "*.abc"))
    if not files:
        raise DataError(f"{base / (opts.files or '*.abc')}: no ABC files (is SEQ2SEQ_DATA set?)")
    src, tgt, skipped = [], [], []
    shifts = range(opts.transpose[0], opts.transpose[1] + 1) if part == "train" else [0]
    for path in files:
        tunes, errors = parse_tunes("\n".join(read_lines(path)), path.name)
        skipped += errors
        held = [t for t in tunes if holdout_part(t.name, opts.holdout) == part]
        for tune in transposed(held, shifts):
            header = header_tokens(tune)
            tokens = with_positions(header, tune.tokens) if opts.positions else tune.tokens
            cut = first_bar_end(tokens)
            if cut >= len(tokens):
                continue
            src.append(" ".join(header + tokens[:cut]))
            tgt.append(" ".join(tokens[cut:]))
    for error in skipped:
        log.warning("skipped a tune that does not tokenize: %s", error)
    if not src:
        raise DataError(f"{base}: split '{name}' has no tunes")
    return Corpus(name, src, tgt)


def transposed(tunes: list[Tune], shifts: range | list[int]) -> list[Tune]:
    """Every tune in every shift it can take (a key it cannot move keeps the shift 0)."""
    from seq2seq.tasks.music.abc_transpose import Untransposable, transpose_tune

    out, refused = [], 0
    for tune in tunes:
        for shift in shifts:
            try:
                out.append(transpose_tune(tune, shift))
            except Untransposable:
                refused += 1
    if refused:
        log.info("abc: %d tune transpositions left out (keys that cannot move so)", refused)
    return out


def source_from_abc(text: str, positions: bool = False) -> str:
    """A user's ABC prompt -> the model's source tokens (with ``positions``, a position
    token after each note). Either ABC lines (header fields, then the first bar), or one
    line: fields, the last of them followed by the first bar, e.g.
    ``T:The Tune M:6/8 K:G g2g B^AB|``."""
    if "\n" not in text.strip():
        lines = re.sub(r"\s+(?=[A-Za-z]:)", "\n", text.strip()).split("\n")
        value, _, bar = lines[-1].partition(" ")
        text = "\n".join([*lines[:-1], value, bar])
    if not re.search(r"^X:", text, re.M):
        text = "X:1\n" + text
    tunes, errors = parse_tunes(text, "prompt")
    if errors:
        raise AbcError(errors[0])
    if not tunes:
        raise AbcError("the prompt has no tune body (give header fields, then the first bar)")
    header = header_tokens(tunes[0])
    body = with_positions(header, tunes[0].tokens) if positions else tunes[0].tokens
    return " ".join(header + body)
