"""Tasks: what differs between the kinds of work once a split is read.

The encoder-decoder, trainer and search are the same for every task; a split is read by
the reader ``data.format`` names (seq2seq/data/). A task says how a user's prompt becomes
a source, how an output is shown, and how a split is scored:

- translation: sacreBLEU BLEU and chrF of the recipe's search;
- text_generation: teacher-forced nats (and bits) per character of the target spans;
- music: teacher-forced token NLL and accuracy, and the validity rate of generated outputs;
- query_expansion: BLEU of the top rewrite, and recall of the reference key terms in the
  weighted bag of expansion terms (seq2seq/expansion.py).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from seq2seq.config import ConfigError
from seq2seq.data.batching import IdArray
from seq2seq.data.dataset import load_corpus
from seq2seq.data.readers import Corpus, DataError
from seq2seq.evaluate import score, teacher_forced

if TYPE_CHECKING:
    from seq2seq.inference import Translator
    from seq2seq.search.constraint import Constraint


class Task:
    """Translation: the default behaviour every task starts from."""

    name = "translation"
    verb = "translate"

    def source_from_prompt(self, translator: Translator, prompt: str) -> str:
        """The source text the model reads for a user's prompt."""
        return prompt

    def show(self, translator: Translator, source: str, output: str) -> str:
        """An output as a user sees it."""
        return output

    def constraint(self, translator: Translator) -> Constraint:
        """The output grammar ``search.constrained: true`` decodes with."""
        raise ConfigError(f"search.constrained: task {self.name} has no output grammar")

    def evaluate(self, translator: Translator, split: str, limit: int = 0) -> dict[str, Any]:
        corpus = _first(load_corpus(translator.recipe, split), limit)
        assert corpus.tgt is not None
        result = score(translator.translate(list(corpus.src)), list(corpus.tgt))
        return {"bleu": result.bleu, "chrf": result.chrf, "sentences": result.sentences}


class TextGeneration(Task):
    name = "text_generation"
    verb = "generate"

    def show(self, translator: Translator, source: str, output: str) -> str:
        return source + output

    def evaluate(self, translator: Translator, split: str, limit: int = 0) -> dict[str, Any]:
        corpus = _first(load_corpus(translator.recipe, split), limit)
        scores = _teacher_forced(translator, corpus)
        assert corpus.tgt is not None
        chars = sum(len(t) for t in corpus.tgt)
        nats = float(scores.nll.sum()) / max(chars, 1)
        nll, accuracy = scores.per_token(with_eos=False)
        return {
            "nats_per_char": round(nats, 4),
            "bits_per_char": round(nats / math.log(2), 4),
            "token_nll": round(nll, 4),
            "token_accuracy": round(accuracy, 4),
            "characters": chars,
            "windows": len(corpus),
        }


class QueryExpansion(Task):
    name = "query_expansion"
    verb = "rewrite"

    def source_from_prompt(self, translator: Translator, prompt: str) -> str:
        from seq2seq.data.canard import MODES, source_text

        if prompt.split(":", 1)[0] in MODES:  # already "rewrite: ..." or "terms: ..."
            return prompt
        question, _, context = prompt.partition("||")
        return source_text("rewrite", question, [c for c in context.split("|") if c.strip()])

    def evaluate(self, translator: Translator, split: str, limit: int = 0) -> dict[str, Any]:
        from seq2seq.data.canard import read_turns, source_text
        from seq2seq.expansion import expand, term_recall

        data = translator.recipe.data
        turns = read_turns(data.root, data.splits.get(split, split), data.context_turns)
        turns = turns[:limit] if limit else turns
        rewrites = translator.translate(
            [source_text("rewrite", t.question, t.context) for t in turns]
        )
        bleu = score(rewrites, [t.rewrite for t in turns])
        expansions = expand(translator, [(t.question, t.context) for t in turns], n=10)
        recalls = [term_recall(t.terms, e.terms) for t, e in zip(turns, expansions, strict=True)]
        at10 = [term_recall(t.terms, e.terms, k=10) for t, e in zip(turns, expansions, strict=True)]
        q_recall = [term_recall(t.terms, [(w, 1.0) for w in _words(t.question)]) for t in turns]
        return {
            "rewrite_bleu": bleu.bleu,
            "rewrite_chrf": bleu.chrf,
            "term_recall": round(float(np.nanmean(recalls)), 4),
            "term_recall_at_10": round(float(np.nanmean(at10)), 4),
            "query_term_recall": round(float(np.nanmean(q_recall)), 4),
            "mean_bag_size": round(float(np.mean([len(e.terms) for e in expansions])), 2),
            "queries": len(turns),
        }


