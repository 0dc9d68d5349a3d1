"""The ``seq2seq`` command: parses arguments and overrides, calls the package; no ML here."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seq2seq import translate_file
from seq2seq.checkpoint import CheckpointError
from seq2seq.cli_deploy import DEPLOY_COMMANDS, run_arguments
from seq2seq.config import (
    ConfigError,
    dump_recipe,
    load_recipe,
    parse_overrides,
    single_line,
    with_data,
)
from seq2seq.data.files import check_output_path
from seq2seq.data.readers import DataError, iter_lines
from seq2seq.runtime import tune_allocator, tune_onednn
from seq2seq.training.faults import TrainingError, TrainingInterrupted

if TYPE_CHECKING:
    pass

log = logging.getLogger("seq2seq")

_EXPECTED_ERRORS = (ConfigError, DataError, CheckpointError, TrainingError, FileNotFoundError)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    # key=value overrides may come after options (``translate RUN -q beam_size=1``)
    args, extra = parser.parse_known_args(argv)
    stray = [x for x in extra if x.startswith("-") or "=" not in x]
    if stray or (extra and not hasattr(args, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(stray or extra)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    if hasattr(args, "targets"):  # RUN_DIR... key=value...: split runs from overrides
        args.run_dirs = [t for t in args.targets if "=" not in t or Path(t).is_dir()]
        args.overrides = [*[t for t in args.targets if t not in args.run_dirs], *args.overrides]
        if not args.run_dirs:
            parser.error("give at least one run directory")
        if args.quantize:
            args.overrides.append(f"search.precision={args.quantize}")
    tune_allocator()
    tune_onednn()
    level = logging.WARNING if getattr(args, "quiet", False) else logging.INFO
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S"
    )
    logging.getLogger("seq2seq").setLevel(level)  # also where logging was set up before us
    try:
        return int(args.func(args) or 0)
    except _EXPECTED_ERRORS as err:
        print(f"seq2seq: error: {single_line(err)}", file=sys.stderr)
        return 2
    except TrainingInterrupted as stop:  # a signal: the step finished and was saved
        print(f"seq2seq: {stop}", file=sys.stderr)
        return 128 + stop.signum
    except KeyboardInterrupt:
        print("seq2seq: interrupted", file=sys.stderr)
        return 130
    except OSError as err:  # the file system refused (disk full, permissions) where not caught
        where = f"{err.filename}: " if err.filename else ""
        print(
            f"seq2seq: error: {single_line(where + (err.strerror or str(err)))}",
            file=sys.stderr,
        )
        return 2
    except MemoryError:
        print("seq2seq: error: out of memory (a smaller model, batch or input?)", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seq2seq", description="LSTM sequence-to-sequence toolkit"
    )
    sub = parser.add_subparsers(required=True, metavar="COMMAND")
    for add in (
        _add_train,
        _add_check,
        _add_translate,
        _add_shell,
        _add_generate,
        _add_task_commands,
        _add_evaluate,
        _add_plot,
        *DEPLOY_COMMANDS,
    ):
        add(sub)
    return parser


def _add_train(sub: Any) -> None:
    p = sub.add_parser("train", help="train (or resume) the run a recipe describes")
    p.add_argument("recipe", help="recipe YAML file")
    p.add_argument(
        "overrides", nargs="*", metavar="key=value", help="e.g. train.lr=3e-4 model.emb_dim=128"
    )
    p.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when available")
    p.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    p.set_defaults(func=_train)


def _add_check(sub: Any) -> None:
    p = sub.add_parser(
        "check", help="print the resolved recipe and the parameter count; train nothing"
    )
    p.add_argument("recipe")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.set_defaults(func=_check)


def _add_translate(sub: Any) -> None:
    p = sub.add_parser(
        "translate",
        help="translate lines (stdin -> stdout by default); several runs form an ensemble",
    )
    run_arguments(p)
    translate_file.add_arguments(p)
    p.set_defaults(func=translate_file.run)


def _add_shell(sub: Any) -> None:
    p = sub.add_parser(
        "shell", help="interactive: type lines, change the search with :commands (:help)"
    )
    run_arguments(p)
    p.set_defaults(func=_shell)


def _add_generate(sub: Any) -> None:
    p = sub.add_parser(
        "generate",
        help="text generation (streamed), music (MIDI/MusicXML with -o DIR), rewrites",
    )
    run_arguments(p)
    given = p.add_mutually_exclusive_group()
    given.add_argument("--prompt", help="one prompt (text generation: streamed to stdout)")
    given.add_argument("-i", "--input", help="prompts, one per line (\\n in a line is a newline)")
    given.add_argument("--split", help="music: generate for the sources of this split")
    p.add_argument("-n", "--count", type=int, default=0, help="with --split: the first N only")
    p.add_argument(
        "-o", "--output", help="output file (default stdout); music: a directory of MIDI files"
    )
    p.add_argument(
        "--max-len", type=int, help="tokens to generate (text generation: in all, over windows)"
    )
    p.set_defaults(func=_generate)


def _add_task_commands(sub: Any) -> None:
    """The verbs the tasks bring (``seq2seq expand`` for query expansion): each gets the
    run arguments here and its own options from the task."""
    from seq2seq.tasks.base import task_commands

    for command in task_commands():
        p = sub.add_parser(command.name, help=command.help)
        run_arguments(p)
        command.add_arguments(p)
        p.set_defaults(func=_task_command, command=command)


def _add_plot(sub: Any) -> None:
    p = sub.add_parser(
        "plot", help="validation loss, perplexity and BLEU of runs against updates and minutes"
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("-o", "--output", required=True, help="the PNG to write")
    p.set_defaults(func=_plot)


def _plot(args: argparse.Namespace) -> int:
    from seq2seq.visualize import learning_curves

    output = Path(args.output)
    if output.suffix.lower() != ".png":
        raise ConfigError(f"-o {args.output}: name a .png file")
    check_output_path(output, inputs=[])
    drawn = learning_curves(args.run_dirs, output)
    print(f"wrote {output} ({', '.join(drawn)} of {len(args.run_dirs)} run(s))", file=sys.stderr)
    return 0


def _add_evaluate(sub: Any) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score a split (or files): BLEU/chrF, or the task's metrics (nats/char, "
        "music validity, term recall)",
    )
    run_arguments(p)
    p.epilog = (
        "data.* overrides change how --split is read, e.g. data.windows.span=128 to score "
        "a text-generation run on other tiles"
    )
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--split", help="a split named in the recipe's data.splits (e.g. test2016)")
    group.add_argument("--src", help="source file (with --ref)")
    p.add_argument("--ref", help="reference file (with --src)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--hyp-out", help="also write the hypotheses to this file")
    p.add_argument("--limit", type=int, default=0, help="score the first N examples only")
    p.add_argument(
        "--pictures", help="music: a folder for piano rolls of each output and its reference"
    )
    p.set_defaults(func=_evaluate)


def _train(args: argparse.Namespace) -> int:
    from seq2seq.training.build import run_training

    recipe = load_recipe(args.recipe, args.overrides)
    run = run_training(recipe, device=args.device)
    print(f"run directory: {run.path}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from seq2seq.model.encoder_decoder import build_model, count_parameters

    recipe = load_recipe(args.recipe, args.overrides)
    print(dump_recipe(recipe), end="")
    # the real vocabulary is only known after training the tokenizer; its bound is exact enough
    from seq2seq.data.dataset import hand_written_pieces
    from seq2seq.data.vocab import SPECIALS

    symbols = hand_written_pieces(recipe.tokenizer)
    vocab = recipe.tokenizer.vocab_size if symbols is None else len(SPECIALS) + len(symbols)
    model = build_model(recipe.model, vocab, vocab)
    print(f"# parameters: {count_parameters(model):,} (with a {vocab:,}-piece vocabulary)")
    return 0


def _shell(args: argparse.Namespace) -> int:
    from seq2seq.shell import run_shell

    run_shell(
        args.run_dirs, args.checkpoint, parse_overrides(args.overrides, "search"), args.device
    )
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from seq2seq.tasks import Evaluation, get_task

    if args.src and not args.ref:
        raise ConfigError("--src needs --ref")
    if args.ref and not args.src:
        raise ConfigError("--ref goes with --src (with --split the references are the split's)")
    if args.limit < 0:
        raise ConfigError(f"--limit must be 0 (all) or more, got {args.limit}")
    if args.hyp_out:
        check_output_path(args.hyp_out, [args.src, args.ref])
    request = Evaluation(args.split, args.src, args.ref, args.limit, args.hyp_out, args.pictures)
    # data.* overrides change how the split is read (e.g. data.windows.span=128), the rest
    # are search settings
    data = [item for item in args.overrides if item.startswith("data.")]
    args.overrides = [item for item in args.overrides if not item.startswith("data.")]
    translator = translate_file.load(args)
    if data:
        translator.recipe = with_data(translator.recipe, data)
    report = get_task(translator.recipe.task).evaluate(translator, request)
    print(report.json() if args.json else report.line())
    return 0


def _generate(args: argparse.Namespace) -> int:
    from seq2seq.tasks import Generation, get_task

    if args.count < 0:
        raise ConfigError(f"-n must be 0 (all) or more, got {args.count}")
    if args.max_len is not None and args.max_len < 1:
        raise ConfigError(f"--max-len must be at least 1, got {args.max_len}")
    if args.count and not args.split:
        raise ConfigError("-n goes with --split (the first N examples of the split)")
    translator = translate_file.load(args)
    prompts = None
    if not args.split:
        prompts = [args.prompt] if args.prompt is not None else _prompt_lines(args.input)
    request = Generation(
        prompts=prompts,
        split=args.split,
        count=args.count,
        output=args.output,
        max_len=args.max_len,
        stream=args.prompt is not None,
        inputs=(args.input,),
    )
    get_task(translator.recipe.task).generate(translator, request)
    return 0


def _prompt_lines(path: str | None) -> list[str]:
    """Prompts from a file (or stdin), one per line; ``\\n`` stands for a newline."""
    return [line.replace("\\n", "\n") for line in iter_lines(path)]


def _task_command(args: argparse.Namespace) -> int:
    from seq2seq.tasks import get_task

    args.command.check(args)
    translator = translate_file.load(args)
    return get_task(translator.recipe.task).command(args.command.name).run(translator, args)


if __name__ == "__main__":
    sys.exit(main())
