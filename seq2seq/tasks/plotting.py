"""matplotlib for the tasks' pictures (and the faces' plots), imported on first use."""

from __future__ import annotations

from typing import Any

from seq2seq.config import ConfigError


def pyplot() -> Any:
    """matplotlib.pyplot on the file-only Agg backend, or a ConfigError saying what to install."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ConfigError(
            "plots need matplotlib: pip install matplotlib (or seq2seq[plot])"
        ) from err
    return plt
