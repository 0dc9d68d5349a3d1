"""Values <-> tokens: a window is scaled by its context and quantized into bins.

The context's mean and standard deviation (``Scale``) map every value of the window
(context and horizon alike) to z = (x - mean) / std; z is cut into ``bins`` equal bins
over [low, high] (values beyond fall into the edge bins), and bin k is the token ``v<k>``
(the symbols of tokenizers/forecast_bins.yaml). Decoding maps a token to its bin's centre
and back through the same scale. A constant context has no spread: its scale is 10% of
its level (1 at level 0), so a flat history reads as all-centre tokens and a forecast's
steps stay in proportion to the level.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PREFIX = "v"


@dataclass(frozen=True)
class Scale:
    loc: float
    scale: float

    @classmethod
    def of(cls, context: np.ndarray) -> Scale:
        """The scale of a context (T,) with T >= 1."""
        loc = float(np.mean(context))
        spread = float(np.std(context))
        if spread <= 1e-9 * max(1.0, abs(loc)):
            spread = 0.1 * abs(loc) if loc else 1.0
        return cls(loc, spread)


@dataclass(frozen=True)
class Quantizer:
    bins: int
    low: float
    high: float

    @property
    def width(self) -> float:
        return (self.high - self.low) / self.bins

    def ids(self, values: np.ndarray, scale: Scale) -> np.ndarray:
        """(T,) values -> (T,) bin numbers."""
        z = (np.asarray(values, dtype=np.float64) - scale.loc) / scale.scale
        return np.clip(np.floor((z - self.low) / self.width), 0, self.bins - 1).astype(np.int64)

    def encode(self, values: np.ndarray, scale: Scale) -> str:
        """Values as the text of their tokens, e.g. ``v251 v256 v260``."""
        return " ".join(f"{PREFIX}{k}" for k in self.ids(values, scale))

    def decode(self, tokens: list[str], scale: Scale) -> np.ndarray:
        """Tokens -> values (bin centres, unscaled); a token that is not a bin is NaN."""
        centres = [self._centre(token) for token in tokens]
        return np.array(centres, dtype=np.float64) * scale.scale + scale.loc

    def _centre(self, token: str) -> float:
        number = token[len(PREFIX) :]
        if not token.startswith(PREFIX) or not number.isdigit() or int(number) >= self.bins:
            return float("nan")
        return self.low + (int(number) + 0.5) * self.width

    def symbols(self) -> list[str]:
        return [f"{PREFIX}{k}" for k in range(self.bins)]
