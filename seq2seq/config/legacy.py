"""Recipes of earlier layouts, read as today's: the one place that knows old keys."""

from __future__ import annotations

from typing import Any

from seq2seq.config.schema import ConfigError

# Keys that sat directly in ``data`` before each format had its own section, with their
# old defaults (run directories of that time hold every key). They move into the
# format's section where it has that option; one at its old default is dropped; any other
# is an error naming the key.
_LEGACY_DATA_KEYS: dict[str, Any] = {
    "files": "",
    "holdout": 0.1,
    "context_turns": 3,
    "transpose": [0, 0],
    "windows": {"context": 256, "span": 128, "stride": 64, "short_context": 0.25},
}


def upgrade_legacy_data(raw: dict[Any, Any], fmt: str, options: list[str]) -> dict[Any, Any]:
    legacy = [k for k in _LEGACY_DATA_KEYS if k in raw and k != fmt]
    if not legacy:
        return raw
    raw = dict(raw)
    section = dict(raw.get(fmt) or {})
    for key in legacy:
        value = raw.pop(key)
        if key in options and key not in section:
            section[key] = value
        elif key in options:
            raise ConfigError(f"data.{key}: given twice, here and as data.{fmt}.{key}")
        elif value != _LEGACY_DATA_KEYS[key]:
            keys = ", ".join(f"data.{fmt}.{o}" for o in options) or "none"
            raise ConfigError(f"data.{key}: not an option of format {fmt} (its options: {keys})")
    raw[fmt] = section
    return raw
