"""Query expansion: a conversational question (and earlier questions) in, self-contained
rewrites and a weighted bag of key terms out (``expansion``); scored as BLEU of the top
rewrite and recall of the reference key terms."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from seq2seq.evaluate import score
from seq2seq.tasks.base import Task, register_task

if TYPE_CHECKING:
    from seq2seq.inference import Translator


@register_task
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
        from seq2seq.tasks.query_expansion.expansion import expand, term_recall

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


def _words(text: str) -> list[str]:
    from seq2seq.tasks.query_expansion.expansion import content_words

    return content_words(text)
