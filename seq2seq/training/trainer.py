"""The training loop: teacher forcing (or scheduled sampling), validation, early stopping,
a wall-clock budget, checkpoints and exact resume."""

from __future__ import annotations

import contextlib
import logging
import math
import random
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from seq2seq import threads
from seq2seq.checkpoint import RunDir
from seq2seq.config import Recipe, dump_recipe
from seq2seq.data.batching import make_batch, token_batches
from seq2seq.data.dataset import Examples, resampled
from seq2seq.data.tokenizer import Tokenizer
from seq2seq.model.encoder_decoder import EncoderDecoder
from seq2seq.runtime import TRIM_EVERY_STEPS, release_memory
from seq2seq.training.distributed import DistInfo, all_reduce_sum, broadcast_flag
from seq2seq.training.faults import StopSignals, TrainingInterrupted
from seq2seq.training.loss import batch_loss
from seq2seq.training.optim import LRSchedule, build_optimizer, teacher_forcing_ratio
from seq2seq.training.precision import autocast, resolve_precision, use_tf32
from seq2seq.training.progress import (
    Clock,
    Progress,
    RateWindow,
    budget_share,
    budget_spent,
    count_nonfinite,
    epochs_done,
    improved,
    restore_rng,
    rng_state,
)
from seq2seq.training.reporting import TrainingReport
from seq2seq.training.validation import valid_bleu, valid_loss

log = logging.getLogger(__name__)


