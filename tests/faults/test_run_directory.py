"""A run directory loses nothing: a second training of it is refused while the first
holds it (and not after the first died), a finished run trains no further, and a full
disk during a save is one line that leaves the previous checkpoint whole."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from helpers import TOY_RECIPE, run_cli

from seq2seq.checkpoint import CheckpointError, RunDir

FAST = ["train.valid_bleu=false", "train.progress=false", "-q"]


def tree_hash(folder: Path, skip: tuple[str, ...] = ("train.lock",)) -> dict[str, str]:
    """Every file under ``folder`` (but ``skip``) with the SHA-256 of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in skip
    }


def train_args(run: Path, *extra: str) -> list[str]:
    return ["train", str(TOY_RECIPE), f"output_dir={run}", *FAST, *extra]


@pytest.fixture
def small_run(toy_env: Path, tmp_path: Path, monkeypatch, capsys) -> Path:
    run = tmp_path / "run"
    code, _, err = run_cli(
        train_args(run, "train.max_steps=4", "train.validate_every=2"), "", monkeypatch, capsys
    )
    assert code == 0, err
    return run


def test_a_second_training_of_a_held_run_is_refused_and_changes_nothing(
    small_run: Path, monkeypatch, capsys
):
    before = tree_hash(small_run)
    with RunDir(small_run).lock():  # the first training, still running
        code, _, err = run_cli(train_args(small_run, "train.max_steps=8"), "", monkeypatch, capsys)
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{small_run} is being trained by pid {os.getpid()}" in err
    assert tree_hash(small_run) == before


