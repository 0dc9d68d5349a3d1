"""Music in and out: prompts to sources, validity checks, and MIDI / MusicXML / ABC files
(written with music21) for ``seq2seq generate`` on a music run."""

from __future__ import annotations

import base64
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seq2seq.config import ConfigError, Data, Recipe, format_options
from seq2seq.data.dataset import load_corpus
from seq2seq.data.readers import Corpus, DataError
from seq2seq.tasks.music import abc, chorale_readers
from seq2seq.tasks.music import chorales as music
from seq2seq.tasks.music.chorales import Check, Chorale, MusicError
from seq2seq.tasks.music.pianoroll import draw_pianoroll
from seq2seq.tasks.plotting import pyplot

if TYPE_CHECKING:
    from seq2seq.inference import Translator
    from seq2seq.tasks.base import Generation

PART_NAMES = {"S": "Soprano", "A": "Alto", "T": "Tenor", "B": "Bass"}


def check(data: Data, source: str, output: str) -> Check:
    """The validity check of the recipe's kind of music."""
    if data.format == "chorales":
        return music.check_harmony(source, output)
    if data.format == "abc":
        return abc.check_tune(source, output)
    raise ConfigError(f"data.format: {data.format} is not a music format (chorales, abc)")


def pieces(recipe: Recipe, split: str) -> Corpus:
    """A split as whole pieces (what outputs are generated and checked for), also when
    the model is trained on bars."""
    if chorale_readers.by_bars(recipe.data):
        return chorale_readers.read_pieces(recipe.data, recipe.data.splits.get(split, split))
    return load_corpus(recipe, split)


def examples(recipe: Recipe, corpus: Corpus) -> Corpus:
    """Whole pieces as the model's training examples: themselves, or their bars."""
    if not chorale_readers.by_bars(recipe.data):
        return corpus
    assert corpus.tgt is not None
    bars = [
        pair
        for src, tgt in zip(corpus.src, corpus.tgt, strict=True)
        for pair in music.bar_examples(music.decode(src, tgt))
    ]
    return Corpus(corpus.name, [src for src, _ in bars], [tgt for _, tgt in bars])


def outputs(translator: Translator, sources: list[str]) -> list[str]:
    """The output of each whole source: one search each, or bar by bar for a model
    trained on bars (``bars.harmonize_by_bars``); a tune without its position tokens."""
    if chorale_readers.by_bars(translator.recipe.data):
        from seq2seq.tasks.music.bars import harmonize_by_bars

        return harmonize_by_bars(translator, sources)
    texts = translator.translate(sources)
    if translator.recipe.data.format == "abc":
        return [abc.without_positions(text) for text in texts]
    return texts


def source_from_prompt(data: Data, prompt: str) -> str:
    """Chorales: the soprano as events (``M:4/4 p67 d4 ... |``); abc: ABC text."""
    if data.format == "abc":
        try:
            positions = format_options(data, abc.AbcOptions).positions
            return abc.source_from_abc(prompt, positions)
        except abc.AbcError as err:
            raise ConfigError(f"prompt: {err}") from None
    try:
        music.parse_source(prompt)
    except (MusicError, ValueError) as err:
        raise ConfigError(
            f"prompt: {err} (a chorale prompt is the soprano as events, "
            "e.g. 'M:4/4 K:0 p67 d4 p69 d4 p71 d8 |')"
        ) from None
    return " ".join(prompt.split())


def chorale_score(chorale: Chorale) -> Any:
    """A music21 Score with one part per voice."""
    from music21 import clef, key, meter, note, stream

    clefs = {
        "S": clef.TrebleClef,
        "A": clef.TrebleClef,
        "T": clef.Treble8vbClef,
        "B": clef.BassClef,
    }
    score = stream.Score()
    for voice in music.VOICES:
        part = stream.Part()
        part.partName = PART_NAMES[voice]
        for number, bar in enumerate(chorale.voices[voice], start=1):
            measure = stream.Measure(number=number)
            if number == 1:
                measure.insert(0, clefs[voice]())
                measure.insert(0, meter.TimeSignature(chorale.meter))
                if chorale.key is not None:
                    measure.insert(0, key.KeySignature(chorale.key))
            for event in bar:
                item = note.Rest() if event.pitch is None else note.Note(event.pitch)
                item.quarterLength = event.duration / 4
                measure.append(item)
            part.append(measure)
        score.insert(0, part)
    return score


def summary(chorale: Chorale) -> str:
    """Bars, length, and per voice the number of notes and the pitch range."""
    quarters = sum(n.duration for bar in chorale.voices["S"] for n in bar) / 4
    parts = []
    for voice in music.VOICES:
        pitches = [n.pitch for bar in chorale.voices[voice] for n in bar if n.pitch is not None]
        span = f"{min(pitches)}-{max(pitches)}" if pitches else "-"
        parts.append(f"{voice} {len(pitches)} notes {span}")
    return f"{chorale.bars} bars, {quarters:g} quarters; " + "; ".join(parts)


def write_output(
    data: Data, folder: Path, stem: str, source: str, output: str, picture: bool = False
) -> list[Path]:
    """The files for one output: chorales -> .mid and .musicxml; abc -> .abc and .mid;
    with ``picture`` also a piano roll .png (pianoroll.py)."""
    written = []
    if data.format == "abc":
        path = folder / f"{stem}.abc"
        path.write_text(abc.to_abc(source, output), encoding="utf-8")
        written.append(path)
    score = music_score(data, source, output, stem)
    for fmt, suffix in (("midi", ".mid"), ("musicxml", ".musicxml")):
        if fmt == "musicxml" and data.format == "abc":
            continue
        path = folder / f"{stem}{suffix}"
        try:
            score.write(fmt, fp=str(path))
        except Exception as err:  # music21: repeats it cannot expand
            if "repeat" not in str(err).lower():
                raise
            print(
                f"  {stem}: repeats music21 cannot expand; {path.name} plays them once",
                file=sys.stderr,
            )
            _drop_repeats(score).write(fmt, fp=str(path))
        written.append(path)
    if picture:
        written.append(_picture(data, folder / f"{stem}.png", source, output, score))
    return written


