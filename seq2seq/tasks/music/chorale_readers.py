"""The chorale data sets as ``Chorale``s and as examples (``data.format: chorales``):

- the JSB JSON of Boulanger-Lewandowski et al. (``Jsb16thSeparated.json``: 16th-note steps,
  one pitch per voice, -1 = silent). It has no meter or key: bars are cut every 16 steps
  (4/4), a held note and a repeated one look the same (both become one note per bar), and
  the key token is left out. Its train/valid/test splits are used as they are.
- the chorales inside the ``music21`` package (``data.chorales.files: music21``): real meters, keys,
  pickups and note lengths; parsed once (about a minute) and cached as JSON under
  ``$SEQ2SEQ_CACHE`` (default ~/.cache/seq2seq). Held out by a hash of the chorale's name:
  ``holdout`` of them for valid, as many again for test.

Examples are whole chorales or bars (``data.chorales.unit``, see chorales.py)."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from seq2seq.config import Data, format_options, ranged
from seq2seq.data.files import atomic_write_text
from seq2seq.data.formats import FileOptions, check_shifts, holdout_part
from seq2seq.data.readers import Corpus, DataError, data_root
from seq2seq.tasks.music.chorales import (
    MAX_DURATION,
    VOICES,
    Chorale,
    Note,
    bar_examples,
    encode_source,
    encode_target,
    transpose,
)

log = logging.getLogger(__name__)


def from_steps(name: str, steps: list[list[int]], steps_per_bar: int = 16) -> Chorale:
    """JSB 16th-note steps (T, 4 voices; -1 = silent) -> a 4/4 chorale (see module doc)."""
    voices: dict[str, list[list[Note]]] = {}
    for v, voice in enumerate(VOICES):
        bars = []
        for start in range(0, len(steps), steps_per_bar):
            bar: list[Note] = []
            for step in steps[start : start + steps_per_bar]:
                pitch = None if step[v] < 0 else int(step[v])
                if bar and bar[-1].pitch == pitch:
                    bar[-1] = Note(pitch, bar[-1].duration + 1)
                else:
                    bar.append(Note(pitch, 1))
            bars.append(bar)
        voices[voice] = bars
    return Chorale(name, "4/4", None, voices)


def from_music21(name: str, score: Any) -> Chorale | None:
    """A music21 score with four parts -> a chorale; None (with the reason logged) when
    it has another number of parts, tuplets or notes shorter than a sixteenth."""
    parts = list(score.parts)
    if len(parts) != 4:
        log.debug("%s: %d parts, not 4", name, len(parts))
        return None
    signatures = parts[0].recurse().getElementsByClass("TimeSignature")
    keys = parts[0].recurse().getElementsByClass("KeySignature")
    meter = signatures[0].ratioString if signatures else "4/4"
    voices: dict[str, list[list[Note]]] = {}
    for voice, part in zip(VOICES, parts, strict=True):
        bars = []
        for measure in part.getElementsByClass("Measure"):
            bar = []
            for item in measure.notesAndRests:
                sixteenths = float(item.quarterLength) * 4
                if sixteenths == 0:  # grace note
                    continue
                if not sixteenths.is_integer() or sixteenths > MAX_DURATION:
                    return None
                pitch = None if item.isRest else int(max(p.midi for p in item.pitches))
                bar.append(Note(pitch, int(sixteenths)))
            bars.append(bar)
        voices[voice] = bars
    if len({len(b) for b in voices.values()}) != 1 or not voices["S"]:
        return None
    return Chorale(name, meter, int(keys[0].sharps) if keys else None, voices)


def _cache_dir() -> Path:
    return Path(os.environ.get("SEQ2SEQ_CACHE", Path.home() / ".cache" / "seq2seq"))


def _chorale_to_json(ch: Chorale) -> dict[str, Any]:
    return {
        "name": ch.name,
        "meter": ch.meter,
        "key": ch.key,
        "voices": {
            v: [[[n.pitch, n.duration] for n in bar] for bar in bars]
            for v, bars in ch.voices.items()
        },
    }


def _chorale_from_json(d: dict[str, Any]) -> Chorale:
    voices = {
        v: [[Note(p, dur) for p, dur in bar] for bar in bars] for v, bars in d["voices"].items()
    }
    return Chorale(d["name"], d["meter"], d["key"], voices)


def music21_chorales() -> list[Chorale]:
    """The four-part Bach chorales of the music21 corpus (parsed once, then cached)."""
    try:
        import music21
    except ImportError:
        raise DataError(
            "data.chorales.files: music21 needs the music21 package (pip install 'seq2seq[music]')"
        ) from None
    cache = _cache_dir() / f"music21-{music21.__version__}-chorales.json"
    if cache.is_file():
        try:
            return [_chorale_from_json(d) for d in json.loads(cache.read_text(encoding="utf-8"))]
        except (ValueError, KeyError, TypeError):
            log.warning("%s: unreadable cache, parsing the corpus again", cache)
    from music21 import corpus

    log.info(
        "parsing the Bach chorales of music21 %s (once; cached in %s)", music21.__version__, cache
    )
    chorales, skipped = [], 0
    for name in corpus.chorales.Iterator(returnType="filename"):
        chorale = from_music21(str(name), corpus.parse(name))
        if chorale is None:
            skipped += 1
        else:
            chorales.append(chorale)
    log.info(
        "music21: %d chorales kept, %d skipped (not 4 parts, or tuplets)", len(chorales), skipped
    )
    cache.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(cache, json.dumps([_chorale_to_json(c) for c in chorales]))
    return chorales


@dataclass(frozen=True)
class ChoraleOptions(FileOptions):
    """``data.chorales``: ``files`` is the JSB JSON (splits are its keys) or ``music21``
    (the corpus inside music21, ``holdout`` of it for valid and again for test);
    ``transpose``: semitone shifts added to the training split, [down <= 0, up >= 0]."""

    files: str = "Jsb16thSeparated.json"
    transpose: tuple[int, int] = ranged((0, 0), -24, 24)
    # piece: one example per chorale (the whole soprano -> the whole lower voices);
    # bar: one per bar (``bar_source``: the previous bar's four voices and the soprano of
    # this bar and the next -> this bar's lower voices), harmonised bar after bar (bars.py)
    unit: Literal["piece", "bar"] = "piece"

    def __post_init__(self) -> None:
        check_shifts("data.chorales.transpose", self.transpose)


def by_bars(data: Data) -> bool:
    """Whether the recipe's model harmonises chorales bar by bar (``unit: bar``)."""
    return data.format == "chorales" and format_options(data, ChoraleOptions).unit == "bar"


