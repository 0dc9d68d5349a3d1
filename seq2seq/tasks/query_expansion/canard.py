"""Query expansion examples from CANARD: a conversational question (with the earlier
questions of its dialog as context) -> a self-contained rewrite, and -> its key terms.

Files of a split ``S`` under ``data.root``: ``S.tsv`` (``id  question  rewrite``) and
``S.answer_terms.tsv`` (``id  question  terms``, terms as ``a | b | c``), one header line,
tab-separated, no quoting. An id is ``<dialog>_q#<k>``: turn k of a dialog, so the earlier
questions of a turn are the rows of its dialog with smaller k.

One model serves both targets; the source starts with the mode, T5-style:
``rewrite: <question> || <context>`` and ``terms: <question> || <context>``. The context
is the dialog's first turn and the most recent earlier ones, ``context_turns`` in all,
in dialog order, separated by `` | ``. A turn stands in the context as its question
(``data.canard.context: questions``) or as its self-contained rewrite (``rewrites``: the
reference's in training; in evaluation and ``expand`` the model's own, so nothing of the
reference leaks). Rewrites carry what the questions left implicit: on the dev split, 55%
of the rewrite's words that its question lacks are in the three earlier reference
rewrites, 21% in the three earlier questions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from seq2seq.config import Data, format_options, ranged
from seq2seq.data.readers import Corpus, DataError, data_root, read_lines

log = logging.getLogger(__name__)

MODES = ("rewrite", "terms")
TERM_SEPARATOR = " | "


@dataclass(frozen=True)
class CanardOptions:
    """``data.canard``: how many earlier turns of the dialog the source carries, and as
    what: their questions or their rewrites."""

    context_turns: int = ranged(3, 0, 100)
    context: Literal["questions", "rewrites"] = "questions"


@dataclass(frozen=True)
class Turn:
    id: str
    question: str
    rewrite: str
    terms: tuple[str, ...]
    context: tuple[str, ...]  # earlier questions (or reference rewrites), oldest first
    dialog: str = ""
    index: int = 0  # the turn's place in its dialog (the k of ``_q#k``)


def source_text(mode: str, question: str, context: tuple[str, ...] | list[str] = ()) -> str:
    """The model's source for one query: ``<mode>: question || q0 | q1 ...``."""
    text = f"{mode}: {' '.join(question.split())}"
    if context:
        text += " || " + TERM_SEPARATOR.join(" ".join(q.split()) for q in context)
    return text


def split_terms(text: str) -> list[str]:
    """``a | b | a`` -> [a, b]: distinct, lower-cased, in order."""
    terms = (t.strip().lower() for t in text.split("|"))
    return list(dict.fromkeys(t for t in terms if t))


def _read_tsv(path: Path, columns: int) -> list[list[str]]:
    lines = read_lines(path)
    if not lines:
        raise DataError(f"{path}: empty file")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != columns:
            raise DataError(f"{path}:{number}: expected {columns} tab-separated fields")
        rows.append(fields)
    if not rows:
        raise DataError(f"{path}: no rows after the header")
    return rows


def _turn_key(turn_id: str, where: str) -> tuple[str, int]:
    dialog, sep, k = turn_id.rpartition("_q#")
    if not sep or not k.isdigit():
        raise DataError(f"{where}: id {turn_id!r} is not <dialog>_q#<turn>")
    return dialog, int(k)


def read_turns(root: str, stem: str, context_turns: int, context: str = "questions") -> list[Turn]:
    """Every row of split ``stem`` with its terms and dialog context: the earlier turns'
    questions, or with ``context="rewrites"`` their reference rewrites."""
    base = data_root(root)
    main_path, terms_path = base / f"{stem}.tsv", base / f"{stem}.answer_terms.tsv"
    rows = _read_tsv(main_path, 3)
    term_rows = _read_tsv(terms_path, 3)
    if len(rows) != len(term_rows):
        raise DataError(f"{terms_path} has {len(term_rows)} rows but {main_path} has {len(rows)}")
    earlier_turns: dict[str, dict[int, str]] = {}
    for number, (turn_id, question, rewrite) in enumerate(rows, start=2):
        dialog, k = _turn_key(turn_id, f"{main_path}:{number}")
        earlier_turns.setdefault(dialog, {})[k] = rewrite if context == "rewrites" else question
    turns = []
    for number, (row, term_row) in enumerate(zip(rows, term_rows, strict=True), start=2):
        if row[0] != term_row[0]:
            raise DataError(
                f"{terms_path}:{number}: id {term_row[0]} where {main_path} has {row[0]}"
            )
        dialog, k = _turn_key(row[0], f"{main_path}:{number}")
        turns_of = earlier_turns[dialog]
        earlier = [turns_of[j] for j in sorted(turns_of) if j < k]
        turns.append(
            Turn(
                row[0],
                row[1],
                row[2],
                tuple(split_terms(term_row[2])),
                tuple(pick_context(earlier, context_turns)),
                dialog,
                k,
            )
        )
    return turns


def pick_context(earlier: list[str], turns: int) -> list[str]:
    """The first question and the ``turns - 1`` most recent ones (``turns`` in all)."""
    if turns <= 0 or not earlier:
        return []
    if len(earlier) <= turns:
        return earlier
    return [earlier[0], *earlier[len(earlier) - (turns - 1) :]] if turns > 1 else [earlier[0]]


def read_canard(data: Data, part: str, name: str, seed: int = 0) -> Corpus:
    """Both kinds of example for every row: rewrites first, then key terms (a row with no
    terms gives no terms example; they are counted in the log)."""
    options = format_options(data, CanardOptions)
    turns = read_turns(data.root, part, options.context_turns, options.context)
    src = [source_text("rewrite", t.question, t.context) for t in turns]
    tgt = [t.rewrite for t in turns]
    with_terms = [t for t in turns if t.terms]
    src += [source_text("terms", t.question, t.context) for t in with_terms]
    tgt += [TERM_SEPARATOR.join(t.terms) for t in with_terms]
    if len(with_terms) < len(turns):
        log.info("%s: %d rows have no key terms", name, len(turns) - len(with_terms))
    return Corpus(name, src, tgt)
