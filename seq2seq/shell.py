"""``seq2seq shell RUN_DIR``: type a line, get its output; ``:commands`` change the search.

On a terminal it has a prompt, readline editing and history, and prints the score and
time of each output. With stdin not a terminal it reads lines and writes outputs (one
line each, or ``N<TAB>score<TAB>text`` lines with n-best), so it can sit in a pipe;
commands still work there, and what they show goes to stdout, their acknowledgements to
stderr.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO, TypeVar

from seq2seq.config import ConfigError, parse_overrides, single_line
from seq2seq.data.readers import DataError, iter_lines_reporting
from seq2seq.inference import Translator
from seq2seq.search import Hypothesis
from seq2seq.tasks import Task, get_task, load_translator
from seq2seq.visualize import attention_text

T = TypeVar("T")
PROMPT = "> "
HISTORY_FILE = Path(os.environ.get("SEQ2SEQ_HISTORY", "~/.seq2seq_history")).expanduser()


@dataclass
class _Last:
    """The last request: its line and its outputs."""

    line: str
    outputs: list[tuple[str, Hypothesis]]


class ShellError(Exception):
    """A bad command or argument: shown as one line, the session goes on."""


class Shell:
    def __init__(
        self,
        translator: Translator,
        out: TextIO | None = None,
        err: TextIO | None = None,
        interactive: bool = False,
        width: int = 80,
    ) -> None:
        self.translator = translator
        self.out = out or sys.stdout  # looked up now: tests and callers may swap them
        self.err = err or sys.stderr
        self.interactive = interactive
        self.width = width
        self.prefix = ""
        self.required: list[str] = []  # phrases every output must contain (:require)
        self.last: _Last | None = None
        self.requests = 0
        self.commands: dict[str, tuple[Callable[[str], None], str]] = {
            "beam": (self._beam, ":beam N         beam size (1 = greedy)"),
            "nbest": (self._nbest, ":nbest N        outputs per line"),
            "sample": (self._sample, ":sample on|off  draw outputs instead of searching"),
            "temp": (self._setter("temperature", float), ":temp X         sampling temperature"),
            "topk": (
                self._setter("top_k", int),
                ":topk K         sample from the K best (0 = all)",
            ),
            "topp": (
                self._setter("top_p", float),
                ":topp P         nucleus sampling mass (1 = off)",
            ),
            "lenpen": (
                self._setter("length_penalty", float),
                ":lenpen A       GNMT length penalty alpha",
            ),
            "maxlen": (self._maxlen, ":maxlen N|auto  at most N output tokens (auto: a*src+b)"),
            "seed": (self._seed, ":seed N|off     sampling seed (reproducible draws)"),
            "prefix": (self._prefix, ":prefix TEXT|off  outputs must start with TEXT"),
            "require": (
                self._require,
                ":require PHRASE|off  outputs must contain PHRASE (again: one more)",
            ),
            "attn": (self._attn, ":attn           attention heat map of the last output"),
            "scores": (self._scores, ":scores         per-token log-probs of the last output"),
            "set": (self._set, ":set [key=value ...]  show or change any search.* setting"),
            "help": (self._help, ":help           this list"),
            "quit": (self._quit, ":quit           leave (Ctrl-D too)"),
        }
        self.aliases = {"q": "quit", "exit": "quit", "h": "help", "?": "help"}
        self._running = True
        self._initial = asdict(translator.search)  # what ``:maxlen auto`` goes back to

    # ---- the loop ------------------------------------------------------------------
    def run(self, lines: Iterable[str | DataError] | None = None) -> None:
        """Serve ``lines`` (default: the terminal with a prompt, or stdin) until the end,
        ``:quit`` or Ctrl-D."""
        if lines is None:
            lines = self._terminal_lines() if self.interactive else iter_lines_reporting(None)
        if self.interactive:
            self._show(f"seq2seq shell: type a line to {self._verb()}; :help lists the commands")
        for raw in lines:
            if isinstance(raw, DataError):  # a line that is not text: say so, go on
                self._error(str(raw))
                self._show("")  # its output line, so outputs stay aligned with inputs
                continue
            self.handle(raw.rstrip("\r\n"))
            if not self._running:
                break

    def handle(self, line: str) -> None:
        """One line: a ``:command``, a request, or nothing (blank: in a pipe, an empty
        output line, as ``translate`` gives)."""
        if not line.strip():
            if not self.interactive:
                self._show("")
            return
        try:
            if line.lstrip().startswith(":"):
                self._command(line.strip()[1:])
            else:
                self._request(line)
        except (ShellError, ConfigError, DataError) as err:
            self._error(str(err))
        except KeyboardInterrupt:  # Ctrl-C cancels this request; in a pipe it stops
            if not self.interactive:
                raise
            self._error("cancelled")

    def _terminal_lines(self) -> Iterable[str | DataError]:
        _setup_readline()
        while True:
            try:
                yield input(PROMPT)
            except KeyboardInterrupt:  # Ctrl-C at the prompt: a fresh prompt, like Python's
                print(file=self.out)
            except UnicodeDecodeError:  # the terminal sent bytes that are not UTF-8
                self._error("the line is not UTF-8 text; type it again")
            except EOFError:  # Ctrl-D
                print(file=self.out)
                return

    # ---- requests ------------------------------------------------------------------
    def _request(self, line: str) -> None:
        tr = self.translator
        start = time.perf_counter()
        prefixes = [self.prefix] if self.prefix else None
        required = [self.required] if self.required else None
        source = self.task.source_from_prompt(tr, line)
        hyps = tr.hypotheses(
            [source], return_attention=True, prefixes=prefixes, truncate=True, required=required
        )[0]
        elapsed = time.perf_counter() - start
        outputs = [(self.task.show(tr, source, text), hyp) for text, hyp in tr.distinct(hyps)]
        self.last = _Last(source, outputs)
        index, self.requests = self.requests, self.requests + 1
        if not self.interactive:
            if tr.search.nbest == 1:
                self._show(outputs[0][0] if outputs else "")
            else:
                for text, hyp in outputs:
                    self._show(f"{index}\t{hyp.score:.4f}\t{text}")
            self.out.flush()
            return
        if len(outputs) == 1:
            text, hyp = outputs[0]
            self._show(text)
            self._show(f"  [{_describe(hyp)} | {elapsed * 1000:.0f} ms]")
            return
        for rank, (text, hyp) in enumerate(outputs, start=1):
            self._show(f"{rank:>2}. {text}")
            self._show(f"    [{_describe(hyp)}]")
        self._show(f"  [{len(outputs)} distinct outputs | {elapsed * 1000:.0f} ms]")

    @property
    def task(self) -> Task:
        return get_task(self.translator.recipe.task)

    def _verb(self) -> str:
        return self.task.verb

    # ---- commands ------------------------------------------------------------------
    def _command(self, text: str) -> None:
        name, _, arg = text.partition(" ")
        name = self.aliases.get(name.lower(), name.lower())
        if name not in self.commands:
            raise ShellError(f"unknown command ':{name}'; :help lists the commands")
        self.commands[name][0](arg.strip())

    def _configure(self, **changes: object) -> None:
        self.translator.configure(**changes)
        self._ack(", ".join(f"{k}={_shown(v)}" for k, v in changes.items()))

    def _setter(self, key: str, kind: Callable[[str], object]) -> Callable[[str], None]:
        def set_value(arg: str) -> None:
            self._configure(**{key: _parse(arg, kind, key)})

        return set_value

    def _beam(self, arg: str) -> None:
        size = _parse(arg, int, "beam size")
        search = self.translator.search
        if not search.sampling and search.nbest > size:
            self._configure(beam_size=size, nbest=size)
        else:
            self._configure(beam_size=size)

    def _nbest(self, arg: str) -> None:
        n = _parse(arg, int, "n-best")
        search = self.translator.search
        if not search.sampling and n > search.beam_size:
            self._configure(nbest=n, beam_size=n)
        else:
            self._configure(nbest=n)

    def _sample(self, arg: str) -> None:
        if arg.lower() not in ("on", "off"):
            raise ShellError(":sample takes on or off")
        on = arg.lower() == "on"
        search = self.translator.search
        if not on and search.nbest > search.beam_size:
            self._configure(sampling=False, beam_size=search.nbest)
        else:
            self._configure(sampling=on)

    def _maxlen(self, arg: str) -> None:
        if arg.lower() == "auto":
            self._configure(
                max_len_a=self._initial["max_len_a"], max_len_b=self._initial["max_len_b"]
            )
            return
        n = _parse(arg, int, "max length")
        if n < 1:
            raise ShellError(":maxlen needs a positive number of tokens")
        self._configure(max_len_a=0.0, max_len_b=n)

    def _seed(self, arg: str) -> None:
        if arg.lower() == "off":
            self._configure(seed=None)
        else:
            self._configure(seed=_parse(arg, int, "seed"))

    def _prefix(self, arg: str) -> None:
        if not arg:
            raise ShellError(":prefix takes the text outputs must start with, or off")
        self.prefix = "" if arg.lower() == "off" else arg
        self._ack(f"prefix = {self.prefix!r}" if self.prefix else "prefix off")

    def _require(self, arg: str) -> None:
        if not arg:
            raise ShellError(":require takes a phrase every output must contain, or off")
        if arg.lower() == "off":
            self.required = []
            self._ack("required phrases off")
            return
        self.required = [*self.required, arg]
        self._ack("required: " + " | ".join(self.required))

    def _attn(self, arg: str) -> None:
        text, hyp = self._last_output()
        if hyp.attention is None:
            raise ShellError("the last output has no attention")
        self._show(f"attention for: {text}")
        self._show(
            attention_text(
                self.translator.source_pieces(self.last.line, truncate=True) if self.last else [],
                self.translator.output_pieces(hyp),
                hyp.attention,
                self.width,
            )
        )

    def _scores(self, arg: str) -> None:
        text, hyp = self._last_output()
        pieces = self.translator.output_pieces(hyp)
        self._show(f"per-token log-probs for: {text}")
        for piece, score in zip(pieces, hyp.token_scores, strict=True):
            self._show(f"  {score:8.3f}  {piece}")
        self._show(f"  {hyp.log_prob:8.3f}  total ({_describe(hyp)})")

    def _set(self, arg: str) -> None:
        if arg:  # typed text: key=value words, values read as in a recipe
            self._configure(**parse_overrides(arg.split(), "search"))
            return
        for key, value in asdict(self.translator.search).items():
            self._show(f"  {key:<16} {value}")
        self._show(f"  {'prefix':<16} {self.prefix!r}")
        self._show(f"  {'require':<16} {' | '.join(self.required) or '(none)'}")

    def _help(self, arg: str) -> None:
        self._show(f"type a line to {self._verb()} it; blank lines are ignored")
        for _, text in self.commands.values():
            self._show("  " + text)

    def _quit(self, arg: str) -> None:
        self._running = False

    def _last_output(self) -> tuple[str, Hypothesis]:
        if self.last is None or not self.last.outputs:
            raise ShellError(f"nothing to show yet: {self._verb()} a line first")
        return self.last.outputs[0]

    # ---- output --------------------------------------------------------------------
    def _show(self, text: str) -> None:
        print(text, file=self.out)

    def _ack(self, text: str) -> None:
        print(text, file=self.out if self.interactive else self.err)

    def _error(self, text: str) -> None:
        print(f"error: {single_line(text, 300)}", file=self.err)  # whatever was typed


def _parse(arg: str, kind: Callable[[str], T], what: str) -> T:
    try:
        return kind(arg)
    except ValueError:
        raise ShellError(
            f"{what}: expected {getattr(kind, '__name__', 'a value')}, got {arg!r}"
        ) from None


def _shown(value: object) -> str:
    """A setting as typed back to the user: YAML's spelling (true, null)."""
    if value is None:
        return "null"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _describe(hyp: Hypothesis) -> str:
    return f"score {hyp.score:.3f} | log-prob {hyp.log_prob:.2f} | {len(hyp.tokens)} tokens"


def _setup_readline() -> None:
    """Line editing and a persistent history where readline exists (not on Windows)."""
    try:
        import atexit
        import readline
    except ImportError:
        return
    with contextlib.suppress(OSError):
        readline.read_history_file(HISTORY_FILE)
    readline.set_history_length(1000)

    def save() -> None:
        with contextlib.suppress(OSError):
            readline.write_history_file(HISTORY_FILE)

    atexit.register(save)


def run_shell(
    run_dirs: list[str], which: str, search: dict[str, object], device: str | None
) -> None:
    translator = load_translator(run_dirs, which, search, device)
    if not get_task(translator.recipe.task).whole_in_one_search(translator):
        raise ConfigError(
            f"shell: {run_dirs[0]} builds each output from several searches (a chorale "
            "bar by bar), which the shell's n-best and attention views cannot show; "
            "use seq2seq generate RUN --prompt TEXT"
        )
    Shell(translator, interactive=sys.stdin.isatty()).run()
