"""The models a server holds: each a name, a translator (one run or an ensemble) and its
task, with the decode function the batcher calls for a batch of texts."""

from __future__ import annotations

import threading
from collections.abc import Hashable
from dataclasses import asdict, dataclass
from typing import Any

from seq2seq.config import ConfigError
from seq2seq.inference import Translator
from seq2seq.search import Hypothesis
from seq2seq.tasks import Task


@dataclass
class Served:
    name: str
    translator: Translator
    task: Task

    def summary(self) -> dict[str, Any]:
        """GET /v1/models: what a client needs to pick a model and set its search."""
        recipe = self.translator.recipe
        return {
            "name": self.name,
            "task": recipe.task,
            "source_language": recipe.data.src_lang,
            "target_language": recipe.data.tgt_lang,
            "search": asdict(self.translator.search),
            "model": {
                "embedding": recipe.model.emb_dim,
                "encoder": asdict(recipe.model.encoder),
                "decoder": asdict(recipe.model.decoder),
            },
        }


Item = tuple[str, tuple[str, ...]]  # a text and the target phrases its outputs must hold


@dataclass(frozen=True)
class Key:
    """What must agree for requests to share a batch."""

    model: str
    search: tuple[tuple[str, Any], ...]  # the request's search changes, sorted
    scores: bool
    attention: bool


class Registry:
    """The served models by name, and the decode function for the batcher."""

    def __init__(self, models: dict[str, Served]) -> None:
        if not models:
            raise ConfigError("serve: give at least one run directory")
        self.models = models
        self.default = next(iter(models))
        self._variants: dict[tuple[str, tuple[tuple[str, Any], ...]], Translator] = {}
        self._lock = threading.Lock()

    def get(self, name: str | None) -> Served:
        served = self.models.get(name or self.default)
        if served is None:
            raise KeyError(name)
        return served

    def translator(self, model: str, search: tuple[tuple[str, Any], ...]) -> Translator:
        """The model's translator with these search changes (checked; kept for reuse)."""
        with self._lock:
            key = (model, search)
            if key not in self._variants:
                if len(self._variants) > 256:  # many distinct settings: start over
                    self._variants.clear()
                base = self.models[model].translator
                self._variants[key] = base.with_search(**dict(search)) if search else base
            return self._variants[key]

    def decode(self, key: Hashable, items: list[Item]) -> list[list[dict[str, Any]]]:
        """One batch (runs in the batcher's thread): per (text, required phrases), the
        text's distinct outputs."""
        assert isinstance(key, Key)
        served = self.models[key.model]
        translator = self.translator(key.model, key.search)
        sources = [served.task.source_from_prompt(translator, text) for text, _ in items]
        phrases = [list(required) for _, required in items]
        results = translator.hypotheses(
            sources, return_attention=key.attention, required=phrases if any(phrases) else None
        )
        return [
            [
                self._output(served, translator, source, text, hyp, key)
                for text, hyp in translator.distinct(hyps)
            ]
            for source, hyps in zip(sources, results, strict=True)
        ]

    @staticmethod
    def _output(
        served: Served, translator: Translator, source: str, text: str, hyp: Hypothesis, key: Key
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "text": served.task.show(translator, source, text),
            "score": _finite(hyp.score),
            "tokens": len(hyp.tokens),
        }
        if key.scores:
            out["pieces"] = translator.output_pieces(hyp)
            out["token_log_probs"] = [_finite(s) for s in hyp.token_scores]
        if key.attention and hyp.attention is not None:
            out["source_pieces"] = translator.source_pieces(source)
            out["attention"] = [[round(float(a), 4) for a in row] for row in hyp.attention]
        return out


def _finite(value: float) -> float | None:
    """JSON has no infinity: an output that missed a constraint scores null."""
    return round(float(value), 5) if value == value and abs(value) != float("inf") else None
