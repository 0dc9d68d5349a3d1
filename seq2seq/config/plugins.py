"""The plugin registry: kinds of work (tasks) and the data formats they read, each
registered by name by the module that implements it.

Config keeps only what a recipe check needs: the task names, and for each data format
its options class (the recipe's ``data.<format>`` section, a frozen dataclass checked like
any other section) and its reader. Generic code looks a name up here and never tests it.

Discovery: looking up a name that is not registered yet imports ``seq2seq.tasks`` (whose
``__init__`` imports every task folder in it) and the modules that installed packages
name in the ``seq2seq.tasks`` entry-point group, once. That import by name is the only
one in the package: the way a plugin is found without the generic code naming it.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, TypeVar

from seq2seq.config.schema import ConfigError, Data

log = logging.getLogger(__name__)

BUILT_IN = "seq2seq.tasks"
ENTRY_POINTS = "seq2seq.tasks"


@dataclass(frozen=True)
class Format:
    """A way of reading a split: ``read(data, part, split, seed) -> Corpus`` (part: the
    name ``data.splits`` maps the split to), with its options in ``data.<name>``."""

    name: str
    options: type  # a frozen dataclass; its fields are the keys of data.<name>
    read: Callable[..., Any]


_FORMATS: dict[str, Format] = {}
_TASKS: set[str] = set()
_discovered = False


def register_format(name: str, options: type, read: Callable[..., Any]) -> None:
    if name in _FORMATS:
        raise ValueError(f"data format {name!r} is registered twice")
    _FORMATS[name] = Format(name, options, read)


def register_task_name(name: str) -> None:
    _TASKS.add(name)


def get_format(name: str) -> Format:
    """The format registered as ``name``; a ``ConfigError`` naming the known ones if none."""
    if name not in _FORMATS:
        discover()
    try:
        return _FORMATS[name]
    except KeyError:
        known = ", ".join(sorted(_FORMATS))
        raise ConfigError(f"data.format: no format {str(name)[:60]!r} (known: {known})") from None


def check_task(name: str) -> None:
    if name not in _TASKS:
        discover()
    if name not in _TASKS:
        known = ", ".join(sorted(_TASKS))
        raise ConfigError(f"task: no task named {str(name)[:60]!r} (known: {known})")


def discover() -> None:
    """Import the built-in tasks and the installed plugins (once)."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    importlib.import_module(BUILT_IN)
    for entry in entry_points(group=ENTRY_POINTS):
        try:
            importlib.import_module(entry.value.partition(":")[0])
        except ImportError as err:  # a broken plugin must not stop the built-in tasks
            log.warning("plugin %s (%s) not loaded: %s", entry.name, entry.value, err)


OptionsT = TypeVar("OptionsT")


def format_options(data: Data, cls: type[OptionsT]) -> OptionsT:
    """``data``'s options as the format's ``cls`` (its defaults when the section was not
    built from a recipe); a ``ConfigError`` when the recipe's format is another one."""
    if data.options is None:
        if get_format(data.format).options is not cls:
            raise ConfigError(f"data.format: {data.format} has no {cls.__name__}")
        return cls()
    if not isinstance(data.options, cls):
        raise ConfigError(f"data.format: {data.format} has no {cls.__name__}")
    return data.options


def formats() -> list[Format]:
    """Every registered data format (the installed plugins' too), by name."""
    discover()
    return [_FORMATS[name] for name in sorted(_FORMATS)]


def task_names() -> list[str]:
    discover()
    return sorted(_TASKS)