class Trainer:
    def __init__(
        self,
        recipe: Recipe,
        run: RunDir,
        model: EncoderDecoder,
        tokenizers: tuple[Tokenizer, Tokenizer],
        train: Examples,
        valid: Examples | None,
        dist: DistInfo,
    ) -> None:
        self.recipe = recipe
        self.cfg = recipe.train
        self.run = run
        self.dist = dist
        self.device = dist.device
        self.model = model.to(self.device)
        self.net: torch.nn.Module = self.model
        if dist.world_size > 1:
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[dist.local_rank] if self.device.type == "cuda" else None
            )
        self.src_tok, self.tgt_tok = tokenizers
        self.plain_train = self.train_data = train  # train_data: this epoch's (resampled)
        self.valid_data = valid
        self.precision = resolve_precision(self.cfg.precision, self.device)
        use_tf32(self.device)
        self.optimizer = build_optimizer(self.cfg, self.model)
        self.schedule = LRSchedule.from_config(self.cfg)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.progress = Progress()
        self._validated_at = -1
        self._agreed_elapsed = 0.0  # rank 0's seconds: one LR on every rank (cosine)
        events = (
            run.path / "events" if dist.is_main and run is not None else None
        )  # benchmark: no run
        self.report = TrainingReport(events)

    # ---- the loop ----------------------------------------------------------------------
    def fit(self) -> Progress:
        """Train until max_steps / max_epochs / max_minutes / early stopping; Ctrl-C saves."""
        cfg = self.cfg
        self._announce()
        bar = tqdm(
            total=cfg.max_steps,
            initial=self.progress.step,
            unit="step",
            dynamic_ncols=True,
            disable=not (cfg.progress and self.dist.is_main and sys.stderr.isatty()),
        )
        clock = Clock(time.monotonic() - self.progress.elapsed, RateWindow(), bar)
        signals = StopSignals()
        try:
            with signals:
                while not epochs_done(self.cfg, self.progress):
                    tokenizers = (self.src_tok, self.tgt_tok)  # subword sampling redraws ids
                    epoch = self.progress.epoch
                    self.train_data = resampled(self.plain_train, tokenizers, self.recipe, epoch)
                    batches = token_batches(
                        self.train_data.src.lengths + 1,
                        self.train_data.tgt.lengths + 1,  # type: ignore[union-attr]
                        cfg.batch_tokens,
                        seed=self.recipe.seed,
                        epoch=self.progress.epoch,
                    )
                    if self._train_epoch(batches, clock, signals):
                        return self.progress
                    self.progress.epoch += 1
                    self.progress.position = 0
                self._validate_unless_done()
        except TrainingInterrupted:
            raise
        except KeyboardInterrupt:  # a second Ctrl-C: stop at once, without saving
            last = self.run.read_pointer("last") if self.dist.is_main else None
            TrainingReport.hard_stop(self.progress.step + 1, self.run.path / last if last else None)
            raise
        finally:
            bar.close()
        return self.progress

    def _announce(self) -> None:
        parameters = sum(p.numel() for p in self.model.parameters())
        TrainingReport.start(self.device, self.precision, len(self.train_data), parameters)
        if self.dist.is_main:
            self.report.batch_size(self.cfg.batch_tokens, self.dist.world_size, self.cfg.accumulate)

    def _train_epoch(self, batches: list[Any], clock: Clock, signals: StopSignals) -> bool:
        """The updates left in this epoch's ``batches``; True when training must end
        (early stopping, the budget; a stop signal leaves by TrainingInterrupted)."""
        cfg = self.cfg
        per_update = self.dist.world_size * cfg.accumulate
        while self.progress.position < len(batches):
            # this rank's shard: micro-batch j of the update is j * ranks + rank
            first = self.progress.position + self.dist.rank
            micro = [
                batches[(first + j * self.dist.world_size) % len(batches)]
                for j in range(cfg.accumulate)
            ]
            self.progress.position += per_update
            stats = self.train_step(micro)
            self.progress.step += 1
            self.progress.elapsed = time.monotonic() - clock.started
            if stats is not None:
                clock.window.add(stats)
            clock.bar.update(1)
            if self.progress.step % TRIM_EVERY_STEPS == 0:
                release_memory()
            threads.tick()  # fewer compute threads while the machine is busy
            if self.progress.step % cfg.log_every == 0:
                self._log_window(clock.window, clock.bar)
            if self.progress.step % cfg.validate_every == 0:
                if self.validate_and_save():
                    return True  # early stopping
                self.progress.elapsed = time.monotonic() - clock.started
            budget, signum = self._should_stop_now(signals.received)
            if signum:
                self._stop_for_signal(signum)
            if budget:
                self._validate_unless_done()
                return True
        return False

    def _stop_for_signal(self, signum: int) -> None:
        """Save the finished step, then leave with a message on how to resume."""
        if self._validated_at != self.progress.step:
            self.save(best=False)
        name = signal.Signals(signum).name
        message = (
            f"{name}: stopped after step {self.progress.step} and saved {self.run.path}; "
            f"resume with: seq2seq train {self.run.recipe}"
        )
        log.warning(message)
        raise TrainingInterrupted(message, signum)

    def train_step(self, micro: list[Any]) -> tuple[float, float, int] | None:
        """One update from this rank's micro-batches (example indices each); returns
        (loss sum, nll sum, tokens), or None when a NaN/inf loss made every rank skip it.

        The gradient is the sum over every target token of the update (all micro-batches,
        all ranks) divided by their number, so N ranks x batch B equals one rank
        accumulating N batches B, up to float summation order.
        """
        batches = [
            make_batch(self.train_data.src, self.train_data.tgt, indices).to(self.device)
            for indices in micro
        ]
        local_tokens = sum(b.num_tgt_tokens for b in batches)
        (all_tokens,) = all_reduce_sum([float(local_tokens)], self.device)
        weight = self.dist.world_size / max(all_tokens, 1.0)  # DDP averages over ranks
        spent = budget_share(self.cfg, self.progress.step + 1, self._agreed_elapsed)
        self.schedule.apply(self.optimizer, self.progress.step + 1, spent)
        ratio = teacher_forcing_ratio(
            self.cfg.teacher_forcing,
            self.cfg.teacher_forcing_schedule,
            self.cfg.teacher_forcing_steps,
            self.progress.step,
        )
        self.net.train()
        loss_sum = nll_sum = 0.0
        for j, batch in enumerate(batches):
            last = j == len(batches) - 1
            sync: contextlib.AbstractContextManager = contextlib.nullcontext()
            if not last and isinstance(self.net, torch.nn.parallel.DistributedDataParallel):
                sync = self.net.no_sync()  # gradients are all-reduced once, after the last
            with sync:
                loss, nll = self._batch_loss(self.net, batch, ratio, self.cfg.label_smoothing)
                self.scaler.scale(loss * weight).backward()
            loss_sum += float(loss.detach())
            nll_sum += float(nll)
        grad_norm = math.nan
        if self.cfg.clip_norm > 0:
            self.scaler.unscale_(self.optimizer)
            grad_norm = float(
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip_norm)
            )
        if self._skip_nonfinite(loss_sum, grad_norm):
            self.optimizer.zero_grad(set_to_none=True)
            if self.precision == "fp16":
                self.scaler.update(self.scaler.get_scale() / 2)  # fp16 overflow: smaller scale
            return None
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        return loss_sum, nll_sum, local_tokens

    def _batch_loss(
        self, net: torch.nn.Module, batch: Any, teacher_forcing: float, smoothing: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, nll) sums of one batch (``loss.batch_loss``) in this run's precision."""
        forward = autocast(self.precision, self.device)
        return batch_loss(net, self.model.decoder, batch, teacher_forcing, smoothing, forward)

    def _skip_nonfinite(self, loss: float, grad_norm: float) -> bool:
        """Whether this update must be skipped: a NaN/inf loss on any rank, or (outside
        fp16, where the scaler skips overflowing steps itself) a NaN/inf gradient. Raises
        TrainingError after ``train.max_nonfinite_steps`` of them in a row."""
        bad_grad = (
            self.precision != "fp16" and self.cfg.clip_norm > 0 and not math.isfinite(grad_norm)
        )
        (bad,) = all_reduce_sum([float(not math.isfinite(loss) or bad_grad)], self.device)
        what = "the loss" if not math.isfinite(loss) else "the gradient"
        return count_nonfinite(
            self.progress, bool(bad), what, self.cfg.max_nonfinite_steps, self._run_path()
        )

    # ---- validation, checkpoints, stopping ---------------------------------------------
    def validate_and_save(self) -> bool:
        """Validate, save (best and last), update the LR plateau and early stopping.
        Returns True when early stopping says to stop."""
        self._validated_at = self.progress.step
        metrics = self.validate()
        improved = broadcast_flag(self._record(metrics), self.device)  # rank 0 validated
        self.schedule.on_validation(improved)
        self.save(best=improved)
        stop = (
            bool(self.cfg.early_stop.patience)
            and self.progress.bad_validations >= self.cfg.early_stop.patience
        )
        if stop:
            log.info(
                "early stopping: no improvement in %d validations", self.progress.bad_validations
            )
        return broadcast_flag(stop, self.device)

    def _validate_unless_done(self) -> None:
        """Validate and save at the final step unless that step was just validated."""
        if self._validated_at != self.progress.step:
            self.validate_and_save()

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        metrics: dict[str, float] = {
            "step": self.progress.step,
            "epoch": self.progress.epoch,
            "minutes": round(self.progress.elapsed / 60, 2),
            "lr": float(f"{self._lr_now():.4g}"),  # a cosine's rate, readable in the log
        }
        valid = self.valid_data
        if valid is None or valid.tgt is None or not self.dist.is_main:
            return metrics
        self.model.eval()
        loss = valid_loss(self.model, valid, self.cfg.batch_tokens, self.device, self._batch_loss)
        metrics["loss"] = round(loss, 4)
        metrics["ppl"] = round(math.exp(min(metrics["loss"], 50.0)), 3)
        if self.cfg.valid_bleu and valid.corpus.tgt is not None:
            search = replace(self.recipe.search, beam_size=self.cfg.valid_beam_size, nbest=1)
            metrics["bleu"] = valid_bleu(self.model, valid, search, self.tgt_tok, self.device)
        self.model.train()
        self.report.valid(self.progress.step, metrics)
        return metrics

    def _record(self, metrics: dict[str, float]) -> bool:
        """Append ``metrics`` to metrics.jsonl; update the best value and patience.
        Returns whether this validation is the best so far."""
        better = improved(
            self.progress, self.cfg.early_stop.metric, metrics.get(self.cfg.early_stop.metric)
        )
        if self.dist.is_main:
            self.run.append_metrics({**metrics, "best": self.progress.best})
        return better

    def save(self, best: bool) -> None:
        """A checkpoint of this step on rank 0 (``RunDir.save_checkpoint``: atomic, and a
        failed write is one ``CheckpointError`` that leaves the previous one whole)."""
        if self.dist.is_main:
            self.run.save_checkpoint(
                self.model, self.progress.step, self.state_dict, best, self.cfg.keep_all_checkpoints
            )

    def _should_stop_now(self, signum: int) -> tuple[bool, int]:
        """(the budget is spent, on rank 0's clock; a signal any rank received, or 0),
        agreed by every rank in one reduction, which also hands every rank rank 0's
        elapsed time for the next update's learning rate."""
        budget = budget_spent(self.cfg, self.progress)
        main = self.dist.is_main
        local = [float(budget and main), float(signum), self.progress.elapsed if main else 0.0]
        budget_all, signum_all, self._agreed_elapsed = all_reduce_sum(local, self.device)
        if budget_all:
            log.info(
                "stopping at step %d after %.1f minutes",
                self.progress.step,
                self.progress.elapsed / 60,
            )
        if signum_all and not signum:
            signum = signal.SIGTERM  # another rank was signalled: stop with it
        return bool(budget_all), signum

    # ---- state ---------------------------------------------------------------------------
    def state_dict(self, weights: str) -> dict[str, Any]:
        """Everything exact resume needs besides the weights (``weights`` names them)."""
        return {
            "weights": weights,
            **self.progress.as_state(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict(),
            **rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.progress = Progress.from_state(state)
        self._agreed_elapsed = self.progress.elapsed
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        if state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        if not self.dist.is_main:  # the state holds rank 0's streams: keep ranks distinct
            seed = self.recipe.seed + self.dist.rank * 1_000_003 + self.progress.step
            torch.manual_seed(seed)
            random.seed(seed)
            return
        restore_rng(state)

    def write_recipe(self) -> None:
        if self.dist.is_main:
            self.run.save_text(self.run.recipe, dump_recipe(self.recipe))

    def _run_path(self) -> Path:  # tools/benchmark.py trains without a run directory
        return self.run.path if self.run is not None else Path("(no run directory)")

    # ---- logging -------------------------------------------------------------------------
    def _lr_now(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def _log_window(self, window: RateWindow, bar: tqdm) -> None:
        loss, nll, tokens, seconds = window.take()
        (tokens_all,) = all_reduce_sum([float(tokens)], self.device)
        rate = tokens_all / max(seconds, 1e-9)
        bar.set_postfix(loss=f"{loss:.3f}", lr=f"{self._lr_now():.2e}", tok_s=f"{rate:,.0f}")
        if self.dist.is_main:
            self.report.train(self.progress, loss, nll, self._lr_now(), rate)
