"""The scripts in tools/ run as a user would run them."""

import json
import subprocess
import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parent.parent / "tools"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120)


def test_bleu_script_scores_files(tmp_path: Path):
    ref = tmp_path / "ref.en"
    ref.write_text("A dog runs across the meadow.\nTwo people sit on a bench.\n")
    same = run(str(TOOLS / "bleu.py"), str(ref), str(ref), "--json")
    assert same.returncode == 0 and json.loads(same.stdout)["bleu"] == 100.0
    hyp = tmp_path / "hyp.en"
    hyp.write_text("A dog runs over the grass.\nTwo people sit on a bench.\n")
    partial = run(str(TOOLS / "bleu.py"), str(hyp), str(ref))
    assert (
        partial.returncode == 0
        and partial.stdout.startswith("BLEU = ")
        and "tok:13a" in partial.stdout
    )


def test_bleu_script_rejects_ragged_files(tmp_path: Path):
    (tmp_path / "a").write_text("one\ntwo\n")
    (tmp_path / "b").write_text("one\n")
    result = run(str(TOOLS / "bleu.py"), str(tmp_path / "a"), str(tmp_path / "b"))
    assert result.returncode == 2 and "has 2 lines but" in result.stderr


def test_python_dash_m_runs_the_cli():
    result = run("-m", "seq2seq", "--help")
    assert result.returncode == 0 and "translate" in result.stdout
