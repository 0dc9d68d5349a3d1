"""The bar grammar of ABC tunes as a decoding constraint (``search.constrained: true``
with ``data.format: abc``): every output keeps the bar rules ``abc.check_tune`` checks,
while the model still chooses every note.

Lengths count in integer ticks (``TICKS`` per unit note length L, so that halves down to
1/64 and triplets of them are whole numbers). The state of a search row: ``total`` ticks
in the current bar, ``full`` ticks of a whole bar (the source's meter and unit),
``special`` (the bar touches a repeat, double bar or ending), ``bar`` (bar lines so far,
the source's included), ``tuplet`` notes left in the current tuplet and its factor
``num/den``, ``last`` the length of the note just written outside a tuplet (-1 after
anything else), ``broken`` (a broken rhythm waits for its second note), ``pending``
(a note was just written, so its position token is due), and ``free``
for a row whose source does not parse or whose first bar holds an unknown piece (left
unconstrained: its state cannot be known).

The rules, each one a condition of the check:
- a note, rest or chord must fit in what is left of the bar, after its tuplet's factor
  (a length that is not a whole number of ticks is never allowed);
- a plain bar line ``|`` closes a full bar, the tune's first bar (a pickup) or a bar
  beside a repeat or ending; a repeat, double bar or ending bar line closes any bar
  (a pickup's partner, the last bar), so no bar is ever a dead end;
- no bar line inside a tuplet, no tuplet inside another; a tuplet starts only where all
  its notes fit at the vocabulary's shortest length, and each of its notes leaves that
  room for the rest (no tuplet is a dead end); an ending ``[1`` comes right after a bar
  line; EOS comes after a bar line, outside a tuplet;
- a broken rhythm ``>``/``<`` comes right after a note outside a tuplet, when a second
  note of that length still fits in the bar, and the next token is such a note
  (``A>B``: dotted and halved, so the pair lasts what it is written as, the length the
  check counts);
- a meter or unit change (``[M:...]``, ``[L:...]``) and anything that is not ABC (the
  unknown piece) never come; a key change ``[K:...]``, chord symbols, decorations,
  slurs and ties come anywhere but inside a broken rhythm;
- with position tokens in the vocabulary (``data.abc.positions``), a note is followed by
  the one that says what is left of its bar, and position tokens come nowhere else.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from fractions import Fraction

import torch

from seq2seq.data.tokenizer import EOS_ID, UNK_ID
from seq2seq.search.constraint import ConstraintState
from seq2seq.tasks.music.abc import TOKEN
from seq2seq.tasks.music.abc_count import (
    BAR_TOKENS,
    TUPLET_FACTORS,
    default_unit,
    meter_length,
    note_length,
    parse_fraction,
)
from seq2seq.tasks.music.abc_count import POSITION as POSITION_MARK

TICKS = 2**8 * 3**2  # per unit note length L
NEVER, OTHER, NOTE, BAR, REPEAT_BAR, ENDING, TUPLET, END, BROKEN, POSITION = range(10)
_HEADER = re.compile(r"^[MKLT]:")


def classify(piece: str) -> tuple[int, int, int, int, int]:
    """A target piece -> (kind, length in ticks, tuplet notes, factor num, factor den);
    a position token's length is what it says is left of the bar."""
    if piece.startswith(POSITION_MARK):
        try:
            ticks = Fraction(piece[1:]) * TICKS
        except (ValueError, ZeroDivisionError):
            return NEVER, 0, 0, 1, 1
        return (POSITION, int(ticks), 0, 1, 1) if ticks.denominator == 1 else (NEVER, 0, 0, 1, 1)
    if not TOKEN.fullmatch(piece):
        return NEVER, 0, 0, 1, 1
    if piece.startswith("[") and piece[1:2].isalpha() and piece[2:3] == ":":
        return (OTHER if piece[1] == "K" else NEVER), 0, 0, 1, 1  # inline field
    if BAR_TOKENS.match(piece):
        return (BAR if piece == "|" else REPEAT_BAR), 0, 0, 1, 1
    if piece.startswith("[") and piece[1:].isdigit():
        return ENDING, 0, 0, 1, 1
    if piece.startswith("(") and piece[1:].isdigit():
        factor = TUPLET_FACTORS.get(int(piece[1:]), Fraction(2, 3))
        return TUPLET, 0, int(piece[1:]), factor.numerator, factor.denominator
    if piece[0] in "<>":
        return BROKEN, 0, 0, 1, 1
    if piece[0] in "_^=ABCDEFGabcdefgzx[":
        ticks = note_length(piece) * TICKS
        return (NOTE, int(ticks), 0, 1, 1) if ticks.denominator == 1 else (NEVER, 0, 0, 1, 1)
    return OTHER, 0, 0, 1, 1


