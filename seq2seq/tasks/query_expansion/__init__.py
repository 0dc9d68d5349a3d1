"""Query expansion: a conversational question (and earlier turns) in, self-contained
rewrites and a weighted bag of key terms out (``expansion``); scored as BLEU of the top
rewrite and recall of the reference key terms."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from seq2seq.config import ConfigError, format_options, register_format
from seq2seq.evaluate import score
from seq2seq.tasks.base import Command, Evaluation, Metrics, Report, Task, register_task
from seq2seq.tasks.query_expansion.canard import (
    MODES,
    CanardOptions,
    read_canard,
    read_turns,
    source_text,
)

if TYPE_CHECKING:
    from seq2seq.inference import Translator


register_format("canard", CanardOptions, read_canard)

# rewrites per query from the beam and from sampling in ``evaluate``'s expansions (the
# ``expand`` command's default is 10): with 5, evaluating the whole CANARD dev split took
# 4.5 minutes instead of 7.4, key-term recall 0.311 instead of 0.318
EVALUATION_EXPANSIONS = 5


def _expand_arguments(p: argparse.ArgumentParser) -> None:
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--query", help="the (conversational) query")
    what.add_argument(
        "--dialog",
        metavar="FILE",
        help="a whole conversation, one question per line: each is rewritten in turn, "
        "its context the earlier questions or the model's own earlier rewrites (the "
        "recipe's data.canard.context)",
    )
    p.add_argument(
        "--context",
        nargs="*",
        default=[],
        help="with --query: earlier turns of the conversation, oldest first (as questions, "
        "or as rewrites when the recipe has data.canard.context: rewrites)",
    )
    p.add_argument("-n", type=int, default=10, help="rewrites from the beam and from sampling")
    p.add_argument("--json", action="store_true", help="print JSON")


def _check_expand(args: argparse.Namespace) -> None:
    if args.query is not None and not args.query.strip():
        raise ConfigError("--query is empty")
    if args.dialog is not None:
        args.questions = _read_dialog(args.dialog)
    if not 1 <= args.n <= 1000:
        raise ConfigError(f"-n must be between 1 and 1,000, got {args.n}")


def _read_dialog(path: str) -> list[str]:
    """The questions of a conversation file, one per line (blank lines at the end are
    ignored; one inside names its line)."""
    from seq2seq.data.readers import DataError, iter_lines

    if not Path(path).is_file():
        raise ConfigError(f"--dialog: {path}: no such file")
    try:
        questions = [" ".join(line.split()) for line in iter_lines(path)]
    except DataError as err:
        raise ConfigError(f"--dialog: {err}") from None
    while questions and not questions[-1]:
        questions.pop()
    if not questions:
        raise ConfigError(f"--dialog: {path} has no questions")
    if "" in questions:
        raise ConfigError(f"--dialog: {path}:{questions.index('') + 1}: empty line")
    return questions


def _expand(translator: Translator, args: argparse.Namespace) -> int:
    """``seq2seq expand RUN --query Q [--context ...] [-n N] [--json]``, or
    ``seq2seq expand RUN --dialog FILE [--json]``."""
    if args.dialog is not None:
        return _rewrite_dialog(translator, args.questions, args.json)
    from seq2seq.tasks.query_expansion.expansion import expand

    result = expand(translator, [(args.query, args.context)], n=args.n)[0]
    print(json.dumps(result.as_dict(), indent=2) if args.json else result.text())
    return 0


def _rewrite_dialog(translator: Translator, questions: list[str], as_json: bool) -> int:
    from seq2seq.tasks.query_expansion.dialog import conversation, rewrite_turns

    options = format_options(translator.recipe.data, CanardOptions)
    turns = conversation(questions, options.context_turns)
    rewrites, contexts = rewrite_turns(translator, turns, options)
    rows = [
        {"question": q, "context": list(c), "rewrite": r}
        for q, c, r in zip(questions, contexts, rewrites, strict=True)
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            print(f"{row['question']}\n  -> {row['rewrite']}")
    return 0


@register_task
class QueryExpansion(Task):
    name = "query_expansion"
    verb = "rewrite"
    commands = (
        Command(
            "expand",
            "query expansion: diverse rewrites and a weighted bag of terms",
            _expand_arguments,
            _expand,
            _check_expand,
        ),
    )

    def expand(
        self, translator: Translator, queries: list[tuple[str, list[str]]], n: int
    ) -> list[dict[str, Any]]:
        """expansion.py's rewrites and bag of terms, on a copy of ``translator`` (it
        changes the search while it runs)."""
        from seq2seq.tasks.query_expansion.expansion import expand

        return [e.as_dict() for e in expand(translator.with_search(), queries, n=n)]

    def source_from_prompt(self, translator: Translator, prompt: str) -> str:
        if prompt.split(":", 1)[0] in MODES:  # already "rewrite: ..." or "terms: ..."
            return prompt
        question, _, context = prompt.partition("||")
        return source_text("rewrite", question, [c for c in context.split("|") if c.strip()])

    def score_split(self, translator: Translator, request: Evaluation) -> Report:
        from seq2seq.tasks.query_expansion.dialog import rewrite_turns
        from seq2seq.tasks.query_expansion.expansion import expand, term_recall

        self.refuse_hyp_out(request)
        assert request.split is not None
        data, split, limit = translator.recipe.data, request.split, request.limit
        options = format_options(data, CanardOptions)
        turns = read_turns(data.root, data.splits.get(split, split), options.context_turns)
        turns = turns[:limit] if limit else turns
        rewrites, contexts = rewrite_turns(translator, turns, options)
        references = [t.rewrite for t in turns]
        bleu = score(rewrites, references)
        copy = score([t.question for t in turns], references)  # the baseline: no rewrite
        expansions = expand(
            translator,
            [(t.question, c) for t, c in zip(turns, contexts, strict=True)],
            n=EVALUATION_EXPANSIONS,
        )
        recalls = [term_recall(t.terms, e.terms) for t, e in zip(turns, expansions, strict=True)]
        at10 = [term_recall(t.terms, e.terms, k=10) for t, e in zip(turns, expansions, strict=True)]
        q_recall = [term_recall(t.terms, [(w, 1.0) for w in _words(t.question)]) for t in turns]
        return Metrics(
            {
                "rewrite_bleu": bleu.bleu,
                "rewrite_chrf": bleu.chrf,
                "question_bleu": copy.bleu,
                "question_chrf": copy.chrf,
                "term_recall": round(float(np.nanmean(recalls)), 4),
                "term_recall_at_10": round(float(np.nanmean(at10)), 4),
                "query_term_recall": round(float(np.nanmean(q_recall)), 4),
                "mean_bag_size": round(float(np.mean([len(e.terms) for e in expansions])), 2),
                "queries": len(turns),
            }
        )


def _words(text: str) -> list[str]:
    from seq2seq.tasks.query_expansion.expansion import content_words

    return content_words(text)
