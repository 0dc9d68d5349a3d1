"""The ``seq2seq`` commands that put a trained run to use elsewhere: ``serve`` (HTTP),
``shortlist`` (the lexical table for fast search), ``export`` (ONNX). Parsing only, as
in cli.py, which registers them."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from seq2seq.config import ConfigError


def run_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of every command that reads run directories (here and in cli.py)."""
    p.add_argument(
        "targets",
        nargs="+",
        metavar="RUN_DIR [RUN_DIR ...] [key=value ...]",
        help="run directories written by seq2seq train (several: an ensemble), then "
        "search settings, e.g. beam_size=1",
    )
    p.set_defaults(overrides=[])
    p.add_argument(
        "--checkpoint", default="best", help="best (default), last, or a file in the run"
    )
    p.add_argument("--device", choices=["cpu", "cuda"])
    p.add_argument(
        "--quantize",
        choices=["int8"],
        help="the decoder's per-step products in int8 (oneDNN, CPU): search.precision=int8",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="log warnings only")


def _add_serve(sub: Any) -> None:
    from seq2seq.serve import command

    p = sub.add_parser(
        "serve", help="HTTP API with dynamic batching: POST /v1/translate; docs at /docs"
    )
    run_arguments(p)
    command.add_arguments(p)
    p.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    try:
        from seq2seq.serve import command
    except ImportError as err:
        raise ConfigError(
            f"serve needs the serve extra: pip install -e '.[serve]' ({err})"
        ) from None
    return command.run(args)


def _add_shortlist(sub: Any) -> None:
    p = sub.add_parser(
        "shortlist",
        help="learn a run's lexical table (RUN/shortlist.tsv) for search.shortlist=N",
    )
    p.add_argument("run_dir")
    p.add_argument(
        "--translations", type=int, default=100, help="target pieces kept per source piece"
    )
    p.add_argument("--iterations", type=int, default=5, help="IBM model 1 EM iterations")
    p.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    p.set_defaults(func=_shortlist)


def _shortlist(args: argparse.Namespace) -> int:
    from seq2seq.data.lexicon import build_run_lexicon

    for name in ("translations", "iterations"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name} must be at least 1, got {getattr(args, name)}")
    path = build_run_lexicon(
        args.run_dir, translations=args.translations, iterations=args.iterations
    )
    print(f"lexical table: {path}")
    return 0


def _add_export(sub: Any) -> None:
    p = sub.add_parser(
        "export",
        help="write a run as ONNX graphs that translate without PyTorch (DIR/translate.py)",
    )
    p.add_argument("run_dir")
    p.add_argument("--format", choices=["onnx"], default="onnx")
    p.add_argument("-o", "--output", required=True, help="the export directory to write")
    p.add_argument("--checkpoint", default="best", help="best | last | a file in the run")
    p.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    p.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    from seq2seq.checkpoint import RunDir
    from seq2seq.export.onnx_export import write_export
    from seq2seq.inference import Translator
    from seq2seq.model.encoder_decoder import EncoderDecoder

    translator = Translator.from_checkpoint(args.run_dir, args.checkpoint, device="cpu")
    model = translator.model_in("fp32")
    assert isinstance(model, EncoderDecoder), "one run directory gives one model"
    tokenizers = RunDir(args.run_dir).tokenizer_dir
    write_export(model, translator.recipe, tokenizers, Path(args.output), translator.weights)
    print(f"exported {args.run_dir} ({translator.weights}) to {args.output}")
    return 0


DEPLOY_COMMANDS = (_add_serve, _add_shortlist, _add_export)