def bar_ticks(header: Sequence[str]) -> int:
    """A whole bar in ticks, from the source's ``M:`` and ``L:`` tokens; ValueError for a
    meter this grammar cannot count (``M:none``)."""
    fields = {t.split(":", 1)[0]: t.split(":", 1)[1] for t in header if ":" in t}
    meter = fields.get("M", "4/4")
    unit = parse_fraction(fields["L"]) if fields.get("L") else default_unit(meter)
    full = meter_length(meter) / unit * TICKS
    if full.denominator != 1 or full <= 0:
        raise ValueError(f"meter {meter} with unit {unit}")
    return int(full)


class AbcConstraint:
    """Masks for a target vocabulary (``pieces`` in id order); ``source_pieces`` read the
    source ids back into tokens, whose first bar sets the state the output starts in."""

    def __init__(self, pieces: Sequence[str], source_pieces: Sequence[str]) -> None:
        self.source_pieces = list(source_pieces)
        rows = [classify(p) for p in pieces]
        rows[EOS_ID] = (END, 0, 0, 1, 1)
        table = torch.tensor(rows, dtype=torch.long)
        self.kind, self.length, self.tuplet_notes, self.num, self.den = table.unbind(1)
        self.note = self.kind == NOTE
        # the position tokens' ids (P,), None for a vocabulary without them
        position = (self.kind == POSITION).nonzero().squeeze(1)
        self.positions = position if position.numel() else None
        # a tuplet starts only where its notes fit at the shortest length there is, and
        # each of its notes leaves that room for the rest: no tuplet is a dead end
        self.shortest = int(self.length[self.note].min()) if self.note.any() else 0
        self.tuplet_room = self.tuplet_notes * self.shortest * self.num // self.den

    # ------------------------------------------------------------------ state

    def _source_state(self, row: list[int]) -> ConstraintState:
        """The state after one source (ids): free when it does not parse or its first
        bar holds an unknown piece (a rare title word, in the header, is fine)."""
        state = _initial(1)
        pieces = [self.source_pieces[i] for i in row]
        is_header = [bool(_HEADER.match(p)) for p in pieces]
        # the body starts at the first known piece that is no header field
        first = next((k for k, i in enumerate(row) if i > EOS_ID and not is_header[k]), len(row))
        try:
            state["full"][0] = bar_ticks([p for p, h in zip(pieces, is_header, strict=True) if h])
        except (ValueError, ZeroDivisionError):
            state["free"][0] = True
            return state
        if UNK_ID in row[first:]:
            state["free"][0] = True
            return state
        body = (p for i, p, h in zip(row, pieces, is_header, strict=True) if i > EOS_ID and not h)
        for token in body:
            kind, length, notes, num, den = (torch.tensor([x]) for x in classify(token))
            if kind.item() in (NEVER, END):
                state["free"][0] = True
                return state
            state = _advance(state, kind, length, notes, num, den)
        return state

    def start(self, src: torch.Tensor, rows: torch.Tensor) -> ConstraintState:
        states = [self._source_state(row) for row in src.cpu().tolist()]
        batch = {key: torch.cat([s[key] for s in states]) for key in states[0]}
        index = rows.cpu()
        return {key: value.index_select(0, index) for key, value in batch.items()}

    def allowed(self, state: ConstraintState) -> torch.Tensor:
        total, full, bar = state["total"], state["full"], state["bar"]
        outside = state["tuplet"] == 0
        scaled = self.length.unsqueeze(0) * state["num"].unsqueeze(1)  # (N, V)
        den = state["den"].unsqueeze(1)
        length = scaled // den
        # room kept for the notes of the tuplet still to come, at the shortest length
        reserve = (state["tuplet"] - 1).clamp(min=0) * self.shortest * state["num"] // state["den"]
        fits = (scaled % den == 0) & ((total + reserve).unsqueeze(1) + length <= full.unsqueeze(1))
        waits = state["broken"]  # only the broken rhythm's second note may come
        fits &= ~waits.unsqueeze(1) | (length == state["last"].unsqueeze(1))
        outside &= ~waits
        at_bar_start = outside & (total == 0)
        plain = outside & ((total == full) | state["special"] | (bar == 0))
        by_kind = torch.stack(
            [
                torch.zeros_like(outside),  # NEVER
                ~waits,  # OTHER
                torch.ones_like(outside),  # NOTE (and fits)
                plain,  # BAR
                outside,  # REPEAT_BAR
                at_bar_start,  # ENDING
                outside,  # TUPLET (if its notes fit, below)
                at_bar_start,  # END
                outside & (state["last"] >= 0) & (total + state["last"] <= full),  # BROKEN
                torch.zeros_like(outside),  # POSITION (only where due, below)
            ],
            dim=1,
        )  # (N, kinds)
        allowed = by_kind.gather(1, self.kind.unsqueeze(0).expand(total.numel(), -1))
        allowed &= fits | ~self.note.unsqueeze(0)
        allowed &= (total.unsqueeze(1) + self.tuplet_room.unsqueeze(0)) <= full.unsqueeze(1)
        if self.positions is not None:
            allowed = self._position_due(state, allowed)
        return allowed | state["free"].unsqueeze(1)

    def _position_due(self, state: ConstraintState, allowed: torch.Tensor) -> torch.Tensor:
        """After a note only the position token that says what is left of its bar (when
        the vocabulary has it); ``allowed`` (N, V) has no position token anywhere."""
        assert self.positions is not None
        left = (state["full"] - state["total"]).unsqueeze(1)  # (N, 1)
        says = torch.zeros_like(allowed)
        says[:, self.positions] = self.length[self.positions].unsqueeze(0) == left
        due = (state["pending"] & says.any(1)).unsqueeze(1)
        return torch.where(due, says, allowed)

    def advance(self, state: ConstraintState, tokens: torch.Tensor) -> ConstraintState:
        tokens = tokens.cpu()
        return _advance(
            state,
            self.kind[tokens],
            self.length[tokens],
            self.tuplet_notes[tokens],
            self.num[tokens],
            self.den[tokens],
        )


