"""The largest files and functions of the package: the sizes rule (no file over 400
lines, no function over 60 unless its docstring says why) at a glance.

    python tools/sizes.py [FOLDER ...] [--top N]      (default: seq2seq tools, top 10)
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path


def sizes(folders: list[str]) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(lines, file) and (lines, file:line name) for every file and function."""
    files, functions = [], []
    for folder in folders:
        for path in sorted(Path(folder).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            files.append((len(text.splitlines()), str(path)))
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    length = (node.end_lineno or node.lineno) - node.lineno + 1
                    functions.append((length, f"{path}:{node.lineno} {node.name}"))
    return sorted(files, reverse=True), sorted(functions, reverse=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="*", default=["seq2seq", "tools"])
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()
    files, functions = sizes(args.folders)
    print("largest files (lines):")
    for lines, name in files[: args.top]:
        print(f"  {lines:5d}  {name}")
    print("largest functions (lines):")
    for lines, name in functions[: args.top]:
        print(f"  {lines:5d}  {name}")


if __name__ == "__main__":
    main()
