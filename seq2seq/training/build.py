"""From a recipe to a trained run directory: the builders, resume, then ``Trainer.fit``."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import torch
import torch.distributed as dist

from seq2seq.checkpoint import CheckpointError, RunDir
from seq2seq.config import ConfigError, Recipe, load_recipe, recipe_to_dict
from seq2seq.data.dataset import build_tokenizers, encode_examples, load_corpus
from seq2seq.model.encoder_decoder import build_model
from seq2seq.training.distributed import DistInfo, setup_distributed
from seq2seq.training.trainer import Trainer

log = logging.getLogger(__name__)

# sections that must not change when a run resumes: they define the weights' meaning
_FIXED_ON_RESUME = ("task", "data", "tokenizer", "model")


def run_training(recipe: Recipe, device: str | None = None) -> RunDir:
    """Train (or resume) the run ``recipe.output_dir``; returns it."""
    dist_info = setup_distributed(device)
    if recipe.train.num_threads:
        torch.set_num_threads(recipe.train.num_threads)
    run = RunDir(recipe.output_dir)
    resuming = _resume_decision(recipe, run)
    if dist_info.is_main:
        run.path.mkdir(parents=True, exist_ok=True)
        _log_to_file(run.log)
    _seed(recipe.seed + dist_info.rank)

    train_corpus = load_corpus(recipe, "train")
    valid_corpus = load_corpus(recipe, "valid") if "valid" in recipe.data.splits else None
    if dist_info.is_main:
        tokenizers = build_tokenizers(recipe, run.tokenizer_dir, train_corpus)
    _barrier(dist_info)
    if not dist_info.is_main:
        tokenizers = build_tokenizers(recipe, run.tokenizer_dir, None)
    train = encode_examples(train_corpus, *tokenizers, max_len=recipe.data.max_len)
    valid = encode_examples(valid_corpus, *tokenizers) if valid_corpus is not None else None
    log.info(
        "train: %d pairs (%d dropped); valid: %d",
        len(train),
        train.dropped,
        len(valid) if valid else 0,
    )

    model = build_model(recipe.model, len(tokenizers[0]), len(tokenizers[1]))
    trainer = Trainer(recipe, run, model, tokenizers, train, valid, dist_info)
    if resuming:
        state = run.load_trainer_state()
        run.load_weights(trainer.model, state["weights"])
        trainer.load_state_dict(state)
        log.info(
            "resumed %s at step %d (epoch %d)",
            run.path,
            trainer.progress.step,
            trainer.progress.epoch,
        )
    trainer.write_recipe()
    trainer.fit()
    return run


def _resume_decision(recipe: Recipe, run: RunDir) -> bool:
    has_state = run.trainer_state.is_file()
    mode = recipe.train.resume
    if mode == "require" and not has_state:
        raise CheckpointError(
            f"{run.trainer_state}: train.resume=require but there is no checkpoint"
        )
    if mode == "never" and has_state:
        raise CheckpointError(
            f"{run.path} already holds a trained run; "
            "choose another output_dir or train.resume=auto"
        )
    if has_state and run.recipe.is_file():
        saved = recipe_to_dict(load_recipe(run.recipe))
        new = recipe_to_dict(recipe)
        for section in _FIXED_ON_RESUME:
            if saved[section] != new[section]:
                raise ConfigError(
                    f"{run.recipe}: section '{section}' differs from the run being resumed; "
                    "use another output_dir to train a different model"
                )
    return has_state


def _seed(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def _barrier(info: DistInfo) -> None:
    if info.world_size > 1 and dist.is_initialized():
        dist.barrier()


def _log_to_file(path: Path) -> None:
    root = logging.getLogger()
    if any(
        isinstance(h, logging.FileHandler) and Path(h.baseFilename) == path.resolve()
        for h in root.handlers
    ):
        return
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
