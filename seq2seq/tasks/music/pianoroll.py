"""Piano rolls: a score as a picture, one coloured bar per note (time across, pitch up),
a colour per voice and a line at every bar, for outputs a person would rather look at
than read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seq2seq.tasks.plotting import pyplot

# soprano, alto, tenor, bass (a tune's one part takes the first)
COLOURS = ("#d62728", "#ff7f0e", "#2ca02c", "#1f77b4", "#9467bd", "#8c564b")
NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


@dataclass(frozen=True)
class Roll:
    """What a picture shows: notes drawn (a chord's pitches each count), bar lines, length
    in quarter notes, and the lowest and highest MIDI pitch (0, 0 without notes)."""

    notes: int
    bars: int
    quarters: float
    pitch_range: tuple[int, int]


def draw_pianoroll(score: Any, path: Path, title: str = "") -> Roll:
    """A music21 score (parts, or a single stream) as a PNG piano roll at ``path``."""
    plt = pyplot()
    parts = list(getattr(score, "parts", [])) or [score]
    spans = [_notes(part) for part in parts]
    quarters = max((start + length for notes in spans for start, length, _ in notes), default=0.0)
    pitches = [pitch for notes in spans for _, _, pitch in notes]
    width = min(max(6.0, quarters * 0.22 + 2.0), 40.0)
    figure, ax = plt.subplots(figsize=(width, 4.0))
    for i, (part, notes) in enumerate(zip(parts, spans, strict=True)):
        if not notes:
            continue
        starts, lengths, heights = zip(*notes, strict=True)
        name = getattr(part, "partName", None) or f"part {i + 1}"
        ax.barh(
            heights, lengths, left=starts, height=0.8, color=COLOURS[i % len(COLOURS)], label=name
        )
    bars = _bar_lines(parts[0])
    for offset in bars:
        ax.axvline(offset, color="0.75", linewidth=0.8, zorder=0)
    low, high = (min(pitches), max(pitches)) if pitches else (0, 0)
    _pitch_axis(ax, low, high)
    ax.set_xlim(0, max(quarters, 1.0))
    ax.set_xlabel("quarter notes")
    if title:
        ax.set_title(title, fontsize=9)
    if len(parts) > 1 and pitches:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return Roll(len(pitches), len(bars), quarters, (low, high))


def _notes(part: Any) -> list[tuple[float, float, int]]:
    """(start, length, MIDI pitch) of every sounding pitch of a part, in quarter notes."""
    found = []
    for item in part.flatten().notes:
        for pitch in item.pitches:
            found.append((float(item.offset), float(item.quarterLength), int(pitch.midi)))
    return found


def _bar_lines(part: Any) -> list[float]:
    """Where the part's bars start (quarter notes)."""
    return [float(m.offset) for m in part.getElementsByClass("Measure")]


def _pitch_axis(ax: Any, low: int, high: int) -> None:
    """Pitch labels at every C (and the range's ends), a semitone of room either side."""
    ax.set_ylim(low - 1.5, high + 1.5)
    ticks = sorted({p for p in range(low, high + 1) if p % 12 == 0} | {low, high})
    ax.set_yticks(ticks)
    ax.set_yticklabels([f"{NAMES[p % 12]}{p // 12 - 1}" for p in ticks], fontsize=7)
    ax.set_ylabel("pitch")