def music_score(data: Data, source: str, output: str, name: str = "output") -> Any:
    """A source and its output as one music21 score (chorales: four parts; abc: a tune)."""
    if data.format == "abc":
        return abc.parse_abc(abc.to_abc(source, output))
    return chorale_score(music.decode(source, output, name))


def _picture(data: Data, path: Path, source: str, output: str, score: Any) -> Path:
    """``score``'s piano roll at ``path``, titled with its name and validity."""
    verdict = check(data, source, output)
    state = "valid" if verdict.valid else f"invalid: {verdict.reason}"
    draw_pianoroll(score, path, f"{path.stem} ({state})")
    return path


def draw_pairs(
    data: Data, folder: Path, sources: Sequence[str], outputs: Sequence[str], refs: Sequence[str]
) -> None:
    """Piano rolls of each output and its reference side by side in ``folder``:
    NNNNNN.output.png and NNNNNN.reference.png (one music21 cannot read is skipped,
    saying so)."""
    if folder.exists() and not folder.is_dir():
        raise DataError(f"--pictures {folder}: is a file; pictures go to a folder")
    folder.mkdir(parents=True, exist_ok=True)
    for i, (source, output, ref) in enumerate(zip(sources, outputs, refs, strict=True)):
        for kind, target in (("output", output), ("reference", ref)):
            path = folder / f"{i:06d}.{kind}.png"
            try:
                _picture(data, path, source, target, music_score(data, source, target))
            except Exception as err:  # music21 refuses some invalid outputs
                print(f"  {path.name}: not drawn ({type(err).__name__}: {err})", file=sys.stderr)


def documents(data: Data, source: str, output: str) -> dict[str, Any]:
    """One output as a client keeps it: its validity, the tune as ABC text (abc) or the
    chorale as MusicXML text (chorales), and the MIDI file in base64; an output music21
    cannot write gets ``files_error`` instead of the files."""
    result = check(data, source, output)
    found: dict[str, Any] = {
        "valid": result.valid,
        "reason": None if result.valid else result.reason,
    }
    try:
        with tempfile.TemporaryDirectory(prefix="seq2seq-music-") as folder:
            for path in write_output(data, Path(folder), "output", source, output):
                if path.suffix == ".mid":
                    found["midi"] = base64.b64encode(path.read_bytes()).decode("ascii")
                else:  # .abc or .musicxml
                    found[path.suffix[1:]] = path.read_text(encoding="utf-8")
    except Exception as err:  # music21 refuses some invalid outputs
        found["files_error"] = f"{type(err).__name__}: {err}"
    return found


def _can_draw() -> bool:
    """Whether matplotlib is there for piano rolls; if not, say so once and go on."""
    try:
        pyplot()
    except ConfigError as err:
        print(f"no piano rolls: {err}", file=sys.stderr)
        return False
    return True


def _drop_repeats(score: Any) -> Any:
    """The score with repeat bar lines made plain (music21's MIDI writer expands repeats
    and refuses ones it cannot pair)."""
    from music21 import bar

    for line in list(score.recurse().getElementsByClass(bar.Repeat)):
        line.activeSite.replace(line, bar.Barline("regular"))
    for ending in list(score.recurse().getElementsByClass("RepeatBracket")):
        ending.activeSite.remove(ending)
    return score


def generate_music(translator: Translator, request: Generation) -> None:
    """``seq2seq generate`` for a music run: outputs for prompts or a split's sources;
    with an output folder also the files; always the validity of each."""
    data = translator.recipe.data
    if request.max_len:
        translator = translator.with_search(max_len_a=0.0, max_len_b=request.max_len)
    if request.split:
        corpus = pieces(translator.recipe, request.split)
        sources = list(corpus.src[: request.count or None])
    else:
        assert request.prompts is not None
        lines = [p.strip() for p in request.prompts if p.strip()]
        sources = [source_from_prompt(data, line) for line in lines]
    generated = outputs(translator, sources)
    folder = Path(request.output) if request.output else None
    if folder:
        if folder.exists() and not folder.is_dir():
            raise DataError(f"-o {folder}: is a file; music outputs go to a folder")
        folder.mkdir(parents=True, exist_ok=True)
    pictures = folder is not None and _can_draw()
    valid = 0
    for i, (source, output) in enumerate(zip(sources, generated, strict=True)):
        result = check(data, source, output)
        valid += result.valid
        verdict = "valid" if result.valid else f"invalid ({result.reason})"
        if data.format == "chorales":
            try:
                described = summary(music.decode(source, output))
            except (MusicError, ValueError):
                described = "not decodable"
            print(f"{i}\t{verdict}\t{described}")
        else:
            print(f"% {i}: {verdict}\n{abc.to_abc(source, output, number=i + 1)}")
        if folder:
            try:
                for path in write_output(data, folder, f"{i:06d}", source, output, pictures):
                    print(f"  wrote {path}", file=sys.stderr)
            except Exception as err:  # music21 refuses some invalid outputs
                print(f"  {i}: no file written ({type(err).__name__}: {err})", file=sys.stderr)
    print(f"validity: {valid}/{len(sources)} = {valid / max(len(sources), 1):.3f}", file=sys.stderr)
