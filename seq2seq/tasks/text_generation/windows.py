"""Text generation examples: a text file cut into (preceding context -> next span) windows.

The training part is the first ``1 - holdout`` of the characters, the validation part the
rest (the char-rnn / nanoGPT split of Tiny Shakespeare: 90% / 10%). Validation windows
tile the part with no overlap after its first span, so the mean loss over their targets is
the per-character loss of (nearly) the whole held-out text. Training windows start every
``stride`` characters; a share of them (``short_context``) get a context cut to a random
length, so that a short prompt is not out of distribution.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from seq2seq.config import Data, format_options, ranged
from seq2seq.data.formats import FileOptions
from seq2seq.data.readers import Corpus, DataError, data_root, read_lines

PARTS = ("train", "valid")


@dataclass(frozen=True)
class WindowOptions(FileOptions):
    """``data.windows``: the text file (``files``), the share held out for validation
    (``holdout``: the end of the file), and the window sizes, in characters."""

    context: int = ranged(256, 1, 1_000_000)  # preceding text in the source, at most
    span: int = ranged(128, 1, 100_000)  # the target
    stride: int = ranged(64, 1, 1_000_000)  # between the starts of training windows
    short_context: float = ranged(0.25, 0.0, 1.0)  # share of training contexts cut short


def read_text_file(path: Path) -> str:
    """The whole UTF-8 file (errors name file and line)."""
    return "\n".join(read_lines(path)) + "\n"


def text_part(text: str, part: str, holdout: float) -> str:
    """``train``: the first 1 - holdout of ``text``; ``valid``: the rest."""
    cut = round(len(text) * (1.0 - holdout))
    if part == "train":
        return text[:cut]
    if part == "valid":
        return text[cut:]
    raise DataError(f"data.splits: windows splits are {' or '.join(PARTS)}, got '{part}'")


def make_windows(
    text: str, context: int, span: int, stride: int, short_context: float, seed: int
) -> tuple[list[str], list[str]]:
    """Sources (up to ``context`` characters before position i) and targets (``span``
    characters from i), for i = stride, 2 * stride, ... while a target character is left."""
    rng = random.Random(seed)
    sources, targets = [], []
    for i in range(stride, len(text), stride):
        width = context
        if short_context > 0 and rng.random() < short_context:
            width = rng.randint(1, context)
        sources.append(text[max(0, i - width) : i])
        targets.append(text[i : i + span])
    return sources, targets


def read_windows(data: Data, part: str, name: str, seed: int) -> Corpus:
    w = format_options(data, WindowOptions)
    if not w.files:
        raise DataError("data.windows.files: name the text file to cut into windows")
    path = data_root(data.root) / w.files
    body = text_part(read_text_file(path), part, w.holdout)
    if part == "train":
        src, tgt = make_windows(body, w.context, w.span, w.stride, w.short_context, seed)
    else:  # tiles: every character after the first span is a target exactly once
        src, tgt = make_windows(body, w.context, w.span, w.span, 0.0, seed)
    if not src:
        raise DataError(f"{path}: split '{name}' is shorter than one window")
    return Corpus(name, src, tgt)
