"""From a recipe to a trained run directory: the builders, resume, then ``Trainer.fit``."""

from __future__ import annotations

import contextlib
import logging
import random
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from seq2seq.checkpoint import CheckpointError, RunDir
from seq2seq.config import ConfigError, Recipe, load_recipe, recipe_to_dict
from seq2seq.data.dataset import build_tokenizers, encode_examples, load_corpus
from seq2seq.data.lexicon import FILE_NAME as LEXICON_FILE
from seq2seq.data.lexicon import write_run_lexicon
from seq2seq.data.readers import Corpus
from seq2seq.data.tokenizer import Tokenizer
from seq2seq.model.encoder_decoder import build_model
from seq2seq.training.distributed import (
    DistInfo,
    broadcast_object,
    cleanup_distributed,
    setup_distributed,
)
from seq2seq.training.faults import TrainingError
from seq2seq.training.progress import Progress, finished_reason
from seq2seq.training.trainer import Trainer

log = logging.getLogger(__name__)

# sections that must not change when a run resumes: they define the weights' meaning
_FIXED_ON_RESUME = ("task", "data", "tokenizer", "model")


# the lexical table for vocabulary shortlists (search.shortlist) is learned before
# training starts (seconds; an interrupted run has it too) where the recipe searches
# with a shortlist or the target vocabulary is large enough for one to pay (not for
# music symbols or characters)
SHORTLIST_MIN_VOCAB = 1000


def run_training(recipe: Recipe, device: str | None = None) -> RunDir:
    """Train (or resume) the run ``recipe.output_dir``; returns it. Rank 0 holds the run
    directory's lock for the whole training: a second training of it is refused."""
    dist_info = setup_distributed(device)
    if not dist_info.is_main:  # rank 0 alone reports progress; the others warn only
        logging.getLogger().setLevel(max(logging.getLogger().level, logging.WARNING))
    if recipe.train.num_threads:
        torch.set_num_threads(recipe.train.num_threads)
    run = RunDir(recipe.output_dir)
    try:
        with contextlib.ExitStack() as hold:
            source = None
            failure: Exception | None = None
            if dist_info.is_main:  # rank 0 decides; the others learn of a refusal
                try:
                    hold.enter_context(run.lock())
                    run.remove_debris()
                    source = _resume_source(recipe, run)
                except (CheckpointError, ConfigError) as err:
                    failure = err
            reason = broadcast_object(str(failure) if failure else None, dist_info.device)
            if failure is not None:
                raise failure
            if reason is not None:
                raise TrainingError(f"rank 0 refused to train: {reason}")
            state = source.load_trainer_state() if source is not None else None
            finished = broadcast_object(
                finished_reason(recipe.train, Progress.from_state(state)) if state else None,
                dist_info.device,
            )
            if finished:
                log.warning(
                    "%s is finished (%s): nothing to train. Raise that limit to train on, "
                    "or choose another output_dir to start afresh",
                    run.path,
                    finished,
                )
                return run
            if dist_info.is_main:
                hold.enter_context(_log_to_file(run.log))
            _train(recipe, run, source, state, dist_info)
            _barrier(dist_info)  # the others wait for rank 0's last validation and save
    finally:
        cleanup_distributed()  # a rank that exits with gloo threads alive aborts (SIGABRT)
    return run


def _train(
    recipe: Recipe,
    run: RunDir,
    source: RunDir | None,
    state: dict[str, Any] | None,
    dist_info: DistInfo,
) -> None:
    """Build everything from the recipe and fit, from ``source``'s checkpoint (its
    trainer ``state``, read on rank 0) if given."""
    fresh_copy = source is not None and source.path != run.path and not run.tokenizer_dir.exists()
    if dist_info.is_main and fresh_copy:
        assert source is not None
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
    if source is not None and state is not None:  # rank 0; DDP copies its weights to all
        source.load_weights(model, state["weights"])
        if source.path == run.path:
            run.trim_metrics(state["step"])
        log.info("resuming from %s at step %d", source.path, state["step"])
    state = broadcast_object(state, dist_info.device)
    table = run.path / LEXICON_FILE
    wanted = recipe.search.shortlist > 0 or len(tokenizers[1]) >= SHORTLIST_MIN_VOCAB
    if dist_info.is_main and wanted and not table.exists():
        assert train.tgt is not None
        write_run_lexicon(table, train.src, train.tgt, *tokenizers)
    trainer = Trainer(recipe, run, model, tokenizers, train, valid, dist_info)
    if state is not None:
        trainer.load_state_dict(state)
    trainer.write_recipe()
    trainer.fit()


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


@contextlib.contextmanager
def _log_to_file(path: Path) -> Iterator[None]:
    """Copy the log to ``path`` (appended) while the block runs."""
    root = logging.getLogger()
    handler = _QuietFileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()


class _QuietFileHandler(logging.FileHandler):
    """train.log: a failed write (disk full) stops the file log with one line on stderr
    instead of logging's traceback per record; training goes on (or fails at its save)."""

    def handleError(self, record: logging.LogRecord) -> None:
        logging.getLogger().removeHandler(self)
        print(
            f"seq2seq: warning: {self.baseFilename}: cannot write; log to file stopped",
            file=sys.stderr,
        )
