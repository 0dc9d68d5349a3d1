"""The task interface and its registry: what differs between kinds of work.

The encoder-decoder, trainer and search are the same for every task. A task (one folder
under seq2seq/tasks/, registered by name with ``register_task``) says how a user's
prompt becomes a source, how an output is shown, which output grammar
``search.constrained`` follows, and how a split is scored. The base class is
translation's behaviour, which every task starts from.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, TypeVar

from seq2seq.config import ConfigError
from seq2seq.data.batching import IdArray
from seq2seq.data.dataset import load_corpus
from seq2seq.data.readers import Corpus, DataError
from seq2seq.evaluate import score, teacher_forced

if TYPE_CHECKING:
    from seq2seq.inference import Translator
    from seq2seq.search.constraint import Constraint


class Task:
    """The default behaviour every task starts from (translation's)."""

    name = "task"
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
        corpus = first_examples(load_corpus(translator.recipe, split), limit)
        assert corpus.tgt is not None
        result = score(translator.translate(list(corpus.src)), list(corpus.tgt))
        return {"bleu": result.bleu, "chrf": result.chrf, "sentences": result.sentences}


_TASKS: dict[str, Task] = {}

T = TypeVar("T", bound=type[Task])


def register_task(cls: T) -> T:
    """Class decorator: make a task known by its ``name`` (one instance serves all)."""
    if cls.name in _TASKS:
        raise ValueError(f"task {cls.name!r} is registered twice")
    _TASKS[cls.name] = cls()
    return cls


def get_task(name: str) -> Task:
    try:
        return _TASKS[name]
    except KeyError:
        known = ", ".join(sorted(_TASKS))
        raise ConfigError(f"task: no task named {name!r} (known: {known})") from None


def metrics_line(metrics: dict[str, Any]) -> str:
    return "  ".join(f"{k} = {v}" for k, v in metrics.items())


def metrics_json(metrics: dict[str, Any]) -> str:
    return json.dumps(metrics)


def first_examples(corpus: Corpus, limit: int) -> Corpus:
    if not limit or limit >= len(corpus):
        return corpus
    tgt = None if corpus.tgt is None else list(corpus.tgt[:limit])
    return Corpus(corpus.name, list(corpus.src[:limit]), tgt)


def teacher_forced_scores(translator: Translator, corpus: Corpus) -> Any:
    if corpus.tgt is None:
        raise DataError(f"split '{corpus.name}' has no targets to score")
    src = IdArray.from_lists(translator.src_tok.encode(list(corpus.src)))
    tgt = IdArray.from_lists(translator.tgt_tok.encode(list(corpus.tgt)))
    model = translator.model_in("fp32")  # metrics in full precision
    return teacher_forced(model, src, tgt, translator.device)
