"""Recipes: frozen dataclasses holding the only defaults (``schema``), loaded from YAML
plus overrides (``loading``).

A recipe is a YAML file whose keys mirror these dataclasses. ``load_recipe(path, overrides)``
applies ``key=value`` overrides (values parsed as YAML, keys dotted: ``train.lr=3e-4``),
rejects unknown keys with the nearest valid one, checks every value's type and range, then
checks the relations between fields. Only builders read these objects; constructors take
plain arguments.
"""

from seq2seq.config.loading import (
    apply_overrides,
    dump_recipe,
    load_recipe,
    parse_overrides,
    recipe_from_dict,
    recipe_to_dict,
    replace_checked,
    resolve_project_path,
    single_line,
    validate,
    with_data,
    with_search,
)
from seq2seq.config.plugins import (
    Format,
    check_task,
    format_options,
    get_format,
    register_format,
    register_task_name,
)
from seq2seq.config.schema import (
    BIG_COUNT,
    ConfigError,
    Data,
    Decoder,
    EarlyStop,
    Encoder,
    Model,
    Range,
    Recipe,
    Search,
    Tokenizer,
    Train,
    ranged,
)

__all__ = [
    "BIG_COUNT",
    "ConfigError",
    "Data",
    "Decoder",
    "EarlyStop",
    "Encoder",
    "Format",
    "Model",
    "Range",
    "Recipe",
    "Search",
    "Tokenizer",
    "Train",
    "apply_overrides",
    "check_task",
    "dump_recipe",
    "format_options",
    "get_format",
    "load_recipe",
    "parse_overrides",
    "ranged",
    "recipe_from_dict",
    "recipe_to_dict",
    "register_format",
    "register_task_name",
    "replace_checked",
    "resolve_project_path",
    "single_line",
    "validate",
    "with_data",
    "with_search",
]