def _initial(rows: int) -> ConstraintState:
    zeros = torch.zeros(rows, dtype=torch.long)
    no = torch.zeros(rows, dtype=torch.bool)
    return {
        "total": zeros,
        "full": zeros.clone(),
        "special": no,
        "bar": zeros.clone(),
        "tuplet": zeros.clone(),
        "num": torch.ones(rows, dtype=torch.long),
        "den": torch.ones(rows, dtype=torch.long),
        "last": torch.full((rows,), -1, dtype=torch.long),
        "broken": no.clone(),
        "pending": no.clone(),
        "free": no.clone(),
    }


def _advance(
    state: ConstraintState,
    kind: torch.Tensor,
    length: torch.Tensor,
    notes: torch.Tensor,
    num: torch.Tensor,
    den: torch.Tensor,
) -> ConstraintState:
    """The state after each row emitted a token of ``kind`` (N,) with its ``length`` in
    ticks, and for a tuplet its ``notes`` and factor ``num/den``."""
    note, tuplet = kind == NOTE, kind == TUPLET
    bar_line = (kind == BAR) | (kind == REPEAT_BAR)
    counted = length * state["num"] // state["den"]  # after the tuplet's factor
    total = state["total"] + torch.where(note, counted, 0)
    left = torch.where(tuplet, notes, state["tuplet"] - (note & (state["tuplet"] > 0)).long())
    moved = {
        **state,
        "total": torch.where(bar_line, 0, total),
        "special": torch.where(bar_line, kind == REPEAT_BAR, state["special"] | (kind == ENDING)),
        "bar": state["bar"] + bar_line.long(),
        "tuplet": left,
        "num": torch.where(tuplet, num, torch.where(left == 0, 1, state["num"])),
        "den": torch.where(tuplet, den, torch.where(left == 0, 1, state["den"])),
        # a pair's second note starts no pair of its own (A>B>C is not one length)
        "last": torch.where(
            note & (state["tuplet"] == 0) & ~state["broken"],
            length,
            torch.where(kind == BROKEN, state["last"], -1),  # the pair's first note
        ),
        "broken": kind == BROKEN,
    }
    # a position token changes nothing but that it is no longer due
    position = kind == POSITION
    out = {key: torch.where(position, state[key], value) for key, value in moved.items()}
    out["pending"] = note
    return out
