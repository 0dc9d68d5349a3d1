"""Shared fixtures: a generated data set and the environment that points at it."""

from __future__ import annotations

import os
from pathlib import Path

# The suite's expectations are the CPU's (fp16 refused, int8 kernels, one rank per device):
# hide every GPU, before anything initialises CUDA, unless SEQ2SEQ_TEST_DEVICE=cuda asks
# for the gpu-marked tests. Child processes inherit the setting.
if os.environ.get("SEQ2SEQ_TEST_DEVICE") != "cuda":
    os.environ["CUDA_VISIBLE_DEVICES"] = ""

import pytest
import torch
from helpers import TOY_RECIPE

from seq2seq.cli import main
from seq2seq.data.synthetic import write_reverse_task


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """gpu-marked tests skip, saying why, where CUDA is hidden or absent."""
    if torch.cuda.is_available():
        return
    pinned = os.environ.get("SEQ2SEQ_TEST_DEVICE") != "cuda"
    why = (
        "the suite is pinned to the CPU (SEQ2SEQ_TEST_DEVICE=cuda runs it)" if pinned else "no CUDA"
    )
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=why))


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)  # tests are small; threads only add contention


@pytest.fixture(scope="session")
def toy_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root holding ``toy_reverse/{train,valid,test}.{src,tgt}``."""
    root = tmp_path_factory.mktemp("data")
    write_reverse_task(root / "toy_reverse", train=2000, valid=100, test=100, seed=7)
    return root


@pytest.fixture
def toy_env(toy_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SEQ2SEQ_DATA", str(toy_root))
    return toy_root


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, toy_root: Path) -> Path:
    """A run directory trained for 120 steps on the reversal task (shared by CLI tests)."""
    run = tmp_path_factory.mktemp("runs") / "toy"
    mp = pytest.MonkeyPatch()
    mp.setenv("SEQ2SEQ_DATA", str(toy_root))
    try:
        code = main(
            [
                "train",
                str(TOY_RECIPE),
                f"output_dir={run}",
                "train.max_steps=120",
                "train.validate_every=60",
                "train.progress=false",
            ]
        )
    finally:
        mp.undo()
    assert code == 0
    return run
