"""Writing files without losing any: atomic writes, and the one writer of user outputs.

Every file the toolkit writes goes to a temporary file beside its target, is fsynced,
then renamed over the target: a crash, a kill or a full disk at any moment leaves either
the old file or the new one, never a truncated mix. ``output_file`` does the same for the
files a user names (``-o``, ``--hyp-out``): the old file stays until the command has
succeeded, and an output that is one of the command's inputs is refused up front.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TextIO, cast

from seq2seq.data.readers import DataError


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` for a temporary file beside ``path``, fsync it, rename it over.

    On any failure the temporary file is removed and ``path`` is left as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        os.chmod(tmp, _mode_for(path))  # mkstemp makes 0600; give the file the usual mode
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    def write(tmp: Path) -> None:
        tmp.write_bytes(data)

    atomic_write(path, write)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def output_file(
    path: str | Path | None, inputs: Iterable[str | Path | None] = ()
) -> Iterator[TextIO]:
    """A text stream for a command's output: stdout when ``path`` is None, else a
    temporary file moved over ``path`` only when the ``with`` block succeeds.

    ``inputs`` are the files the command reads: naming one of them as the output is a
    ``DataError``, as are a directory, a missing folder and a failed write (disk full),
    each naming the file. A symbolic link is followed: the file it points to is replaced.
    """
    if path is None:
        yield sys.stdout
        return
    target = check_output_path(path, inputs)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with open(fd, "w", encoding="utf-8", newline="\n") as raw:
            sink = _NamedWriter(raw, str(path))
            yield cast(TextIO, sink)
            sink.finish()
        os.chmod(tmp, _mode_for(target))
        os.replace(tmp, target)
    except OSError as err:
        raise DataError(f"{path}: cannot write: {err.strerror or err}") from None
    finally:
        tmp.unlink(missing_ok=True)


def check_output_path(path: str | Path, inputs: Iterable[str | Path | None] = ()) -> Path:
    """The real path an output will be written to; ``DataError`` if it cannot be."""
    target = Path(os.path.realpath(path))
    if target.is_dir():
        raise DataError(f"{path}: is a directory; give a file name")
    if not target.parent.is_dir():
        raise DataError(f"{path}: folder {target.parent} does not exist")
    if not os.access(target.parent, os.W_OK):
        raise DataError(f"{path}: cannot write in {target.parent} (permission denied)")
    for source in inputs:
        if source is not None and _same_file(Path(source), target):
            raise DataError(f"{path}: is also an input ({source}); write the output elsewhere")
    return target


class _NamedWriter:
    """The text stream ``output_file`` hands out: a failed write (disk full) is a
    ``DataError`` naming the output, told apart from errors of the command's own work."""

    def __init__(self, handle: TextIO, name: str) -> None:
        self.handle = handle
        self.name = name

    def write(self, text: str) -> int:
        try:
            return self.handle.write(text)
        except OSError as err:
            raise DataError(f"{self.name}: cannot write: {err.strerror or err}") from None

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self.handle.flush()
        except OSError as err:
            raise DataError(f"{self.name}: cannot write: {err.strerror or err}") from None

    def finish(self) -> None:
        self.flush()
        try:
            os.fsync(self.handle.fileno())
        except OSError as err:
            raise DataError(f"{self.name}: cannot write: {err.strerror or err}") from None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return Path(os.path.realpath(a)) == b


def _mode_for(path: Path) -> int:
    """An existing file keeps its mode; a new one gets 0666 less the umask."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
