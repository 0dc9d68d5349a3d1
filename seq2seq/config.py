"""Recipes: frozen dataclasses holding the only defaults, loaded from YAML plus overrides.

A recipe is a YAML file whose keys mirror these dataclasses. ``load_recipe(path, overrides)``
applies ``key=value`` overrides (values parsed as YAML, keys dotted: ``train.lr=3e-4``),
rejects unknown keys with the nearest valid one, checks every value's type, then checks
the relations between fields. Only builders read these objects; constructors take plain
arguments.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import reprlib
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml


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
class Windows:
    """format: windows -- a text file cut into (preceding context -> next span) examples."""

    context: int = ranged(256, 1, 1_000_000)  # characters of preceding text in the source, at most
    span: int = ranged(128, 1, 100_000)  # characters in the target
    # characters between the starts of consecutive training windows
    stride: int = ranged(64, 1, 1_000_000)
    # share of training windows whose context is cut short
    short_context: float = ranged(0.25, 0.0, 1.0)


@dataclass(frozen=True)
class Data:
    """Where the examples live. ``root`` is relative to ``$SEQ2SEQ_DATA`` unless absolute.

    ``format`` says how a split is read (seq2seq/data/readers.py and the task readers):
    text: ``<split>.<src_lang>`` / ``<split>.<tgt_lang>`` line-parallel files; hf: a
    Hugging Face dataset; windows: ``files`` cut into context -> continuation windows
    (train = the first 1 - holdout of the characters, valid = the rest); canard: CANARD
    TSV (``<split>.tsv`` + ``<split>.answer_terms.tsv``); chorales: Bach chorales from the
    JSB JSON (``files``; splits are its keys) or ``files: music21`` (the corpus inside
    music21, held out by hash); abc: ABC tune books (``files`` glob, held out by hash).
    """

    root: str = "."
    format: Literal["text", "hf", "windows", "canard", "chorales", "abc"] = "text"
    src_lang: str = "src"
    tgt_lang: str = "tgt"
    splits: dict[str, str] = field(default_factory=lambda: {"train": "train", "valid": "valid"})
    # training pairs with more tokens on either side are dropped (and counted)
    max_len: int = ranged(100, 1, 100_000)
    files: str = ""  # windows / chorales / abc: the file (or glob) under root
    # share held out as 'valid' (and again as 'test') where no split exists
    holdout: float = ranged(0.1, 0.0, 0.5, open_hi=True)
    windows: Windows = field(default_factory=Windows)
    # canard: previous questions of the dialog added to the source
    context_turns: int = ranged(3, 0, 100)
    # chorales/abc training split: semitone shifts added
    transpose: tuple[int, int] = ranged((0, 0), -24, 24)


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
    schedule: Literal["constant", "inverse_sqrt", "plateau"] = "plateau"
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
    constrained: bool = False  # follow the task's output grammar (music: chorale harmony)
    # weights' dtype when decoding a trained run: auto = bf16 where the device runs it fast
    # (CPUs with AVX512-BF16, CUDA with bf16), else fp32; int8 = the decoder's per-step
    # products (LSTM layers, attentional layer, output projection) in int8 with oneDNN
    # (CPU only; --quantize int8; model/quantize.py). Log-probs are always fp32.
    precision: Literal["auto", "fp32", "bf16", "int8"] = "auto"


@dataclass(frozen=True)
class Recipe:
    task: Literal["translation", "text_generation", "music", "query_expansion"] = "translation"
    seed: int = ranged(1, 0, 2**32 - 1)
    output_dir: str = "runs/default"
    data: Data = field(default_factory=Data)
    tokenizer: Tokenizer = field(default_factory=Tokenizer)
    model: Model = field(default_factory=Model)
    train: Train = field(default_factory=Train)
    search: Search = field(default_factory=Search)


# --------------------------------------------------------------------------- loading


def load_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Read a recipe file, apply ``key=value`` overrides, validate, return a ``Recipe``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: recipe file not found")
    raw = _read_yaml_mapping(path, "a recipe")
    apply_overrides(raw, overrides)
    return recipe_from_dict(raw, source=str(path))


def recipe_from_dict(raw: dict[str, Any], source: str = "recipe") -> Recipe:
    """Build and validate a ``Recipe`` from a plain nested dict."""
    raw = _merge_tokenizer_spec(raw, source)
    try:
        recipe = _build(Recipe, raw, prefix="")
        validate(recipe)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    return recipe


def apply_overrides(raw: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> None:
    """Set ``a.b.c=value`` entries in ``raw`` in place; values are parsed as YAML."""
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {_short(item)}: expected key=value, e.g. train.lr=3e-4")
        value = _yaml_value(text)
        node = raw
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {_short(item)}: {_short(part)} is not a section")
            node = child
        node[parts[-1]] = value


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    """A plain dict (YAML-safe) of every field, defaults included."""

    def plain(value: Any) -> Any:
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(recipe))


def dump_recipe(recipe: Recipe) -> str:
    return yaml.safe_dump(recipe_to_dict(recipe), sort_keys=False, allow_unicode=True)


def with_search(recipe: Recipe, **changes: Any) -> Recipe:
    """``recipe`` with ``search`` fields changed, each converted and range-checked as a
    recipe file's would be, then the cross-field rules checked: the typed way to change
    decoding (``with_search(recipe, beam_size=5, nbest=2)``). Nothing changes on error."""
    search = replace_checked(recipe.search, "search.", **changes)
    updated = dataclasses.replace(recipe, search=search)
    validate(updated)
    return updated


def replace_checked(obj: Any, prefix: str = "", **changes: Any) -> Any:
    """``dataclasses.replace`` for a config section, with each changed field checked:
    an unknown name (with the nearest), a wrong type, a value out of range raise."""
    hints = typing.get_type_hints(type(obj))
    fields = {f.name: f for f in dataclasses.fields(obj)}
    converted = {}
    for key, value in changes.items():
        if key not in fields:
            near = difflib.get_close_matches(key[:100], list(fields), n=1, cutoff=0.5)
            hint = f"; did you mean '{prefix}{near[0]}'?" if near else ""
            raise ConfigError(f"unknown key '{prefix}{key[:100]}'{hint}")
        converted[key] = _convert(hints[key], value, f"{prefix}{key}")
        _check_range(fields[key], converted[key], f"{prefix}{key}")
    return dataclasses.replace(obj, **converted)


def parse_overrides(overrides: Sequence[str], section: str) -> dict[str, Any]:
    """``key=value`` strings of one section (``beam_size=3`` or ``search.beam_size=3``;
    values read as YAML) -> ``{key: value}``, for the faces that take such strings."""
    parsed: dict[str, Any] = {}
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {_short(item)}: expected key=value, e.g. beam_size=5")
        name = key.removeprefix(section + ".")
        if "." in name:
            raise ConfigError(
                f"override {_short(item)}: only {section}.* keys apply here, e.g. beam_size=5"
            )
        parsed[name] = _yaml_value(text)
    return parsed


def _yaml_value(text: str) -> Any:
    """A ``key=value`` override's value: YAML (``3``, ``true``, ``null``, ``[1, 2]``), or
    the text itself where it is not valid YAML."""
    try:
        return yaml.safe_load(text) if text else None
    except (yaml.YAMLError, ValueError):  # ValueError: an integer of over 4,300 digits
        return text


def validate(recipe: Recipe) -> None:
    """Checks that involve more than one field."""
    m, tok, tr, se = recipe.model, recipe.tokenizer, recipe.train, recipe.search
    if m.decoder.copy and not tok.joint:
        raise ConfigError("model.decoder.copy: true needs tokenizer.joint: true (copied ids)")
    if m.share_embeddings and not tok.joint:
        raise ConfigError("model.share_embeddings: true needs tokenizer.joint: true")
    memory_dim = m.encoder.hidden_dim * (2 if m.encoder.bidirectional else 1)
    for key, value, other in (
        ("attention", "dot", "general or bahdanau"),
        ("bridge", "copy", "linear"),
    ):
        if getattr(m.decoder, key) == value and memory_dim != m.decoder.hidden_dim:
            raise ConfigError(
                f"model.decoder.{key}: {value} needs decoder.hidden_dim ({m.decoder.hidden_dim}) "
                f"== encoder output size ({memory_dim}); use {other}"
            )
    # each field's own range is checked where it is declared (``ranged``); these relate fields
    checks: list[tuple[bool, str]] = [
        (bool(tr.resume.strip()), "train.resume: empty; give auto, never, require or a run"),
        (
            recipe.data.transpose[0] <= 0 <= recipe.data.transpose[1],
            f"data.transpose: {list(recipe.data.transpose)} must be [down <= 0, up >= 0]",
        ),
        (
            se.sampling or se.nbest <= se.beam_size,
            f"search.nbest: {se.nbest} outputs need search.beam_size >= {se.nbest} "
            f"(it is {se.beam_size}) unless search.sampling",
        ),
        (
            not (se.sampling and se.no_repeat_ngram),
            "search.no_repeat_ngram: not applied when sampling; set it to 0 "
            "or search.sampling=false",
        ),
        (
            not (se.sampling and se.coverage_penalty),
            "search.coverage_penalty: a beam search score, not applied when sampling; "
            "set it to 0 or search.sampling=false",
        ),
        (
            se.max_len_a > 0 or se.max_len_b >= 1,
            "search.max_len_a and search.max_len_b: both 0 leaves no room for any output",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    if "train" not in recipe.data.splits:
        raise ConfigError("data.splits: needs a 'train' entry")


# --------------------------------------------------------------------------- internals


def _lookup(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())


def _merge_tokenizer_spec(raw: dict[str, Any], source: str) -> dict[str, Any]:
    """Fold ``tokenizer.spec`` (a YAML file of defaults) into the tokenizer section."""
    tok = raw.get("tokenizer")
    if not isinstance(tok, dict) or not tok.get("spec"):
        return raw
    spec_path = resolve_project_path(str(tok["spec"]))
    if spec_path is None:
        raise ConfigError(f"{source}: tokenizer.spec: file not found: {tok['spec']}")
    spec = _read_yaml_mapping(spec_path, "a tokenizer spec")
    merged = {**spec, **{k: v for k, v in tok.items() if k != "spec"}, "spec": None}
    return {**raw, "tokenizer": merged}


def _read_yaml_mapping(path: Path, what: str) -> dict[str, Any]:
    """A YAML file holding a mapping (an empty file is an empty mapping)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {_one_line(err)[:300]}") from None
    except ValueError as err:  # e.g. an integer of over 4,300 digits
        raise ConfigError(f"{path}: unreadable value: {_one_line(err)[:200]}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: {what} must be a mapping of keys, got {type(data).__name__}")
    return data


