"""The trainer state's CUDA random stream: one per process, restored on its own device,
whatever number of GPUs the saving run saw (simulated: no GPU is needed)."""

import pytest
import torch

from seq2seq.training import progress


@pytest.fixture
def one_fake_gpu(monkeypatch: pytest.MonkeyPatch) -> list[torch.Tensor]:
    """torch.cuda as a process with one visible GPU would see it; returns what
    set_rng_state received."""
    received: list[torch.Tensor] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device="cuda": torch.full((4,), 7))
    monkeypatch.setattr(
        torch.cuda, "set_rng_state", lambda state, device="cuda": received.append(state)
    )

    def all_devices(states):  # what set_rng_state_all does: one state per device index
        for index, state in enumerate(states):
            if index >= 1:
                raise IndexError(f"device {index}: only 1 GPU is visible")
            received.append(state)

    monkeypatch.setattr(torch.cuda, "set_rng_state_all", all_devices)
    return received


def test_a_state_saved_with_eight_gpus_resumes_on_one(one_fake_gpu: list[torch.Tensor]):
    state = progress.rng_state()
    state["rng_cuda"] = [torch.full((4,), i) for i in range(8)]  # as torchrun on 8 GPUs saved
    progress.restore_rng(state)
    assert len(one_fake_gpu) == 1 and torch.equal(one_fake_gpu[0], torch.full((4,), 0))


def test_a_state_holds_its_own_device_stream_only(one_fake_gpu: list[torch.Tensor]):
    state = progress.rng_state()
    assert len(state["rng_cuda"]) == 1 and torch.equal(state["rng_cuda"][0], torch.full((4,), 7))
    progress.restore_rng(state)
    assert torch.equal(one_fake_gpu[0], torch.full((4,), 7))