def read_chorales(data: Data, part: str, name: str, seed: int) -> Corpus:
    """Harmonisation examples of one split, whole chorales or bars (``data.chorales.unit``);
    the training split also gets every transposition in ``data.chorales.transpose``
    (semitones, e.g. [-3, 3])."""
    chorales = load_chorales(data, part, name)
    if by_bars(data):
        pairs = [pair for chorale in chorales for pair in bar_examples(chorale)]
        return Corpus(name, [src for src, _ in pairs], [tgt for _, tgt in pairs])
    return Corpus(name, [encode_source(c) for c in chorales], [encode_target(c) for c in chorales])


def read_pieces(data: Data, part: str) -> Corpus:
    """Whole chorales of one split (source: the soprano, target: the lower voices),
    whatever unit the model is trained on: what harmonisations are scored on."""
    chorales = load_chorales(data, part, part)
    return Corpus(part, [encode_source(c) for c in chorales], [encode_target(c) for c in chorales])


def load_chorales(data: Data, part: str, name: str) -> list[Chorale]:
    """The chorales of one split, the training split in every transposition."""
    opts = format_options(data, ChoraleOptions)
    if opts.files == "music21":
        if part not in ("train", "valid", "test"):
            raise DataError(
                f"data.splits: music21 chorale splits are train/valid/test, not '{part}'"
            )
        chorales = [c for c in music21_chorales() if holdout_part(c.name, opts.holdout) == part]
    else:
        path = data_root(data.root) / (opts.files or "Jsb16thSeparated.json")
        try:
            pieces = json.loads(path.read_text(encoding="utf-8"))[part]
        except FileNotFoundError:
            raise DataError(f"{path}: file not found") from None
        except (ValueError, UnicodeDecodeError) as err:
            raise DataError(f"{path}: not valid JSON ({err})") from None
        except KeyError:
            raise DataError(f"{path}: no split '{part}'") from None
        for number, steps in enumerate(pieces):
            if not steps or any(len(s) != 4 for s in steps):
                raise DataError(f"{path}: {part}[{number}] is not a list of 4-voice steps")
        chorales = [from_steps(f"{part}-{i}", steps) for i, steps in enumerate(pieces)]
    if not chorales:
        raise DataError(f"chorales: split '{name}' is empty")
    if part == "train":
        low, high = opts.transpose
        chorales = [transpose(c, k) if k else c for c in chorales for k in range(low, high + 1)]
    return chorales
