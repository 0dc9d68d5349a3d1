"""Text generation: a context in, its continuation out (``stream`` makes long ones window
by window); scored as teacher-forced nats (and bits) per character of the target spans."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from seq2seq.data.dataset import load_corpus
from seq2seq.tasks.base import Task, first_examples, register_task, teacher_forced_scores

if TYPE_CHECKING:
    from seq2seq.inference import Translator


@register_task
class TextGeneration(Task):
    name = "text_generation"
    verb = "generate"

    def show(self, translator: Translator, source: str, output: str) -> str:
        return source + output

    def evaluate(self, translator: Translator, split: str, limit: int = 0) -> dict[str, Any]:
        corpus = first_examples(load_corpus(translator.recipe, split), limit)
        scores = teacher_forced_scores(translator, corpus)
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
