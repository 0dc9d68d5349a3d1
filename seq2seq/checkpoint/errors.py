"""What a run directory's reads and writes raise, and one line for a failed write."""

from __future__ import annotations

from safetensors import SafetensorError


class CheckpointError(RuntimeError):
    """A run directory is missing a piece or holds a corrupt file (named in the message)."""


# what a failed write of a checkpoint raises: OSError (the recipe, pointers, tokenizer),
# torch.save's RuntimeError and safetensors' SafetensorError (weights), e.g. on a full disk
WRITE_ERRORS = (OSError, RuntimeError, SafetensorError)


def describe_write_error(err: BaseException) -> str:
    """One line for a failed write: the OS's reason when there is one."""
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    text = first_line(err)
    for errno_name, reason in (
        ("ENOSPC", "No space left on device"),
        ("EDQUOT", "Disk quota exceeded"),
    ):
        if errno_name in text or reason.lower() in text.lower():
            return reason
    return text[:200]


def first_line(err: BaseException) -> str:
    """The first line of an error's message, or its type's name."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
