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

With ``data.abc.positions`` each note is followed by a position token, what is left of
its bar (``abc_count.with_positions``: ``d2d G3`` in 6/8 reads ``d2 @4 d @3 G3 @0``);
outputs, ``to_abc`` and ``check_tune`` drop them.

The title is written as lower-cased word symbols (``T:abacus``); a title word too rare for
the vocabulary reads as unknown. Tunes are held out by a hash of their file and number.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from seq2seq.config import Data, format_options, ranged
from seq2seq.data.formats import FileOptions, check_shifts, holdout_part
from seq2seq.data.readers import Corpus, DataError, data_root, read_lines
from seq2seq.tasks.music.abc_count import (
    BAR_TOKENS,
    NOTE_PATTERN,
    bar_lengths,
    with_positions,
    without_positions,
)
from seq2seq.tasks.music.chorales import Check

log = logging.getLogger(__name__)

TOKEN = re.compile(
    r'"[^"]*"'  # chord symbol
    r"|\[[A-Za-z]:[^\]]*\]"  # inline field
    r"|\[(?:\s*" + NOTE_PATTERN + r"-?)+\s*\]\d*(?:/+\d*)?"  # chord of notes
    r"|\[\d"  # ending
    r"|:\|:|::|:\|\]?|\|\]|\|\||\|:|\|\d?"  # bar lines (|1 = bar + first ending)
    r"|\(\d"  # tuplet
    r"|" + NOTE_PATTERN + r"|[<>]+|-|[()~.]|!\w+!"
)
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


def model_tokens(tune: Tune, positions: bool) -> tuple[list[str], list[str]]:
    """A tune as the model reads it: its header tokens and its body (with ``positions``,
    a position token after each note)."""
    header = header_tokens(tune)
    return header, with_positions(header, tune.tokens) if positions else tune.tokens


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
            header, tokens = model_tokens(tune, opts.positions)
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
    header, body = model_tokens(tunes[0], positions)
    return " ".join(header + body)
