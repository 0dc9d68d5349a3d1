"""Text generation: a context in, its continuation out (``stream`` makes long ones window
by window); scored as teacher-forced nats (and bits) per character of the target spans."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

from seq2seq.config import register_format
from seq2seq.data.dataset import load_corpus
from seq2seq.data.files import output_file
from seq2seq.tasks.base import (
    Evaluation,
    Generation,
    Metrics,
    Report,
    Task,
    first_examples,
    register_task,
    teacher_forced_scores,
)
from seq2seq.tasks.text_generation.stream import stream
from seq2seq.tasks.text_generation.windows import WindowOptions, read_windows

if TYPE_CHECKING:
    from seq2seq.inference import Translator


register_format("windows", WindowOptions, read_windows)


@register_task
class TextGeneration(Task):
    name = "text_generation"
    verb = "generate"
    generates = "stream"

    def show(self, translator: Translator, source: str, output: str) -> str:
        return source + output

    def score_split(self, translator: Translator, request: Evaluation) -> Report:
        self.refuse_hyp_out(request)
        assert request.split is not None
        corpus = first_examples(load_corpus(translator.recipe, request.split), request.limit)
        scores = teacher_forced_scores(translator, corpus)
        assert corpus.tgt is not None
        chars = sum(len(t) for t in corpus.tgt)
        nats = float(scores.nll.sum()) / max(chars, 1)
        nll, accuracy = scores.per_token(with_eos=False)
        return Metrics(
            {
                "nats_per_char": round(nats, 4),
                "bits_per_char": round(nats / math.log(2), 4),
                "token_nll": round(nll, 4),
                "token_accuracy": round(accuracy, 4),
                "characters": chars,
                "windows": len(corpus),
            }
        )

    def generate(self, translator: Translator, request: Generation) -> None:
        """A single prompt streams its continuation as it is made; else as any task."""
        if not request.stream:
            super().generate(translator, request)
            return
        assert request.prompts is not None
        (prompt,) = request.prompts
        with output_file(request.output, inputs=request.inputs) as sink:
            sink.write(prompt)
            for piece in stream(translator, prompt, self._limit(translator, request.max_len)):
                sink.write(piece)
                sink.flush()
            sink.write("\n")

    def stream(self, translator: Translator, prompt: str, max_tokens: int) -> Iterator[str]:
        """The continuation of ``prompt``, piece by piece, over windows (stream.py)."""
        return stream(translator, prompt, max_tokens)

    def continuations(
        self, translator: Translator, prompts: list[str], max_len: int | None
    ) -> list[str]:
        """Each prompt continued window by window to ``max_len`` tokens in all."""
        limit = self._limit(translator, max_len)
        return ["".join(stream(translator, p, limit)) if p.strip() else "" for p in prompts]

    @staticmethod
    def _limit(translator: Translator, max_len: int | None) -> int:
        return max_len or int(translator.search.max_len_b)
