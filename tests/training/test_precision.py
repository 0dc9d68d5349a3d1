"""What each precision setting means on this device, and the one-line refusals."""

import pytest
import torch

from seq2seq.config import ConfigError
from seq2seq.training import precision
from seq2seq.training.precision import resolve_precision

CPU = torch.device("cpu")


def test_fp16_on_cpu_is_refused():
    with pytest.raises(ConfigError, match=r"train\.precision=fp16 needs a CUDA device"):
        resolve_precision("fp16", CPU)


def test_bf16_where_onednn_cannot_train_it_is_a_one_line_error(monkeypatch):
    monkeypatch.setattr(precision, "cpu_trains_bf16", lambda: False)
    with pytest.raises(ConfigError, match=r"train\.precision=bf16: this CPU") as err:
        resolve_precision("bf16", CPU)
    assert "\n" not in str(err.value)
    assert resolve_precision("fp32", CPU) == "fp32"


def test_the_probe_agrees_with_a_real_bf16_step():
    """cpu_trains_bf16 says True exactly where a bf16 LSTM trains."""
    lstm = torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True, batch_first=True)
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out, _ = lstm(torch.randn(2, 4, 3))
        out.float().sum().backward()
        trains = True
    except RuntimeError:
        trains = False
    assert precision.cpu_trains_bf16() == trains
    if trains:
        assert resolve_precision("bf16", CPU) == "bf16"
