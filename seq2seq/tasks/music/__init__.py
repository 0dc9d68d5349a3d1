"""Music: Bach harmonisation (soprano -> alto, tenor, bass in an event vocabulary, with
an output grammar) and folk tunes in ABC; scored as teacher-forced token NLL and accuracy
and the validity rate of generated outputs (``io`` writes MIDI, MusicXML and ABC)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seq2seq.config import register_format
from seq2seq.tasks.base import (
    Evaluation,
    Generation,
    Metrics,
    Report,
    Task,
    first_examples,
    register_task,
    teacher_forced_scores,
)
from seq2seq.tasks.music.abc import AbcOptions, read_abc
from seq2seq.tasks.music.chorale_readers import ChoraleOptions, read_chorales

if TYPE_CHECKING:
    from seq2seq.inference import Translator
    from seq2seq.search.constraint import Constraint


register_format("chorales", ChoraleOptions, read_chorales)
register_format("abc", AbcOptions, read_abc)


@register_task
class Music(Task):
    name = "music"
    verb = "generate"
    generates = "documents"
    draws = True

    def source_from_prompt(self, translator: Translator, prompt: str) -> str:
        from seq2seq.tasks.music import io as music_io

        return music_io.source_from_prompt(translator.recipe.data, prompt)

    def outputs(self, translator: Translator, sources: list[str]) -> list[str]:
        from seq2seq.tasks.music import io as music_io

        return music_io.outputs(translator, sources)

    def whole_in_one_search(self, translator: Translator) -> bool:
        from seq2seq.tasks.music.chorale_readers import by_bars

        return not by_bars(translator.recipe.data)

    def constraint(self, translator: Translator) -> Constraint:
        pieces = translator.tgt_tok.vocabulary(), translator.src_tok.vocabulary()
        if translator.recipe.data.format == "abc":
            from seq2seq.tasks.music.abc_grammar import AbcConstraint

            return AbcConstraint(*pieces)
        if translator.recipe.data.format != "chorales":
            return super().constraint(translator)
        from seq2seq.tasks.music.grammar import HarmonyConstraint

        return HarmonyConstraint(*pieces)

    def show(self, translator: Translator, source: str, output: str) -> str:
        from seq2seq.tasks.music import abc

        if translator.recipe.data.format == "abc":  # the tune as ABC text
            return abc.to_abc(source, output).rstrip("\n")
        return output

    def documents(self, translator: Translator, source: str, output: str) -> dict[str, Any]:
        from seq2seq.tasks.music import io as music_io

        return music_io.documents(translator.recipe.data, source, output)

    def score_split(self, translator: Translator, request: Evaluation) -> Report:
        from seq2seq.tasks.music import io as music_io

        self.refuse_hyp_out(request)
        assert request.split is not None
        corpus = first_examples(music_io.pieces(translator.recipe, request.split), request.limit)
        # the model's own examples: whole pieces, or their bars for a bar-by-bar model
        scores = teacher_forced_scores(translator, music_io.examples(translator.recipe, corpus))
        nll, accuracy = scores.per_token(with_eos=True)
        outputs = self.outputs(translator, list(corpus.src))
        checks = [
            music_io.check(translator.recipe.data, src, out)
            for src, out in zip(corpus.src, outputs, strict=True)
        ]
        assert corpus.tgt is not None
        reference = [
            music_io.check(translator.recipe.data, src, ref)
            for src, ref in zip(corpus.src, corpus.tgt, strict=True)
        ]
        voice_leading = (
            _voice_leading(corpus.src, outputs, corpus.tgt, checks)
            if translator.recipe.data.format == "chorales"
            else {}
        )
        if request.pictures:
            music_io.draw_pairs(
                translator.recipe.data, Path(request.pictures), corpus.src, outputs, corpus.tgt
            )
        return Metrics(
            {
                "token_nll": round(nll, 4),
                "token_accuracy": round(accuracy, 4),
                "validity": round(sum(c.valid for c in checks) / max(len(checks), 1), 4),
                "reference_validity": round(
                    sum(c.valid for c in reference) / max(len(reference), 1), 4
                ),
                "invalid_reasons": _reasons(checks),
                **voice_leading,
                "constrained": translator.search.constrained,
                "pieces": len(corpus),
            }
        )

    def generate(self, translator: Translator, request: Generation) -> None:
        """Outputs for prompts or a split's sources, their validity, and with an output
        folder their MIDI and MusicXML (or ABC) files."""
        from seq2seq.tasks.music.io import generate_music

        generate_music(translator, request)


def _reasons(checks: Sequence[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for c in checks:
        if not c.valid:
            counts[c.reason] = counts.get(c.reason, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def _voice_leading(
    sources: Sequence[str], outputs: Sequence[str], references: Sequence[str], checks: Sequence[Any]
) -> dict[str, float]:
    """Parallel fifths and octaves per 100 beats in the valid outputs and in Bach's own."""
    from seq2seq.tasks.music.chorales import decode
    from seq2seq.tasks.music.voice_leading import total

    ours = total(decode(s, o) for s, o, c in zip(sources, outputs, checks, strict=True) if c.valid)
    bach = total(decode(s, r) for s, r in zip(sources, references, strict=True))
    (fifths, octaves), (ref_fifths, ref_octaves) = ours.per_100_beats(), bach.per_100_beats()
    return {
        "parallel_fifths_per_100_beats": round(fifths, 3),
        "parallel_octaves_per_100_beats": round(octaves, 3),
        "reference_parallel_fifths_per_100_beats": round(ref_fifths, 3),
        "reference_parallel_octaves_per_100_beats": round(ref_octaves, 3),
    }
