"""Every search option in every mode (greedy, beam, sampling) on a trained toy model:
each either holds its property in that mode, is refused by validation naming the key, or
is a sampling-only setting that changes nothing when not sampling. A new option must be
placed in one of these tables (test_every_option_is_in_the_matrix)."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from seq2seq.config import ConfigError, Search
from seq2seq.data.lexicon import build_run_lexicon
from seq2seq.export.onnx_export import onnx_available
from seq2seq.inference import Translator
from seq2seq.search import Hypothesis
from seq2seq.tasks import load_translator

MODES: dict[str, dict[str, Any]] = {
    "greedy": {"beam_size": 1, "sampling": False},
    "beam": {"beam_size": 4, "sampling": False},
    "sampling": {"sampling": True, "seed": 7, "beam_size": 1},
}
LINES = ["1 2 3", "4 5 6 7", "8 9", "2 2 2 2 3"]


def repeats(tokens: list[int], n: int) -> bool:
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return len(grams) != len(set(grams))


Check = Callable[[list[list[Hypothesis]], list[list[Hypothesis]]], bool]

# option value -> property of the outputs (with the option, and without it, same mode)
HOLDS: dict[str, tuple[dict[str, Any], Check]] = {
    "min_len": (  # with room for it: a shorter length limit wins (test_search.py)
        {"min_len": 6, "max_len_a": 0.0, "max_len_b": 12},
        lambda got, _: all(len(h.tokens) >= 6 for r in got for h in r),
    ),
    "no_repeat_ngram": (
        {"no_repeat_ngram": 1},
        lambda got, _: not any(repeats(h.tokens, 1) for r in got for h in r),
    ),
    "max_len": (
        {"max_len_a": 0.0, "max_len_b": 2},
        lambda got, _: all(len(h.tokens) <= 2 for r in got for h in r),
    ),
    "nbest": ({"nbest": 3, "beam_size": 4}, lambda got, _: all(len(r) == 3 for r in got)),
    "batch_size": (  # batched == one at a time (sampling: each row draws its own stream)
        {"batch_size": 1},
        lambda got, base: (
            [[h.tokens for h in r] for r in got] == [[h.tokens for h in r] for r in base]
        ),
    ),
    "refill": (  # two rows at a time, the next joining as one ends == all at once
        {"refill": 4, "batch_size": 2},
        lambda got, base: (
            [[h.tokens for h in r] for r in got] == [[h.tokens for h in r] for r in base]
        ),
    ),
    "workers": (  # one-sentence batches on three threads == one batch on one
        {"workers": 3, "batch_size": 1},
        lambda got, base: (
            [[h.tokens for h in r] for r in got] == [[h.tokens for h in r] for r in base]
        ),
    ),
    "precision": ({"precision": "fp32"}, lambda got, _: all(r for r in got)),
    "length_penalty": ({"length_penalty": 1.0}, lambda got, _: all(r for r in got)),
    "length_norm": ({"length_norm": "average"}, lambda got, _: all(r for r in got)),
    "shortlist": (  # a reversal outputs its source tokens, which are always candidates
        {"shortlist": 1, "shortlist_frequent": 0},
        lambda got, base: (
            [[h.tokens for h in r] for r in got] == [[h.tokens for h in r] for r in base]
        ),
    ),
    "engine": (  # ONNX Runtime computes what PyTorch does: the same outputs
        {"engine": "onnx"},
        lambda got, base: (
            [[h.tokens for h in r] for r in got] == [[h.tokens for h in r] for r in base]
        ),
    ),
}
# set together with the option before them in HOLDS
COMPANIONS = {"shortlist_frequent"}
# settings that only sampling reads: outside it they change nothing
SAMPLING_ONLY = {"temperature": 0.3, "top_k": 2, "top_p": 0.5, "seed": 11}
# refused in a mode, with the key the error must name
REFUSED = {
    ("greedy", "nbest"): "search.nbest",  # more outputs than the beam keeps
    ("sampling", "coverage_penalty"): "search.coverage_penalty",
    ("greedy", "constrained"): "search.constrained",  # translation has no grammar
    ("beam", "constrained"): "search.constrained",
    ("sampling", "constrained"): "search.constrained",
}
# options that select the mode itself, or need a pair of runs to test
MODE_KEYS = {"beam_size", "sampling", "max_len_a", "max_len_b"}
OTHER = {"coverage_penalty": {"coverage_penalty": 0.2}, "constrained": {"constrained": True}}


@pytest.fixture(scope="module")
def translator(
    trained: Path, toy_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Translator:
    run = tmp_path_factory.mktemp("matrix") / "toy"
    shutil.copytree(trained, run)
    with pytest.MonkeyPatch.context() as mp:  # the table reads the run's training data
        mp.setenv("SEQ2SEQ_DATA", str(toy_root))
        build_run_lexicon(run)
    # the PyTorch engine (auto may be ONNX Runtime): the engine row compares the two
    return load_translator(run, search={"batch_size": 64, "engine": "torch"})


def run(translator: Translator, mode: str, **changes: Any) -> list[list[Hypothesis]]:
    searching = translator.with_search(**{**MODES[mode], **changes})
    return searching.hypotheses(LINES)


def test_every_option_is_in_the_matrix():
    names = {f.name for f in dataclasses.fields(Search)}
    covered = set(HOLDS) | set(SAMPLING_ONLY) | MODE_KEYS | set(OTHER) | {"max_len"} | COMPANIONS
    assert names - covered == set()


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("option", list(HOLDS))
def test_each_option_holds_in_each_mode(translator: Translator, mode: str, option: str):
    changes, check = HOLDS[option]
    if option == "engine" and not onnx_available():
        pytest.skip("the onnx extra (onnxruntime) is not installed")
    if mode == "greedy":  # the mode sets the beam
        changes = {k: v for k, v in changes.items() if k != "beam_size"}
    if (mode, option) in REFUSED:
        with pytest.raises(ConfigError, match=REFUSED[(mode, option)]):
            run(translator, mode, **changes)
        return
    if mode == "sampling" and option in ("batch_size", "refill", "workers"):
        # one seeded stream serves the batch in order: draws depend on the batch size,
        # and are reproducible for a given one
        check = lambda got, _: got == run(translator, mode, **changes)  # noqa: E731
    assert check(run(translator, mode, **changes), run(translator, mode))


@pytest.mark.parametrize("mode", ["greedy", "beam"])
@pytest.mark.parametrize("option", list(SAMPLING_ONLY))
def test_sampling_settings_change_nothing_when_searching(
    translator: Translator, mode: str, option: str
):
    def tokens(result: list[list[Hypothesis]]) -> list[list[list[int]]]:
        return [[h.tokens for h in r] for r in result]

    changed = run(translator, mode, **{option: SAMPLING_ONLY[option]})
    assert tokens(changed) == tokens(run(translator, mode))


def test_sampling_settings_act_when_sampling(translator: Translator):
    base = run(translator, "sampling")
    same = run(translator, "sampling")  # seeded
    assert [[h.tokens for h in r] for r in same] == [[h.tokens for h in r] for r in base]
    greedy = run(translator, "greedy")
    top1 = run(translator, "sampling", top_k=1)  # top-k 1 sampling == greedy
    assert [[h.tokens for h in r] for r in top1] == [[h.tokens for h in r] for r in greedy]


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("option", list(OTHER))
def test_the_other_options_work_or_are_refused(translator: Translator, mode: str, option: str):
    if (mode, option) in REFUSED:
        with pytest.raises(ConfigError, match=REFUSED[(mode, option)]):
            run(translator, mode, **OTHER[option])
        return
    assert all(run(translator, mode, **OTHER[option]))
