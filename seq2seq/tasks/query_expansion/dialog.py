"""Rewriting whole dialogs in order, for a model trained with ``data.canard.context:
rewrites``: each turn's context is the model's own rewrites of the earlier turns (the
reference's would leak the answer). The turns are searched in rounds by their place in
the dialog, all first turns in one batched search, then all second turns, and so on, so
a split of D dialogs of at most K turns costs K searches, not D x K."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby
from typing import TYPE_CHECKING

from seq2seq.tasks.query_expansion.canard import CanardOptions, Turn, pick_context, source_text

if TYPE_CHECKING:
    from seq2seq.inference import Translator


# a rewrite adds the few words its question leaves out: 2 of CANARD's 28,261 training
# rewrites are longer than 4 x the question's words + 20; an own rewrite that is has looped
RUNAWAY_RATIO, RUNAWAY_WORDS = 4, 20


def rewrite_dialogs(
    translator: Translator, turns: Sequence[Turn], context_turns: int
) -> tuple[list[str], list[tuple[str, ...]]]:
    """The top rewrite of every turn and the context it was given (the first and the
    most recent earlier rewrites of its dialog, ``context_turns`` in all), in ``turns``'
    order. A turn whose earlier turns are not in ``turns`` gets those that are."""
    rewrites = [""] * len(turns)
    contexts: list[tuple[str, ...]] = [()] * len(turns)
    done: dict[str, dict[int, str]] = {}  # dialog -> turn index -> own rewrite
    order = sorted(range(len(turns)), key=lambda i: turns[i].index)
    for _, round_ in groupby(order, key=lambda i: turns[i].index):
        rows = list(round_)
        for i in rows:
            earlier = done.get(turns[i].dialog, {})
            contexts[i] = tuple(pick_context([earlier[k] for k in sorted(earlier)], context_turns))
        outputs = translator.translate(
            [source_text("rewrite", turns[i].question, contexts[i]) for i in rows]
        )
        for i, output in zip(rows, outputs, strict=True):
            rewrites[i] = output
            done.setdefault(turns[i].dialog, {})[turns[i].index] = context_entry(
                turns[i].question, output
            )
    return rewrites, contexts


def context_entry(question: str, rewrite: str) -> str:
    """What a turn leaves in the context of later turns: its own rewrite, or its question
    where the rewrite ran away (longer than ``RUNAWAY_RATIO`` x the question's words +
    ``RUNAWAY_WORDS``: a search that looped, "fell thru thru thru ..."), so one loop
    cannot grow every later turn's source past what training saw."""
    if len(rewrite.split()) > RUNAWAY_RATIO * len(question.split()) + RUNAWAY_WORDS:
        return question
    return rewrite


def rewrite_turns(
    translator: Translator, turns: Sequence[Turn], options: CanardOptions
) -> tuple[list[str], list[tuple[str, ...]]]:
    """The top rewrite of every turn and its context, as the recipe's ``data.canard``
    says: the turns' own (earlier questions) in one batched search, or the model's
    earlier rewrites (``rewrite_dialogs``)."""
    if options.context == "rewrites":
        return rewrite_dialogs(translator, turns, options.context_turns)
    contexts = [t.context for t in turns]
    sources = [source_text("rewrite", t.question, t.context) for t in turns]
    return translator.translate(sources), contexts


def conversation(questions: Sequence[str], context_turns: int) -> list[Turn]:
    """One conversation's questions, oldest first, as turns of one dialog (each with its
    earlier questions as context)."""
    return [
        Turn(
            f"conversation_q#{k}",
            question,
            "",
            (),
            tuple(pick_context(list(questions[:k]), context_turns)),
            "conversation",
            k,
        )
        for k, question in enumerate(questions)
    ]
