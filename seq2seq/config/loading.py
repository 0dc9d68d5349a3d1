"""Loading recipes: YAML plus ``key=value`` overrides, unknown keys refused with the nearest
valid one, every value's type and range checked, then the relations between fields;
and the typed way to change a loaded recipe's search (``with_search``)."""

from __future__ import annotations

import dataclasses
import difflib
import math
import reprlib
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml

from seq2seq.config.legacy import upgrade_legacy_data
from seq2seq.config.plugins import check_task, get_format
from seq2seq.config.schema import ConfigError, Data, Recipe


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

    raw = plain(dataclasses.asdict(recipe))
    data = raw["data"]
    options = recipe.data.options or get_format(recipe.data.format).options()
    del data["options"]
    data[recipe.data.format] = plain(dataclasses.asdict(options))
    return raw


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


def with_data(recipe: Recipe, overrides: Sequence[str]) -> Recipe:
    """``recipe`` with ``data.*`` overrides (``data.windows.span=128``) applied and checked
    as a recipe file's would be: how a split is read, for scoring a run on another
    tiling. Any other key is an error naming it; nothing changes on error."""
    for item in overrides:
        if not item.startswith("data."):
            raise ConfigError(f"override {_short(item)}: only data.* keys apply here")
    raw = recipe_to_dict(recipe)
    apply_overrides(raw, list(overrides))
    return recipe_from_dict(raw, "data overrides")


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
    check_task(recipe.task)
    m, tok, tr, se = recipe.model, recipe.tokenizer, recipe.train, recipe.search
    if m.decoder.locked_dropout and m.decoder.input_feeding:
        raise ConfigError(
            "model.decoder.locked_dropout: true needs model.decoder.input_feeding: false"
        )
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
            tr.schedule != "cosine" or tr.max_steps is not None or tr.max_minutes is not None,
            "train.schedule: cosine decays over the budget; set train.max_steps or "
            "train.max_minutes",
        ),
        (
            se.sampling or se.nbest <= se.beam_size,
            f"search.nbest: {se.nbest} outputs need search.beam_size >= {se.nbest} "
            f"(it is {se.beam_size}) unless search.sampling",
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
    _check_model_files(tok)
    if "train" not in recipe.data.splits:
        raise ConfigError("data.splits: needs a 'train' entry")


def _check_model_files(tok: Any) -> None:
    """``tokenizer.model_file`` / ``tgt_model_file``: sentencepiece models, one per side."""
    if tok.tgt_model_file and not tok.model_file:
        raise ConfigError("tokenizer.tgt_model_file: needs tokenizer.model_file (the source's)")
    if tok.sampling.alpha and tok.model_type not in ("unigram", "bpe"):
        raise ConfigError(
            f"tokenizer.sampling.alpha: subword sampling needs a unigram or bpe model, "
            f"not model_type {tok.model_type}"
        )
    if not tok.model_file:
        return
    if tok.model_type in ("characters", "symbols"):
        raise ConfigError(
            f"tokenizer.model_file: a sentencepiece model; model_type {tok.model_type} "
            "builds its own vocabulary"
        )
    if tok.joint and tok.tgt_model_file:
        raise ConfigError(
            "tokenizer.tgt_model_file: a second model needs tokenizer.joint: false "
            "(with joint: true, model_file serves both sides)"
        )
    if not tok.joint and not tok.tgt_model_file:
        raise ConfigError(
            "tokenizer.model_file: with joint: false, give the target's as tokenizer.tgt_model_file"
        )


# --------------------------------------------------------------------------- internals


def single_line(text: object, limit: int = 1000) -> str:
    """Any message as one line of at most ``limit`` characters: errors quote user text
    and library messages, either of which may span lines or be of any size."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


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
        raise ConfigError(f"{path}: not valid YAML: {single_line(err, 300)}") from None
    except ValueError as err:  # e.g. an integer of over 4,300 digits
        raise ConfigError(f"{path}: unreadable value: {single_line(err, 200)}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: {what} must be a mapping of keys, got {type(data).__name__}")
    return data


def resolve_project_path(name: str) -> Path | None:
    """A file named relative to the working directory, else to the project checkout."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidate = (base / name).resolve()
        if candidate.is_file():
            return candidate
    return None


def _build(cls: type, raw: Any, prefix: str) -> Any:
    """A config section from its mapping: every key known, every value converted and
    range-checked (the ``data`` section also builds its format's options)."""
    where = prefix.rstrip(".") or "recipe"
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a section (mapping), got {_short(raw)}")
    if cls is Data:
        return _build_data(raw, prefix)
    return cls(**_fields_of(cls, raw, prefix, [f.name for f in dataclasses.fields(cls)]))


def _fields_of(cls: type, raw: dict[Any, Any], prefix: str, names: list[str]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in raw.items():
        if key not in names:
            shown = str(key)[:100]  # a key can be any size: keep the message (and search) small
            near = difflib.get_close_matches(shown, names, n=1, cutoff=0.5)
            hint = (
                f"; did you mean '{prefix}{near[0]}'?"
                if near
                else f"; valid keys: {', '.join(names)}"
            )
            raise ConfigError(f"unknown key '{prefix}{shown}'{hint}")
        kwargs[key] = _convert(hints[key], value, f"{prefix}{key}")
        _check_range(fields[key], kwargs[key], f"{prefix}{key}")
    return kwargs


def _build_data(raw: dict[Any, Any], prefix: str) -> Data:
    """The ``data`` section: its generic keys, and the format's own section
    ``data.<format>`` built as the class the format registered."""
    fmt = _convert(str, raw.get("format", "text"), f"{prefix}format")
    spec = get_format(fmt)
    raw = upgrade_legacy_data(raw, fmt, [f.name for f in dataclasses.fields(spec.options)])
    generic = [f.name for f in dataclasses.fields(Data) if f.name != "options"]
    kwargs = _fields_of(Data, {k: v for k, v in raw.items() if k != fmt}, prefix, [*generic, fmt])
    options = _build(spec.options, raw.get(fmt), f"{prefix}{fmt}.")
    return Data(**kwargs, options=options)


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
