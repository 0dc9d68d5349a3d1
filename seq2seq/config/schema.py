"""The recipe schema: frozen dataclasses holding the only defaults, each number field with
its range (``ranged``), checked when a recipe loads (seq2seq/config/loading.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


class ConfigError(ValueError):
    """A recipe or override is invalid; the message names the key at fault."""


@dataclass(frozen=True)
class Range:
    """The values a number field accepts: ``lo <= x`` (``lo < x`` when ``open_lo``) and
    ``x <= hi`` (``x < hi`` when ``open_hi``). The upper bounds are far above any sane
    setting; they stop a typo from asking for terabytes or a search without end."""

    lo: float | None = None
    hi: float | None = None
    open_lo: bool = False
    open_hi: bool = False

    def admits(self, x: float) -> bool:
        low_ok = self.lo is None or (x > self.lo if self.open_lo else x >= self.lo)
        high_ok = self.hi is None or (x < self.hi if self.open_hi else x <= self.hi)
        return low_ok and high_ok

    def __str__(self) -> str:
        low = "" if self.lo is None else f"{_num(self.lo)} {'<' if self.open_lo else '<='} "
        high = "" if self.hi is None else f" {'<' if self.open_hi else '<='} {_num(self.hi)}"
        return f"{low}x{high}"


def ranged(default: Any, lo: float | None = None, hi: float | None = None, **opts: bool) -> Any:
    """A dataclass field with its default and its ``Range`` (checked when a recipe loads)."""
    return field(default=default, metadata={"range": Range(lo, hi, **opts)})


def _num(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"


BIG_COUNT = 1_000_000_000  # steps, sentences: far beyond any run


@dataclass(frozen=True)
class Data:
    """Where the examples live and how they are read. ``root`` is relative to
    ``$SEQ2SEQ_DATA`` unless absolute.

    ``format`` names a registered reader (seq2seq/config/plugins.py): the generic ``text``
    (``<split>.<src_lang>`` / ``<split>.<tgt_lang>`` line-parallel files) and ``hf`` (a
    Hugging Face dataset), and the formats of the task folders (windows, canard, chorales,
    abc, ...). A format's own settings sit in the section named after it, ``data.<format>``
    (e.g. ``data.windows.span``), typed by the class the format registers; ``options``
    holds that section once loaded (None: the format's defaults).
    """

    root: str = "."
    format: str = "text"
    src_lang: str = "src"
    tgt_lang: str = "tgt"
    splits: dict[str, str] = field(default_factory=lambda: {"train": "train", "valid": "valid"})
    # training pairs with more tokens on either side are dropped (and counted)
    max_len: int = ranged(100, 1, 100_000)
    options: Any = None


@dataclass(frozen=True)
class SubwordSampling:
    """Subword regularization (Kudo 2018), training batches only: every training sentence
    is encoded again each epoch with sentencepiece sampling. Unigram models sample from
    the lattice (``nbest`` best segmentations, -1 = all, smoothed by ``alpha``); BPE models
    drop merges with probability ``alpha`` (BPE-dropout). ``alpha`` 0 = off."""

    alpha: float = ranged(0.0, 0.0, 1.0)
    nbest: int = ranged(-1, -1, 1000)


@dataclass(frozen=True)
class Tokenizer:
    """A sentencepiece model trained on the training split at first use (see tokenizers/)."""

    spec: str | None = None  # YAML file with defaults for this section; merged at load time
    # unigram/bpe/char/word: sentencepiece. characters/symbols: an exact vocabulary of
    # characters or of whitespace-separated symbols (seq2seq/data/vocab.py)
    model_type: Literal["unigram", "bpe", "char", "word", "characters", "symbols"] = "unigram"
    vocab_size: int = ranged(8000, 8, 1_000_000)
    vocab_file: str | None = None  # symbols: a hand-written vocabulary (tokenizers/*.yaml)
    joint: bool = True  # one model for source and target
    character_coverage: float = ranged(1.0, 0.0, 1.0, open_lo=True)
    max_sentences: int = ranged(1_000_000, 1, BIG_COUNT)  # sentences sampled to train the tokenizer
    byte_fallback: bool = False
    # sentencepiece: no normalisation, spaces kept as typed, newline and tab are pieces
    # (text generation needs the layout back); default: NFKC and collapsed whitespace
    keep_whitespace: bool = False
    # an existing sentencepiece model to use instead of training one (copied into the run
    # directory; vocab_size and the training settings above are then the model's own):
    # the joint model, or the source side's with joint: false and tgt_model_file
    model_file: str | None = None
    tgt_model_file: str | None = None
    sampling: SubwordSampling = field(default_factory=SubwordSampling)


@dataclass(frozen=True)
class Encoder:
    hidden_dim: int = ranged(256, 1, 16_384)  # per direction
    layers: int = ranged(2, 1, 32)
    dropout: float = ranged(0.3, 0.0, 1.0, open_hi=True)
    bidirectional: bool = True


@dataclass(frozen=True)
class Decoder:
    hidden_dim: int = ranged(512, 1, 16_384)
    layers: int = ranged(2, 1, 32)
    dropout: float = ranged(0.3, 0.0, 1.0, open_hi=True)
    attention: Literal["general", "dot", "bahdanau"] = "general"
    input_feeding: bool = False
    bridge: Literal["linear", "copy", "zero"] = "linear"
    # DropConnect on the LSTM's hidden-to-hidden weights in training (AWD-LSTM's weight
    # drop, Merity et al. 2018): one mask per batch shared by every step, so the
    # recurrence is regularised without noise on the states themselves; 0 = off
    weight_drop: float = ranged(0.0, 0.0, 1.0, open_hi=True)
    # variational dropout (Gal & Ghahramani 2016; AWD-LSTM's locked dropout): the decoder's
    # embedding, between-layer and output dropouts draw one mask per sequence, shared by
    # every step, instead of one per step; needs input_feeding: false
    locked_dropout: bool = False
    # pointer-generator (See et al. 2017): mix the output distribution with the attention
    # over the source tokens, so a word can be copied; needs tokenizer.joint (same ids)
    copy: bool = False


@dataclass(frozen=True)
class Model:
    emb_dim: int = ranged(256, 1, 16_384)
    share_embeddings: bool = False  # one source/target embedding table (needs a joint vocabulary)
    tie_embeddings: bool = True  # target embedding table is also the output projection
    emb_dropout: float = ranged(0.3, 0.0, 1.0, open_hi=True)
    output_dropout: float = ranged(0.3, 0.0, 1.0, open_hi=True)
    # every weight drawn from U(-init_uniform, init_uniform) (OpenNMT-py's param_init);
    # 0 = torch's per-layer defaults, embeddings N(0, 1/emb_dim)
    init_uniform: float = ranged(0.0, 0.0, 1.0)
    encoder: Encoder = field(default_factory=Encoder)
    decoder: Decoder = field(default_factory=Decoder)


@dataclass(frozen=True)
class EarlyStop:
    metric: Literal["bleu", "loss", "ppl"] = "bleu"
    # validations without improvement before stopping; 0 = never stop early
    patience: int = ranged(0, 0, BIG_COUNT)


@dataclass(frozen=True)
class Train:
    batch_tokens: int = ranged(4096, 1, 10_000_000)  # padded tokens of the longer side per update
    optimizer: Literal["adam", "adamw"] = "adam"
    lr: float = ranged(1.0e-3, 0.0, 10.0, open_lo=True)
    betas: tuple[float, float] = ranged((0.9, 0.999), 0.0, 1.0, open_hi=True)
    weight_decay: float = ranged(0.0, 0.0, 10.0)
    # cosine: from lr down to min_lr over the budget (max_steps or max_minutes, whichever
    # ends first), for a fixed-budget run
    schedule: Literal["constant", "inverse_sqrt", "plateau", "cosine"] = "plateau"
    warmup_steps: int = ranged(0, 0, BIG_COUNT)
    plateau_factor: float = ranged(0.5, 0.0, 1.0, open_lo=True)
    # validations without improvement before the LR is cut
    plateau_patience: int = ranged(1, 0, BIG_COUNT)
    min_lr: float = ranged(1.0e-5, 0.0, 10.0)
    clip_norm: float = ranged(1.0, 0.0, 1e6)  # 0 disables clipping
    label_smoothing: float = ranged(0.1, 0.0, 1.0, open_hi=True)
    teacher_forcing: float = ranged(1.0, 0.0, 1.0)  # final probability of feeding the gold token
    teacher_forcing_schedule: Literal["constant", "linear", "inverse_sigmoid"] = "linear"
    # steps over which the ratio falls from 1 to its final value
    teacher_forcing_steps: int = ranged(4000, 0, BIG_COUNT)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    max_steps: int | None = ranged(None, 1, BIG_COUNT)
    max_epochs: int | None = ranged(None, 1, 1_000_000)
    max_minutes: float | None = ranged(None, 0.0, 1e7, open_lo=True)
    validate_every: int = ranged(500, 1, BIG_COUNT)
    valid_bleu: bool = True
    valid_beam_size: int = ranged(1, 1, 1000)
    early_stop: EarlyStop = field(default_factory=EarlyStop)
    # auto: continue from output_dir's last checkpoint if there is one; never: refuse an
    # output_dir that holds one; require: refuse to start fresh; a path: start from that run
    # directory's last checkpoint (output_dir's own, once it has one, wins on a rerun)
    resume: str = "auto"
    # batches per update (per rank): effective batch = tokens x ranks x this
    accumulate: int = ranged(1, 1, 10_000)
    # NaN/inf losses in a row before training stops with an error
    max_nonfinite_steps: int = ranged(5, 1, BIG_COUNT)
    keep_all_checkpoints: bool = False  # else only best and last stay on disk
    log_every: int = ranged(50, 1, BIG_COUNT)
    # torch intra-op threads on CPU; None = torch's default
    num_threads: int | None = ranged(None, 1, 4096)
    progress: bool = True


@dataclass(frozen=True)
class Search:
    """Decoding settings; the same keys in translate, evaluate, the shell and validation."""

    beam_size: int = ranged(5, 1, 1000)  # 1 = greedy
    nbest: int = ranged(1, 1, 1000)  # outputs per input (beam: best n; sampling: n samples)
    length_norm: Literal["gnmt", "average", "none"] = "gnmt"
    length_penalty: float = ranged(0.6, 0.0, 100.0)  # GNMT alpha, with length_norm: gnmt
    coverage_penalty: float = ranged(0.0, 0.0, 100.0)  # GNMT beta; 0 = off
    min_len: int = ranged(0, 0, 100_000)  # no EOS before this many tokens
    no_repeat_ngram: int = ranged(0, 0, 1000)  # forbid repeating an n-gram of this size; 0 = off
    max_len_a: float = ranged(1.5, 0.0, 1000.0)  # output at most a * source tokens + b
    max_len_b: int = ranged(10, 0, 100_000)
    sampling: bool = False  # draw outputs instead of searching
    temperature: float = ranged(1.0, 0.0, 1000.0, open_lo=True)
    top_k: int = ranged(0, 0, 1_000_000)  # 0 = no top-k cut
    top_p: float = ranged(1.0, 0.0, 1.0, open_lo=True)  # 1 = no nucleus cut
    seed: int | None = ranged(None, 0, 2**32 - 1)  # sampling seed; None = a fresh draw each time
    batch_size: int = ranged(64, 1, 100_000)  # sentences per decoding batch
    # greedy and sampling: decode `refill` batches as one group whose sentences join as
    # others end, so batch_size rows keep decoding while long outputs finish; 0 = off
    refill: int = ranged(8, 0, 1000)
    # batches decoded side by side on the CPU, each by its own thread with one compute
    # thread (Marian's --cpu-threads, CTranslate2's inter_threads); 0 = one per compute
    # thread (2 cores: greedy / 64 +47-86%, beam 5 / 64 +23-41%, README Speed); a single
    # batch keeps every thread. Greedy and beam search only: sampling draws in one
    # thread, so that a seed gives the same samples
    workers: int = ranged(0, 0, 256)
    constrained: bool = False  # follow the task's output grammar (music: chorale harmony)
    # score only a shortlist of the target vocabulary: per source token its N likeliest
    # translations in the run's shortlist.tsv (seq2seq shortlist RUN), plus the
    # shortlist_frequent most frequent target tokens; 0 = the whole vocabulary
    shortlist: int = ranged(0, 0, 1_000_000)
    shortlist_frequent: int = ranged(100, 0, 10_000_000)
    # weights' dtype when decoding a trained run: auto = bf16 where the device runs it fast
    # (CPUs with AVX512-BF16, CUDA with bf16), else fp32; int8 = the decoder's per-step
    # products (LSTM layers, attentional layer, output projection) in int8 with oneDNN
    # (CPU only; --quantize int8; model/quantize.py). Log-probs are always fp32.
    precision: Literal["auto", "fp32", "bf16", "int8"] = "auto"
    # what runs the model's steps: torch (eager PyTorch), onnx (ONNX Runtime over the run
    # exported once to RUN/onnx/, seq2seq/export/), auto = the faster on this machine's
    # CPU as measured (README, Speed): torch
    engine: Literal["auto", "torch", "onnx"] = "auto"


@dataclass(frozen=True)
class Recipe:
    task: str = "translation"  # a registered kind of work (seq2seq/tasks/<name>/)
    seed: int = ranged(1, 0, 2**32 - 1)
    output_dir: str = "runs/default"
    data: Data = field(default_factory=Data)
    tokenizer: Tokenizer = field(default_factory=Tokenizer)
    model: Model = field(default_factory=Model)
    train: Train = field(default_factory=Train)
    search: Search = field(default_factory=Search)
