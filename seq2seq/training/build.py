"""From a recipe to a trained run directory: the builders, resume, then ``Trainer.fit``."""

from __future__ import annotations

import logging
import random
import shutil
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist

from seq2seq.checkpoint import CheckpointError, RunDir
from seq2seq.config import ConfigError, Recipe, load_recipe, recipe_to_dict
from seq2seq.data.dataset import build_tokenizers, encode_examples, load_corpus
from seq2seq.data.readers import Corpus
from seq2seq.data.tokenizer import Tokenizer
from seq2seq.model.encoder_decoder import build_model
from seq2seq.training.distributed import (
    DistInfo,
    broadcast_object,
    cleanup_distributed,
    setup_distributed,
)
from seq2seq.training.trainer import Trainer

log = logging.getLogger(__name__)

# sections that must not change when a run resumes: they define the weights' meaning
_FIXED_ON_RESUME = ("task", "data", "tokenizer", "model")


def run_training(recipe: Recipe, device: str | None = None) -> RunDir:
    """Train (or resume) the run ``recipe.output_dir``; returns it."""
    dist_info = setup_distributed(device)
    if not dist_info.is_main:  # rank 0 alone reports progress; the others warn only
        logging.getLogger().setLevel(max(logging.getLogger().level, logging.WARNING))
    if recipe.train.num_threads:
        torch.set_num_threads(recipe.train.num_threads)
    run = RunDir(recipe.output_dir)
    source = _resume_source(recipe, run) if dist_info.is_main else None  # rank 0 decides
    if dist_info.is_main:
        run.path.mkdir(parents=True, exist_ok=True)
        _log_to_file(run.log)
        if source is not None and source.path != run.path and not run.tokenizer_dir.exists():
            shutil.copytree(source.tokenizer_dir, run.tokenizer_dir)  # ids must not change
    _seed(recipe.seed + dist_info.rank)

    train_corpus = load_corpus(recipe, "train")
    valid_corpus = load_corpus(recipe, "valid") if "valid" in recipe.data.splits else None
    tokenizers = _shared_tokenizers(recipe, run, train_corpus, dist_info)
    train = encode_examples(train_corpus, *tokenizers, max_len=recipe.data.max_len)
    valid = encode_examples(valid_corpus, *tokenizers) if valid_corpus is not None else None
    log.info(
        "train: %d pairs (%d dropped); valid: %d",
        len(train),
        train.dropped,
        len(valid) if valid else 0,
    )

    model = build_model(recipe.model, len(tokenizers[0]), len(tokenizers[1]))
    state = None
    if source is not None:  # rank 0 reads; DDP then copies its weights to every rank
        state = source.load_trainer_state()
        source.load_weights(model, state["weights"])
        log.info("resuming from %s at step %d", source.path, state["step"])
    state = broadcast_object(state, dist_info.device)
    trainer = Trainer(recipe, run, model, tokenizers, train, valid, dist_info)
    if state is not None:
        trainer.load_state_dict(state)
    trainer.write_recipe()
    try:
        trainer.fit()
        _barrier(dist_info)  # the others wait for rank 0's last validation and save
    finally:
        cleanup_distributed()  # a rank that exits with gloo threads alive aborts (SIGABRT)
    return run


def _resume_source(recipe: Recipe, run: RunDir) -> RunDir | None:
    """The run directory whose last checkpoint training continues from, or None.

    ``train.resume``: auto (output_dir's own, if any), never (refuse one), require (refuse
    to start fresh), or a run directory to start from. Once output_dir has a checkpoint of
    its own, rerunning the same command continues from that one, whatever the mode.
    """
    mode = recipe.train.resume
    has_state = run.trainer_state.is_file()
    if mode == "never" and has_state:
        raise CheckpointError(
            f"{run.path} already holds a trained run; "
            "choose another output_dir or train.resume=auto"
        )
    if mode == "require" and not has_state:
        raise CheckpointError(
            f"{run.trainer_state}: train.resume=require but there is no checkpoint"
        )
    source = run if has_state else None
    if source is None and mode not in ("auto", "never", "require"):
        source = RunDir(mode)
        if not source.trainer_state.is_file():
            raise CheckpointError(
                f"train.resume={mode}: no trainer_state.pt there (give a run directory)"
            )
    if source is not None and source.recipe.is_file():
        saved = recipe_to_dict(load_recipe(source.recipe))
        new = recipe_to_dict(recipe)
        for section in _FIXED_ON_RESUME:
            if saved[section] != new[section]:
                raise ConfigError(
                    f"{source.recipe}: section '{section}' differs from the run being resumed; "
                    "use another output_dir to train a different model"
                )
    return source


def _shared_tokenizers(
    recipe: Recipe, run: RunDir, train_corpus: Corpus, info: DistInfo
) -> tuple[Tokenizer, Tokenizer]:
    """Rank 0 loads (or trains) the run's tokenizers and sends their files to the other
    ranks, which load private copies: no rank but 0 reads or writes the run directory."""
    if info.world_size == 1:
        return build_tokenizers(recipe, run.tokenizer_dir, train_corpus)
    files = None
    if info.is_main:
        build_tokenizers(recipe, run.tokenizer_dir, train_corpus)
        files = {
            p.name: p.read_bytes()
            for p in run.tokenizer_dir.iterdir()
            if p.name.endswith((".model", ".vocab.json"))
        }
    files = broadcast_object(files, info.device)
    if info.is_main:
        return build_tokenizers(recipe, run.tokenizer_dir, None)
    private = Path(tempfile.mkdtemp(prefix=f"seq2seq-rank{info.rank}-"))
    for name, data in files.items():
        (private / name).write_bytes(data)
    return build_tokenizers(recipe, private, None)


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