def test_a_training_that_looks_while_the_holder_writes_its_line_still_names_it(tmp_path: Path):
    """The holder takes the lock, then writes who it is: a second training that looks in
    between (an empty file) waits for the line rather than naming 'another process'."""
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    fd = os.open(run.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held, nothing written yet
    line = "pid 4242 on host since 2026-12-03 04:00:00 (seq2seq train r.yaml)\n"
    writer = threading.Timer(0.1, lambda: os.write(fd, line.encode()))
    writer.start()
    try:
        with (
            pytest.raises(CheckpointError, match="is being trained by pid 4242 on host"),
            run.lock(),
        ):
            pass
    finally:
        writer.join()
        os.close(fd)


@pytest.mark.slow
def test_the_lock_of_a_killed_training_is_free(small_run: Path, monkeypatch, capsys):
    holder = subprocess.run(  # takes the lock, then dies without releasing it
        [
            sys.executable,
            "-c",
            "import os, sys; from seq2seq.checkpoint import CheckpointError, RunDir\n"
            f"RunDir({str(small_run)!r}).lock().__enter__(); os._exit(9)",
        ],
        check=False,
    )
    assert holder.returncode == 9 and "pid" in (small_run / "train.lock").read_text()
    code, _, err = run_cli(train_args(small_run, "train.max_steps=6"), "", monkeypatch, capsys)
    assert code == 0, err
    assert RunDir(small_run).load_trainer_state()["step"] == 6


@pytest.mark.slow
def test_two_trainings_started_together_one_trains_one_is_refused(toy_root: Path, tmp_path):
    """Two processes on one output_dir at once: one holds the run and trains on (its
    budget is unbounded, so it cannot finish before the other looks), the other exits 2
    with one line; then the first stops on SIGTERM, saving, and the run is one run's."""
    run = tmp_path / "run"
    env = {**os.environ, "SEQ2SEQ_DATA": str(toy_root), "OMP_NUM_THREADS": "1"}
    args = train_args(run, "train.max_steps=1000000", "train.validate_every=5")
    command = [sys.executable, "-m", "seq2seq", *args]
    both = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    deadline = time.monotonic() + 180
    while all(p.poll() is None for p in both):
        assert time.monotonic() < deadline, "neither training was refused"
        time.sleep(0.1)
    refused = next(p for p in both if p.poll() is not None)
    holder = next(p for p in both if p is not refused)
    err = refused.stderr.read().decode()  # type: ignore[union-attr]
    assert refused.returncode == 2, err
    assert err.count("\n") == 1 and "is being trained by pid" in err
    while not RunDir(run).trainer_state.is_file():  # let the holder save once, then stop it
        assert holder.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    holder.send_signal(signal.SIGTERM)
    assert holder.wait(timeout=120) == 128 + signal.SIGTERM
    state = RunDir(run).load_trainer_state()
    steps = [m["step"] for m in RunDir(run).read_metrics()]
    assert steps == sorted(set(steps)) and steps[-1] <= state["step"]  # one run's metrics


def test_rerunning_a_finished_run_is_a_no_op_that_says_so(
    small_run: Path, monkeypatch, capsys, caplog
):
    before = tree_hash(small_run)
    for _ in range(2):
        code, out, _ = run_cli(train_args(small_run, "train.max_steps=4"), "", monkeypatch, capsys)
        assert code == 0 and "run directory" in out
    assert "is finished (step 4 of train.max_steps=4): nothing to train" in caplog.text
    assert tree_hash(small_run) == before
    code, _, _ = run_cli(train_args(small_run, "train.max_steps=6"), "", monkeypatch, capsys)
    assert code == 0 and RunDir(small_run).load_trainer_state()["step"] == 6  # raised: trains on


def test_an_early_stopped_run_is_finished_too(toy_env: Path, tmp_path: Path, monkeypatch, capsys):
    run = tmp_path / "run"
    args = train_args(  # lr 0: the loss never improves, so patience 1 stops at the 2nd check
        run,
        "train.max_steps=50",
        "train.validate_every=2",
        "train.lr=1e-9",
        "train.min_lr=0",
        "train.early_stop.metric=loss",
        "train.early_stop.patience=1",
    )
    assert run_cli(args, "", monkeypatch, capsys)[0] == 0
    step = RunDir(run).load_trainer_state()["step"]
    assert step < 50
    before = tree_hash(run)
    assert run_cli(args, "", monkeypatch, capsys)[0] == 0
    assert tree_hash(run) == before and RunDir(run).load_trainer_state()["step"] == step


def _can_mount_tmpfs(tmp: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = tmp / "probe"
    probe.mkdir()
    command = f"mount -t tmpfs -o size=64k tmpfs {probe} && touch {probe}/x"
    result = subprocess.run(["unshare", "-rm", "sh", "-c", command], capture_output=True)
    return result.returncode == 0


@pytest.mark.slow
def test_disk_full_during_a_save_is_one_line_and_keeps_the_last_checkpoint(
    small_run: Path, toy_root: Path, tmp_path: Path
):
    """On a real full file system (a tmpfs sized to the run plus a little, mounted in a
    private mount namespace): the next save fails; one stderr line; nothing is lost."""
    if not _can_mount_tmpfs(tmp_path):
        pytest.skip("cannot mount a tmpfs here (needs unshare -rm and mount in a namespace)")
    used = sum(p.stat().st_size for p in small_run.rglob("*") if p.is_file())
    weights = max(p.stat().st_size for p in small_run.rglob("*.safetensors"))
    size_kb = (used + weights // 2) // 1024 + 16 * 4  # 4 KB pages per file, a few files
    mount, after = tmp_path / "mnt", tmp_path / "after"
    mount.mkdir()
    script = textwrap.dedent(
        f"""
        set -u
        mount -t tmpfs -o size={size_kb}k tmpfs {mount}
        cp -a {small_run} {mount}/run
        SEQ2SEQ_DATA={toy_root} {sys.executable} -m seq2seq train {TOY_RECIPE} \\
            output_dir={mount}/run train.max_steps=40 train.validate_every=2 {" ".join(FAST)} \\
            2> {tmp_path}/stderr.txt
        echo $? > {tmp_path}/code.txt
        cp -a {mount}/run {after}
        """
    )
    subprocess.run(["unshare", "-rm", "sh", "-c", script], check=True)
    code = int((tmp_path / "code.txt").read_text())
    err = (tmp_path / "stderr.txt").read_text()
    lines = [line for line in err.splitlines() if not line.startswith("seq2seq: warning:")]
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "cannot save step" in err and "No space left on device" in err and "intact" in err
    run = RunDir(after)
    state = run.load_trainer_state()
    assert state["weights"] == run.resolve("last")
    named = {run.resolve("last"), run.resolve("best")}
    on_disk = {f"checkpoints/{p.name}" for p in run.checkpoints.iterdir()}
    assert on_disk == named  # no orphan weights, no temporary files
    assert not [p for p in after.rglob("*") if p.name.startswith(".")]
    from seq2seq.inference import Translator

    assert Translator.from_checkpoint(after, "last").translate(["1 2 3"])  # loads and works
    assert json.loads((after / "metrics.jsonl").read_text().splitlines()[-1])["step"] >= 4
