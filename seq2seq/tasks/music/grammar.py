"""The harmonisation grammar as a decoding constraint (``search.constrained: true``).

Per bar of the soprano the output must be ``V:A notes V:T notes V:B notes |``, where each
voice's notes are (pitch in the voice's range | rest) + duration and their durations add
up to the soprano's bar exactly; after the last bar only EOS may follow. Every output is
then valid by construction (``music.check_harmony``); the model still chooses every note.

State per search row: bar ``b`` of ``bars``; voice ``v`` (0 alto, 1 tenor, 2 bass);
``phase`` (0: a voice marker is due, 1: a note or the next marker, 2: a duration); ``r``
the sixteenths the current voice still has to fill; ``lengths`` the soprano's bar lengths.
A row whose source does not parse as a chorale source is left unconstrained.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from seq2seq.data.tokenizer import EOS_ID
from seq2seq.search.constraint import ConstraintState
from seq2seq.tasks.music.chorales import LOWER, MAX_DURATION, VOICE_RANGES, MusicError, parse_source

_MARKER, _BAR, _EOS, _NOTE, _DUR = 0, 3, 4, 5, 8  # first code of each situation
_FREE = _DUR + MAX_DURATION + 1  # no constraint
_KIND_OTHER, _KIND_MARKER, _KIND_BAR, _KIND_NOTE, _KIND_DUR = range(5)


class HarmonyConstraint:
    """Masks for a target vocabulary (``pieces`` in id order) and the grammar's state."""

    def __init__(self, pieces: Sequence[str], source_pieces: Sequence[str]) -> None:
        vocab = len(pieces)
        self.source_pieces = list(source_pieces)
        table = torch.zeros(_FREE + 1, vocab, dtype=torch.bool)
        kind = torch.zeros(vocab, dtype=torch.long)
        value = torch.zeros(vocab, dtype=torch.long)
        for i, piece in enumerate(pieces):
            if piece in ("V:A", "V:T", "V:B"):
                voice = LOWER.index(piece[2:])
                kind[i], value[i] = _KIND_MARKER, voice
                table[_MARKER + voice, i] = True
            elif piece == "|":
                kind[i] = _KIND_BAR
                table[_BAR, i] = True
            elif piece == "r" or (piece.startswith("p") and piece[1:].isdigit()):
                kind[i] = _KIND_NOTE
                for voice, name in enumerate(LOWER):
                    low, high = VOICE_RANGES[name]
                    if piece == "r" or low <= int(piece[1:]) <= high:
                        table[_NOTE + voice, i] = True
            elif piece.startswith("d") and piece[1:].isdigit():
                kind[i], value[i] = _KIND_DUR, int(piece[1:])
                for left in range(int(piece[1:]), MAX_DURATION + 1):
                    table[_DUR + left, i] = True
        table[_EOS, EOS_ID] = True
        table[_FREE] = True
        self.table, self.kind, self.value = table, kind, value

    def _bar_lengths(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, S) source ids -> bar lengths (B, max bars) and bar counts (B,), -1 where a
        source does not parse."""
        parsed: list[list[int] | None] = []
        for row in src.tolist():
            text = " ".join(self.source_pieces[i] for i in row if i > EOS_ID)
            try:
                parsed.append([sum(n.duration for n in bar) for bar in parse_source(text)[2]])
            except (MusicError, ValueError):
                parsed.append(None)
        width = max([len(p) for p in parsed if p] + [1])
        lengths = torch.zeros(len(parsed), width, dtype=torch.long)
        counts = torch.full((len(parsed),), -1, dtype=torch.long)
        for i, bars in enumerate(parsed):
            if bars is not None:
                counts[i] = len(bars)
                lengths[i, : len(bars)] = torch.tensor(bars, dtype=torch.long)
        return lengths, counts

    def start(self, src: torch.Tensor, rows: torch.Tensor) -> ConstraintState:
        lengths, counts = self._bar_lengths(src.cpu())
        rows = rows.cpu()
        zeros = torch.zeros(rows.numel(), dtype=torch.long)
        return {
            "bar": zeros,
            "bars": counts.index_select(0, rows),
            "voice": zeros.clone(),
            "phase": zeros.clone(),
            "left": zeros.clone(),
            "lengths": lengths.index_select(0, rows),
        }

    def allowed(self, state: ConstraintState) -> torch.Tensor:
        bar, bars, voice = state["bar"], state["bars"], state["voice"]
        phase, left = state["phase"], state["left"]
        next_marker = torch.where(voice < 2, _MARKER + voice + 1, torch.full_like(voice, _BAR))
        in_voice = torch.where(left > 0, _NOTE + voice, next_marker)
        code = torch.where(
            phase == 0,
            _MARKER + voice,
            torch.where(phase == 1, in_voice, _DUR + left.clamp(0, MAX_DURATION)),
        )
        code = torch.where(bar >= bars, torch.full_like(code, _EOS), code)
        code = torch.where(bars < 0, torch.full_like(code, _FREE), code)
        return self.table.index_select(0, code)

    def advance(self, state: ConstraintState, tokens: torch.Tensor) -> ConstraintState:
        tokens = tokens.cpu()
        kind, value = self.kind[tokens], self.value[tokens]
        bar, voice, phase, left = state["bar"], state["voice"], state["phase"], state["left"]
        lengths = state["lengths"]
        bar_length = lengths.gather(1, bar.clamp(max=lengths.size(1) - 1).unsqueeze(1)).squeeze(1)
        marker, note = kind == _KIND_MARKER, kind == _KIND_NOTE
        duration, bar_line = kind == _KIND_DUR, kind == _KIND_BAR
        return {
            **state,
            "bar": bar + bar_line.long(),
            "voice": torch.where(marker, value, torch.where(bar_line, 0, voice)),
            "phase": torch.where(
                marker | duration, 1, torch.where(note, 2, torch.where(bar_line, 0, phase))
            ),
            "left": torch.where(marker, bar_length, torch.where(duration, left - value, left)),
        }
