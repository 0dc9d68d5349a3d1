"""The task interface and its registry: what differs between kinds of work.

The encoder-decoder, trainer and search are the same for every task. A task (one folder
under seq2seq/tasks/, registered by name with ``register_task``) says how a user's
prompt becomes a source, how an output is shown, which output grammar
``search.constrained`` follows, and how a split is scored. The base class is
translation's behaviour, which every task starts from.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from seq2seq.config import ConfigError, check_task, register_task_name
from seq2seq.data.batching import IdArray
from seq2seq.data.dataset import load_corpus
from seq2seq.data.files import output_file
from seq2seq.data.readers import Corpus, DataError, read_parallel_text
from seq2seq.evaluate import score, teacher_forced

if TYPE_CHECKING:
    from seq2seq.inference import Translator
    from seq2seq.search.constraint import Constraint


class Task:
    """The default behaviour every task starts from (translation's)."""

    name = "task"
    verb = "translate"
    commands: tuple[Command, ...] = ()  # verbs of its own: ``seq2seq NAME RUN ...``
    # how the server's /v1/generate answers: "" not at all (use /v1/translate), "stream"
    # with server-sent events from ``stream``, "documents" with JSON from ``documents``
    generates = ""
    draws = False  # evaluate --pictures DIR draws each output and its reference

    def source_from_prompt(self, translator: Translator, prompt: str) -> str:
        """The source text the model reads for a user's prompt."""
        return prompt

    def show(self, translator: Translator, source: str, output: str) -> str:
        """An output as a user sees it."""
        return output

    def outputs(self, translator: Translator, sources: list[str]) -> list[str]:
        """The output of each whole source: one search each, batched (a bar-by-bar
        harmoniser searches each of a source's bars, see ``whole_in_one_search``)."""
        return translator.translate(sources)

    def whole_in_one_search(self, translator: Translator) -> bool:
        """Whether one search of a source gives its whole output, so that its n-best
        list and attention mean something (the shell shows them); False where
        ``outputs`` assembles an output from several searches."""
        return True

    def constraint(self, translator: Translator) -> Constraint:
        """The output grammar ``search.constrained: true`` decodes with."""
        raise ConfigError(f"search.constrained: task {self.name} has no output grammar")

    def expand(
        self, translator: Translator, queries: list[tuple[str, list[str]]], n: int
    ) -> list[dict[str, Any]]:
        """Rewrites and weighted terms per (query, earlier turns), as JSON objects
        (query expansion), for the server's /v1/expand; other tasks have none."""
        raise ConfigError(f"task {self.name} does not expand queries; translate instead")

    def stream(self, translator: Translator, prompt: str, max_tokens: int) -> Iterator[str]:
        """The output for ``prompt`` in pieces as they are made (text generation), for
        the server's streamed endpoint; other tasks give whole outputs only."""
        raise ConfigError(f"task {self.name} does not stream its outputs; translate instead")

    def documents(self, translator: Translator, source: str, output: str) -> dict[str, Any]:
        """An output as files a client keeps (music: the ABC or MusicXML text and the MIDI
        file in base64, with its validity), for the server's /v1/generate."""
        raise ConfigError(f"task {self.name} writes no files of its outputs; translate instead")

    def evaluate(self, translator: Translator, request: Evaluation) -> Report:
        """Score a split (``score_split``, the task's own metrics) or a pair of files
        (sacreBLEU BLEU and chrF of the recipe's search, for every task)."""
        if request.pictures and not (self.draws and request.split):
            raise ConfigError(
                f"--pictures: task {self.name} draws no pictures"
                if not self.draws
                else "--pictures goes with --split"
            )
        if request.split:
            return self.score_split(translator, request)
        assert request.src is not None and request.ref is not None
        files = read_parallel_text(Path(request.src), Path(request.ref), "files")
        return self._bleu(translator, first_examples(files, request.limit), request)

    def score_split(self, translator: Translator, request: Evaluation) -> Report:
        """A split's sacreBLEU BLEU and chrF; ``request.hyp_out`` also gets the outputs."""
        assert request.split is not None
        corpus = load_corpus(translator.recipe, request.split)
        return self._bleu(translator, first_examples(corpus, request.limit), request)

    def _bleu(self, translator: Translator, corpus: Corpus, request: Evaluation) -> Report:
        assert corpus.tgt is not None
        hypotheses = translator.translate(list(corpus.src))
        if request.hyp_out:
            with output_file(request.hyp_out, inputs=[request.src, request.ref]) as handle:
                handle.writelines(one_line(h) + "\n" for h in hypotheses)
        return score(hypotheses, list(corpus.tgt))

    def refuse_hyp_out(self, request: Evaluation) -> None:
        """For tasks whose split scores are not outputs to write."""
        if request.hyp_out:
            raise ConfigError(f"--hyp-out: task {self.name} writes no outputs when scoring a split")

    def generate(self, translator: Translator, request: Generation) -> None:
        """One output per prompt line (a blank prompt gives an empty line), newlines and
        backslashes escaped, into ``request.output`` (stdout when None)."""
        if request.split:
            raise ConfigError(
                f"generate --split: task {self.name} generates from prompts; "
                "give --prompt or -i FILE"
            )
        assert request.prompts is not None
        with output_file(request.output, inputs=request.inputs) as sink:
            for output in self.continuations(translator, request.prompts, request.max_len):
                sink.write(output.replace("\\", "\\\\").replace("\n", "\\n") + "\n")

    def continuations(
        self, translator: Translator, prompts: list[str], max_len: int | None
    ) -> list[str]:
        """An output per prompt, searched in batches; a blank prompt gives ""."""
        given = [i for i, p in enumerate(prompts) if p.strip()]
        outputs = [""] * len(prompts)
        search = translator.with_search(max_len_a=0.0, max_len_b=max_len) if max_len else translator
        sources = [self.source_from_prompt(search, prompts[i]) for i in given]
        for i, output in zip(given, search.translate(sources), strict=True):
            outputs[i] = output
        return outputs

    def command(self, name: str) -> Command:
        """The verb ``name`` of this task's own; an error naming the tasks that have it."""
        for command in self.commands:
            if command.name == name:
                return command
        having = [t.name for t in _TASKS.values() if any(c.name == name for c in t.commands)]
        raise ConfigError(
            f"'{name}' is not a command of task {self.name}"
            + (f" (it is one of: {', '.join(having)})" if having else "")
        )


@dataclass(frozen=True)
class Command:
    """A verb of a task's own, ``seq2seq NAME RUN [RUN ...] [options] [search.key=value]``:
    the CLI gives it the run arguments and a parser for its options (``add_arguments``),
    checks the options (``check``: before the run loads, so that a typo costs nothing),
    loads the run, checks the run's task has this verb, then calls ``run``, whose result
    is the exit status."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[Translator, argparse.Namespace], int]
    check: Callable[[argparse.Namespace], None] = lambda args: None


def task_commands() -> list[Command]:
    """The verbs of every registered task (the first of each name), for the CLI."""
    found: dict[str, Command] = {}
    for task in _TASKS.values():
        for command in task.commands:
            found.setdefault(command.name, command)
    return list(found.values())


@dataclass(frozen=True)
class Evaluation:
    """What ``seq2seq evaluate`` asks: a split (its first ``limit`` examples, 0 = all),
    or source and reference files; ``hyp_out``: also write the outputs there;
    ``pictures``: a folder for pictures of outputs and references (music)."""

    split: str | None = None
    src: str | None = None
    ref: str | None = None
    limit: int = 0
    hyp_out: str | None = None
    pictures: str | None = None


@dataclass(frozen=True)
class Generation:
    """What ``seq2seq generate`` asks: outputs for ``prompts`` (one per line of input;
    ``stream``: a single prompt, written as it is made) or for a split's first ``count``
    sources (0 = all), into ``output`` (a file, or a folder for music; None = stdout)."""

    prompts: list[str] | None = None
    split: str | None = None
    count: int = 0
    output: str | None = None
    max_len: int | None = None
    stream: bool = False
    inputs: tuple[str | None, ...] = ()  # files read: never the output


class Report(Protocol):
    """A task's scores: one line for people (may span a few), or one JSON object."""

    def line(self) -> str: ...

    def json(self) -> str: ...


@dataclass(frozen=True)
class Metrics:
    """Named numbers as a ``Report``: ``key = value`` pairs, or a JSON object."""

    values: dict[str, Any]

    def line(self) -> str:
        return "  ".join(f"{k} = {v}" for k, v in self.values.items())

    def json(self) -> str:
        return json.dumps(self.values)


def one_line(text: str) -> str:
    """An output as one line: a line break inside it (a model can emit one) is a space,
    so that input line i always gives output line i."""
    return text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")


_TASKS: dict[str, Task] = {}

T = TypeVar("T", bound=type[Task])


def register_task(cls: T) -> T:
    """Class decorator: make a task known by its ``name`` (one instance serves all)."""
    if cls.name in _TASKS:
        raise ValueError(f"task {cls.name!r} is registered twice")
    _TASKS[cls.name] = cls()
    register_task_name(cls.name)
    return cls


def get_task(name: str) -> Task:
    check_task(name)  # finds installed plugins
    try:
        return _TASKS[name]
    except KeyError:
        known = ", ".join(sorted(_TASKS))
        raise ConfigError(f"task: no task named {name!r} (known: {known})") from None


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
