"""Query expansion: a conversational question (and earlier questions) in, self-contained
rewrites and a weighted bag of key terms out (``expansion``); scored as BLEU of the top
rewrite and recall of the reference key terms."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from seq2seq.evaluate import score
from seq2seq.tasks.base import Evaluation, Metrics, Report, Task, register_task

if TYPE_CHECKING:
    from seq2seq.inference import Translator


@register_task
class QueryExpansion(Task):
    name = "query_expansion"
    verb = "rewrite"
    commands = ("expand",)

    def source_from_prompt(self, translator: Translator, prompt: str) -> str:
        from seq2seq.data.canard import MODES, source_text

        if prompt.split(":", 1)[0] in MODES:  # already "rewrite: ..." or "terms: ..."
            return prompt
        question, _, context = prompt.partition("||")
        return source_text("rewrite", question, [c for c in context.split("|") if c.strip()])

    def score_split(self, translator: Translator, request: Evaluation) -> Report:
        from seq2seq.data.canard import read_turns, source_text
        from seq2seq.tasks.query_expansion.expansion import expand, term_recall

        self.refuse_hyp_out(request)
        assert request.split is not None
        data, split, limit = translator.recipe.data, request.split, request.limit
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
        return Metrics(
            {
                "rewrite_bleu": bleu.bleu,
                "rewrite_chrf": bleu.chrf,
                "term_recall": round(float(np.nanmean(recalls)), 4),
                "term_recall_at_10": round(float(np.nanmean(at10)), 4),
                "query_term_recall": round(float(np.nanmean(q_recall)), 4),
                "mean_bag_size": round(float(np.mean([len(e.terms) for e in expansions])), 2),
                "queries": len(turns),
            }
        )

    def command(self, name: str) -> Callable[..., Any]:
        """``expand``: rewrites from the beam and from sampling, and a weighted bag of
        terms, for (query, earlier questions) pairs (see ``expansion.expand``)."""
        if name != "expand":
            return super().command(name)
        from seq2seq.tasks.query_expansion.expansion import expand

        return expand


def _words(text: str) -> list[str]:
    from seq2seq.tasks.query_expansion.expansion import content_words

    return content_words(text)