def resolve_project_path(name: str) -> Path | None:
    """A file named relative to the working directory, else to the project checkout."""
    for base in (Path.cwd(), Path(__file__).resolve().parent.parent):
        candidate = (base / name).resolve()
        if candidate.is_file():
            return candidate
    return None


def _build(cls: type, raw: Any, prefix: str) -> Any:
    where = prefix.rstrip(".") or "recipe"
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a section (mapping), got {_short(raw)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in raw.items():
        if key not in fields:
            shown = str(key)[:100]  # a key can be any size: keep the message (and search) small
            near = difflib.get_close_matches(shown, list(fields), n=1, cutoff=0.5)
            hint = (
                f"; did you mean '{prefix}{near[0]}'?"
                if near
                else f"; valid keys: {', '.join(fields)}"
            )
            raise ConfigError(f"unknown key '{prefix}{shown}'{hint}")
        kwargs[key] = _convert(hints[key], value, f"{prefix}{key}")
        _check_range(fields[key], kwargs[key], f"{prefix}{key}")
    return cls(**kwargs)


def _check_range(spec: dataclasses.Field, value: Any, key: str) -> None:
    """``value`` (a number, or each number of a tuple; None passes) within the field's
    ``Range``, else a ``ConfigError`` naming the key, the value and the range."""
    bounds = spec.metadata.get("range")
    if bounds is None or value is None:
        return
    for x in value if isinstance(value, tuple) else (value,):
        if not (math.isfinite(x) and bounds.admits(x)):
            raise ConfigError(f"{key}: {_short(x)} is out of range (needs {bounds})")


def _short(value: Any) -> str:
    """A value for an error message: bounded in size and in the time it takes, whatever
    the value (a YAML alias bomb can nest a billion references)."""
    return _REPR.repr(value)


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlevel = 3


def _convert(tp: Any, value: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert where lossless."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key + ".")  # type: ignore[arg-type]
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, key)
    if origin is Literal:
        if value not in args:
            raise ConfigError(
                f"{key}: expected one of {', '.join(map(repr, args))}, got {_short(value)}"
            )
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {_short(value)}")
        return {str(k): _convert(args[1], v, f"{key}.{k}") for k, v in value.items()}
    if origin is tuple:
        if not isinstance(value, list | tuple) or len(value) != len(args):
            raise ConfigError(f"{key}: expected a list of {len(args)} values, got {_short(value)}")
        return tuple(_convert(a, v, key) for a, v in zip(args, value, strict=True))
    return _convert_scalar(tp, value, key)


def _convert_scalar(tp: Any, value: Any, key: str) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
    name = getattr(tp, "__name__", str(tp))
    raise ConfigError(f"{key}: expected {name}, got {_short(value)} ({type(value).__name__})")