class Music(Task):
    name = "music"
    verb = "generate"

    def source_from_prompt(self, translator: Translator, prompt: str) -> str:
        from seq2seq.data import music_io

        return music_io.source_from_prompt(translator.recipe.data, prompt)

    def constraint(self, translator: Translator) -> Constraint:
        if translator.recipe.data.format != "chorales":
            return super().constraint(translator)
        from seq2seq.data.music_grammar import HarmonyConstraint

        return HarmonyConstraint(translator.tgt_tok.vocabulary(), translator.src_tok.vocabulary())

    def show(self, translator: Translator, source: str, output: str) -> str:
        from seq2seq.data import abc

        if translator.recipe.data.format == "abc":  # the tune as ABC text
            return abc.to_abc(source, output).rstrip("\n")
        return output

    def evaluate(self, translator: Translator, split: str, limit: int = 0) -> dict[str, Any]:
        from seq2seq.data import music_io

        corpus = _first(load_corpus(translator.recipe, split), limit)
        scores = _teacher_forced(translator, corpus)
        nll, accuracy = scores.per_token(with_eos=True)
        outputs = translator.translate(list(corpus.src))
        checks = [
            music_io.check(translator.recipe.data, src, out)
            for src, out in zip(corpus.src, outputs, strict=True)
        ]
        assert corpus.tgt is not None
        reference = [
            music_io.check(translator.recipe.data, src, ref)
            for src, ref in zip(corpus.src, corpus.tgt, strict=True)
        ]
        return {
            "token_nll": round(nll, 4),
            "token_accuracy": round(accuracy, 4),
            "validity": round(sum(c.valid for c in checks) / max(len(checks), 1), 4),
            "reference_validity": round(
                sum(c.valid for c in reference) / max(len(reference), 1), 4
            ),
            "invalid_reasons": _reasons(checks),
            "constrained": translator.search.constrained,
            "pieces": len(corpus),
        }


TASKS: dict[str, Task] = {t.name: t for t in (Task(), TextGeneration(), QueryExpansion(), Music())}


def get_task(name: str) -> Task:
    return TASKS[name]


def metrics_line(metrics: dict[str, Any]) -> str:
    return "  ".join(f"{k} = {v}" for k, v in metrics.items())


def metrics_json(metrics: dict[str, Any]) -> str:
    return json.dumps(metrics)


def _first(corpus: Corpus, limit: int) -> Corpus:
    if not limit or limit >= len(corpus):
        return corpus
    tgt = None if corpus.tgt is None else list(corpus.tgt[:limit])
    return Corpus(corpus.name, list(corpus.src[:limit]), tgt)


def _teacher_forced(translator: Translator, corpus: Corpus) -> Any:
    if corpus.tgt is None:
        raise DataError(f"split '{corpus.name}' has no targets to score")
    src = IdArray.from_lists(translator.src_tok.encode(list(corpus.src)))
    tgt = IdArray.from_lists(translator.tgt_tok.encode(list(corpus.tgt)))
    model = translator.model_in("fp32")  # metrics in full precision
    return teacher_forced(model, src, tgt, translator.device)


def _words(text: str) -> list[str]:
    from seq2seq.expansion import content_words

    return content_words(text)


def _reasons(checks: Sequence[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for c in checks:
        if not c.valid:
            counts[c.reason] = counts.get(c.reason, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))
