"""``seq2seq translate``: a file (or stdin) to a file (or stdout), 1,000 lines at a time,
with per-line target prefixes (``--prefix``) and required phrases (``--constraints``)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seq2seq.config import ConfigError, parse_overrides
from seq2seq.data.files import output_file
from seq2seq.data.readers import DataError, iter_lines, take_lines

if TYPE_CHECKING:
    from seq2seq.inference import Translator
    from seq2seq.search import Hypothesis

CHUNK = 1000  # lines searched together: the output is written (and flushed) per chunk


def add_arguments(p: argparse.ArgumentParser) -> None:
    """translate's own arguments (the run arguments are added by the caller)."""
    p.add_argument("-i", "--input", help="input file (default: stdin)")
    p.add_argument("-o", "--output", help="output file (default: stdout)")
    p.add_argument(
        "--nbest",
        action="store_true",
        help="print search.nbest outputs per line: N<TAB>score<TAB>text",
    )
    p.add_argument(
        "--prefix",
        metavar="FILE",
        help="target prefixes, one per input line: each output starts with its line",
    )
    p.add_argument(
        "--constraints",
        metavar="FILE",
        help="required target phrases, one tab-separated list per input line (an empty "
        "line: none): each output contains every phrase of its line (beam search)",
    )
    p.add_argument(
        "--attention-png",
        metavar="DIR",
        help="also write an attention heat map per line, DIR/NNNNNN.png (needs matplotlib)",
    )


def load(args: argparse.Namespace) -> Translator:
    """The run directories and search overrides of ``args`` as a translator."""
    from seq2seq.tasks import load_translator

    search = parse_overrides(args.overrides, "search")
    return load_translator(args.run_dirs, args.checkpoint, search, args.device)


def run(args: argparse.Namespace) -> int:
    from seq2seq.visualize import attention_folder

    png_dir = attention_folder(args.attention_png) if args.attention_png else None
    sides = {"prefix": args.prefix, "constraints": args.constraints}
    with output_file(args.output, inputs=[args.input, *sides.values()]) as sink:
        translator = load(args)
        extra = {kind: iter_lines(path) for kind, path in sides.items() if path}
        done = 0
        for chunk in _chunks(iter_lines(args.input), CHUNK):
            given = {
                kind: take_lines(lines, len(chunk), sides[kind], kind, done)
                for kind, lines in extra.items()
            }
            required = None
            if "constraints" in given:
                required = phrase_lists(given["constraints"], args.constraints, done)
            try:
                results = translator.hypotheses(
                    chunk, bool(png_dir), given.get("prefix"), required=required
                )
            except ConfigError as err:  # a prefix or phrase too long: where it is
                raise DataError(f"input lines {done + 1}-{done + len(chunk)}: {err}") from err
            _write(translator, sink, chunk, results, done, args.nbest, png_dir)
            done += len(chunk)
        for kind, lines in extra.items():
            if next(lines, None) is not None:
                raise DataError(f"{sides[kind]}: more {kind} lines than the {done} input lines")
    return 0


def phrase_lists(lines: list[str], path: str, done: int = 0) -> list[list[str]]:
    """Per line, its tab-separated phrases (a blank line: none); an empty phrase between
    tabs is an error naming ``path`` and the line (``done`` lines came before)."""
    lists: list[list[str]] = []
    for number, line in enumerate(lines, start=done + 1):
        if not line.strip():
            lists.append([])
            continue
        phrases = [field.strip() for field in line.split("\t")]
        for column, phrase in enumerate(phrases, start=1):
            if not phrase:
                raise DataError(f"{path}:{number}: phrase {column} is empty (stray tab?)")
        lists.append(phrases)
    return lists


def _chunks(lines: Iterator[str], size: int) -> Iterator[list[str]]:
    while chunk := list(islice(lines, size)):
        yield chunk


def _write(
    translator: Translator,
    sink: Any,
    chunk: list[str],
    results: list[list[Hypothesis]],
    done: int,
    nbest: bool,
    png_dir: Path | None,
) -> None:
    """One chunk's outputs: the best per line, or with ``nbest`` every distinct output as
    N<TAB>score<TAB>text; then flushed."""
    from seq2seq.tasks.base import one_line

    for i, (line, hyps) in enumerate(zip(chunk, results, strict=True), start=done):
        outputs = translator.distinct(hyps)
        if nbest:
            sink.writelines(f"{i}\t{hyp.score:.4f}\t{one_line(text)}\n" for text, hyp in outputs)
        else:
            sink.write((one_line(outputs[0][0]) if outputs else "") + "\n")
        if png_dir and outputs:
            _attention_png(translator, png_dir / f"{i + 1:06d}.png", line, *outputs[0])
    sink.flush()


def _attention_png(
    translator: Translator, path: Path, line: str, text: str, hyp: Hypothesis
) -> None:
    from seq2seq.visualize import save_attention_png

    assert hyp.attention is not None
    src = translator.source_pieces(line)
    save_attention_png(path, src, translator.output_pieces(hyp), hyp.attention, title=text)
