"""Imports point one way: faces -> tasks -> predictor / training -> search -> model ->
kernels -> data -> runtime -> config. Every import counts, in-function and type-checking ones too,
and every module of the package must belong to a layer (a new one gets a place here)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "seq2seq"

# lowest first: a module may import modules of its own layer and of the layers below
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("config", ("seq2seq.config",)),
    ("runtime", ("seq2seq.runtime", "seq2seq.threads")),
    ("data", ("seq2seq.data", "seq2seq.checkpoint")),
    ("kernels", ("seq2seq.kernels",)),
    ("model", ("seq2seq.model",)),
    ("search", ("seq2seq.search",)),
    ("export", ("seq2seq.export",)),
    (
        "predictor / training",
        (
            "seq2seq.inference",
            "seq2seq.engines",
            "seq2seq.training",
            "seq2seq.evaluate",
            "seq2seq.averaging",
        ),
    ),
    ("tasks", ("seq2seq.tasks",)),
    (
        "faces",
        (
            "seq2seq.cli",
            "seq2seq.cli_deploy",
            "seq2seq.shell",
            "seq2seq.translate_file",
            "seq2seq.serve",
            "seq2seq.visualize",
            "seq2seq.__main__",
        ),
    ),
]


def layer_of(module: str) -> int:
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"{module} belongs to no layer: give it one in tests/test_layers.py")


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    known = modules()
    return {name for name in found if name in known}


def test_every_module_has_a_layer():
    for name in modules():
        if name != "seq2seq":
            layer_of(name)


def test_imports_point_down_the_layers():
    upward = []
    for name, path in modules().items():
        if name == "seq2seq":
            continue
        mine = layer_of(name)
        for target in imports(path):
            if target != "seq2seq" and layer_of(target) > mine:
                upward.append(
                    f"{name} ({LAYERS[mine][0]}) -> {target} ({LAYERS[layer_of(target)][0]})"
                )
    assert upward == []


def test_the_check_sees_an_upward_import(tmp_path: Path):
    """The checker itself: an in-function import of a face from data is caught."""
    source = tmp_path / "probe.py"
    source.write_text("def f():\n    from seq2seq.cli import main\n")
    assert "seq2seq.cli" in imports(source)
    assert layer_of("seq2seq.cli") > layer_of("seq2seq.data.readers")


def plugin_names() -> set[str]:
    from seq2seq.config.plugins import formats, task_names

    return {f.name for f in formats()} | set(task_names())


def named_conditions(path: Path, names: set[str]) -> list[str]:
    """Comparisons and ``in`` tests with a task or format name as a literal, e.g.
    ``task.name == "music"`` or ``data.format in ("abc", ...)``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Compare):
            continue
        for side in [node.left, *node.comparators]:
            for leaf in ast.walk(side):
                if isinstance(leaf, ast.Constant) and leaf.value in names:
                    found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_generic_code_never_tests_a_task_or_format_name():
    """Outside seq2seq/tasks/, a kind of work or a data format is looked up by name in
    the registry, never compared: adding one edits no generic file. (The generic formats
    text and hf are registered by the data layer; they are names like any other.)"""
    names = plugin_names()
    found = [
        hit
        for name, path in modules().items()
        if not name.startswith("seq2seq.tasks")
        for hit in named_conditions(path, names)
    ]
    assert found == []


def test_the_check_sees_a_named_condition(tmp_path: Path):
    source = tmp_path / "probe.py"
    source.write_text("def f(recipe):\n    return recipe.task == 'music'\n")
    assert named_conditions(source, {"music"}) == ["probe.py:2: recipe.task == 'music'"]


def test_only_the_registry_imports_by_name():
    """Plugin discovery (the registry importing the task package, and that package its
    folders) is the only import by name: any other would hide an import from the layer
    check above."""
    users = [
        name
        for name, path in modules().items()
        if "import_module(" in path.read_text(encoding="utf-8")
    ]
    assert sorted(users) == ["seq2seq.config.plugins", "seq2seq.tasks"]
