import itertools

import pytest
import torch
import torch.nn.functional as F
from helpers import TOY_RECIPE

from seq2seq.config import ConfigError, load_recipe
from seq2seq.kernels.fused_loss import projected_sequence_loss, sequence_loss
from seq2seq.training.optim import LRSchedule, build_optimizer, teacher_forcing_ratio
from seq2seq.training.progress import budget_share


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_fused_loss_matches_cross_entropy_and_its_gradient(smoothing: float):
    torch.manual_seed(0)
    logits = torch.randn(3, 6, 17, dtype=torch.float64, requires_grad=True)
    target = torch.randint(1, 17, (3, 6))
    target[0, 4:] = 0  # padding
    loss, nll, tokens = sequence_loss(logits, target, smoothing)
    ref = F.cross_entropy(
        logits.view(-1, 17),
        target.view(-1),
        ignore_index=0,
        label_smoothing=smoothing,
        reduction="sum",
    )
    ref_nll = F.cross_entropy(logits.view(-1, 17), target.view(-1), ignore_index=0, reduction="sum")
    assert tokens == 16
    assert float(loss.detach()) == pytest.approx(float(ref.detach()), rel=1e-6)
    assert float(nll) == pytest.approx(float(ref_nll.detach()), rel=1e-6)
    (grad,) = torch.autograd.grad(loss * 0.5, logits)
    (ref_grad,) = torch.autograd.grad(ref * 0.5, logits)
    assert torch.allclose(grad, ref_grad, atol=1e-6)
    assert float(grad[0, 4:].abs().sum()) == 0.0  # padding gets no gradient


@pytest.mark.parametrize("smoothing,bias", [(0.0, True), (0.2, True), (0.1, False)])
def test_projected_loss_matches_projecting_then_the_loss(smoothing: float, bias: bool):
    torch.manual_seed(0)
    features = torch.randn(3, 6, 5, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(17, 5, dtype=torch.float64, requires_grad=True)
    b = torch.randn(17, dtype=torch.float64, requires_grad=True) if bias else None
    target = torch.randint(1, 17, (3, 6))
    target[1, 2:] = 0  # padding: never projected, gets no gradient
    params = [features, weight] + ([b] if b is not None else [])
    loss, nll, tokens = projected_sequence_loss(features, weight, b, target, smoothing, 4)
    ref, ref_nll, ref_tokens = sequence_loss(F.linear(features, weight, b), target, smoothing)
    assert tokens == ref_tokens == 14
    assert float(loss.detach()) == pytest.approx(float(ref.detach()), rel=1e-6)
    assert float(nll) == pytest.approx(float(ref_nll), rel=1e-6)
    grads = torch.autograd.grad(loss * 0.5, params)
    ref_grads = torch.autograd.grad(ref * 0.5, params)
    for grad, ref_grad in zip(grads, ref_grads, strict=True):
        assert torch.allclose(grad, ref_grad, atol=1e-6)
    assert float(grads[0][1, 2:].abs().sum()) == 0.0
    with torch.no_grad():  # evaluation: the same sums, no gradient work
        no_grad_loss, no_grad_nll, _ = projected_sequence_loss(features, weight, b, target, 0.0)
    assert float(no_grad_nll) == pytest.approx(float(ref_nll), rel=1e-6)
    assert not no_grad_loss.requires_grad


def test_warmup_then_inverse_sqrt():
    sched = LRSchedule("inverse_sqrt", 1e-3, warmup_steps=100, factor=0.5, patience=1, min_lr=0.0)
    assert sched.lr(50) == pytest.approx(5e-4)
    assert sched.lr(100) == pytest.approx(1e-3)
    assert sched.lr(400) == pytest.approx(5e-4)


def test_plateau_cuts_after_patience_and_keeps_a_floor():
    sched = LRSchedule("plateau", 1e-3, warmup_steps=0, factor=0.5, patience=2, min_lr=2e-4)
    sched.on_validation(improved=False)
    assert sched.lr(10) == pytest.approx(1e-3)
    sched.on_validation(improved=False)
    assert sched.lr(10) == pytest.approx(5e-4)
    for _ in range(10):
        sched.on_validation(improved=False)
    assert sched.lr(10) == pytest.approx(2e-4)
    restored = LRSchedule("plateau", 1e-3, 0, 0.5, 2, 2e-4)
    restored.load_state_dict(sched.state_dict())
    assert restored.lr(10) == sched.lr(10)


def test_cosine_falls_from_the_rate_to_the_floor_over_the_budget():
    sched = LRSchedule("cosine", 1e-3, warmup_steps=10, factor=0.5, patience=1, min_lr=1e-5)
    assert sched.lr(5, spent=0.0) == pytest.approx(5e-4)  # warming up
    assert sched.lr(10, spent=0.0) == pytest.approx(1e-3)
    assert sched.lr(50, spent=0.5) == pytest.approx((1e-3 + 1e-5) / 2)
    assert sched.lr(90, spent=1.0) == pytest.approx(1e-5)
    assert sched.lr(99, spent=3.0) == pytest.approx(1e-5)  # past the budget: the floor
    rates = [sched.lr(10 + i, spent=i / 40) for i in range(41)]
    assert all(a >= b for a, b in itertools.pairwise(rates))
    sched.on_validation(improved=False)  # plateau cuts do not touch it
    assert sched.lr(50, spent=0.5) == pytest.approx((1e-3 + 1e-5) / 2)


def test_budget_share_is_the_larger_of_steps_and_minutes():
    cfg = load_recipe(TOY_RECIPE, ["train.max_steps=100", "train.max_minutes=10"]).train
    assert budget_share(cfg, 25, 60.0) == pytest.approx(0.25)
    assert budget_share(cfg, 25, 300.0) == pytest.approx(0.5)
    assert budget_share(cfg, 200, 0.0) == 1.0
    unlimited = load_recipe(TOY_RECIPE, ["train.max_steps=null"]).train
    assert budget_share(unlimited, 10**6, 1e9) == 0.0


def test_cosine_needs_a_budget():
    with pytest.raises(ConfigError, match=r"train.schedule: cosine .* train.max_steps"):
        load_recipe(TOY_RECIPE, ["train.schedule=cosine", "train.max_steps=null"])


@pytest.mark.parametrize("schedule", ["linear", "inverse_sigmoid"])
def test_teacher_forcing_falls_from_one_to_its_final_value(schedule: str):
    ratios = [teacher_forcing_ratio(0.75, schedule, 1000, step) for step in range(0, 5001, 250)]
    assert ratios[0] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(ratios))
    assert ratios[-1] == pytest.approx(0.75, abs=1e-3)
    assert teacher_forcing_ratio(1.0, schedule, 1000, 10) == 1.0
    assert teacher_forcing_ratio(0.9, "constant", 1000, 0) == 0.9


@pytest.mark.parametrize("kind", ["adam", "adamw"])
def test_optimizer_is_fused_and_steps_as_the_plain_one(kind: str):
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 4)
    twin = torch.nn.Linear(6, 4)
    twin.load_state_dict(model.state_dict())
    cfg = load_recipe(TOY_RECIPE, [f"train.optimizer={kind}", "train.weight_decay=0.01"]).train
    fused = build_optimizer(cfg, model)
    assert fused.defaults["fused"]
    plain_kind = torch.optim.AdamW if kind == "adamw" else torch.optim.Adam
    plain = plain_kind(twin.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=0.01)
    x = torch.randn(8, 6)
    for _ in range(3):
        for net, opt in ((model, fused), (twin, plain)):
            opt.zero_grad()
            net(x).square().sum().backward()
            opt.step()
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
