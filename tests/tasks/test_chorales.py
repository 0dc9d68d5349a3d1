"""Chorale events: encode -> decode gives the same notes; validity; files with music21."""

import json
from pathlib import Path

import pytest

from seq2seq.config import Data
from seq2seq.data.readers import DataError
from seq2seq.tasks.music.chorale_readers import (
    ChoraleOptions,
    from_steps,
    read_chorales,
    read_pieces,
)
from seq2seq.tasks.music.chorales import (
    Chorale,
    Note,
    bar_examples,
    check_harmony,
    decode,
    encode_source,
    encode_target,
    longest_bar_output,
    parse_source,
    transpose,
)


def chorale() -> Chorale:
    return Chorale(
        "test",
        "3/4",
        -1,
        {
            "S": [[Note(72, 4), Note(74, 4), Note(76, 4)], [Note(77, 8), Note(None, 4)]],
            "A": [[Note(65, 8), Note(67, 4)], [Note(69, 12)]],
            "T": [[Note(60, 12)], [Note(60, 6), Note(62, 2), Note(None, 4)]],
            "B": [[Note(53, 4), Note(52, 4), Note(50, 4)], [Note(48, 12)]],
        },
    )


def steps(n: int, seed: int) -> list[list[int]]:
    import random

    rng = random.Random(seed)
    out, current = [], [72, 65, 60, 48]
    for i in range(n):
        if i % 4 == 0:
            current = [p + rng.choice([-2, 0, 1, 2]) for p in current]
        out.append(list(current))
    out[5][3] = -1  # a silent bass step
    return out


def test_encode_then_decode_gives_the_same_notes() -> None:
    original = chorale()
    source, target = encode_source(original), encode_target(original)
    assert source.startswith("M:3/4 K:-1 p72 d4")
    again = decode(source, target)
    assert again.voices == original.voices
    assert (again.meter, again.key) == ("3/4", -1)
    assert check_harmony(source, target).valid


def test_jsb_steps_merge_held_notes_within_bars() -> None:
    piece = from_steps("x", [[60, 55, 52, 48]] * 20)
    assert piece.bars == 2
    assert piece.voices["S"] == [[Note(60, 16)], [Note(60, 4)]]
    assert check_harmony(encode_source(piece), encode_target(piece)).valid


def test_transposition_moves_every_pitch_and_the_key() -> None:
    moved = transpose(chorale(), 2)
    assert moved.voices["S"][0][0] == Note(74, 4)
    assert moved.voices["S"][1][1] == Note(None, 4)
    assert moved.key == 1  # F major (-1) up a tone: G major (1)


@pytest.mark.parametrize(
    "edit, reason",
    [
        (lambda t: t.replace("V:A p65 d8 p67 d4", "V:A p65 d8 p67 d2"), "durations"),
        (lambda t: t.replace("p48 d12", "p20 d12"), "range"),
        (lambda t: t.rsplit("|", 2)[0] + "|", "bar count"),
        (lambda t: t.replace("V:T p60 d12 ", "", 1), "voices"),
        (lambda t: t.replace("V:T", "V:A", 1), "malformed"),
        (lambda t: t.replace("d8", "x8", 1), "malformed"),
    ],
)
def test_invalid_harmonisations_say_why(edit, reason: str) -> None:
    original = chorale()
    target = edit(encode_target(original))
    result = check_harmony(encode_source(original), target)
    assert not result.valid and result.reason.startswith(reason)


def test_jsb_reader_uses_its_splits_and_transposes_training(tmp_path: Path) -> None:
    pieces = {"train": [steps(40, 1), steps(36, 2)], "valid": [steps(32, 3)], "test": []}
    (tmp_path / "jsb.json").write_text(json.dumps(pieces))
    data = Data(
        root=str(tmp_path),
        format="chorales",
        options=ChoraleOptions(files="jsb.json", transpose=(-1, 1)),
    )
    train = read_chorales(data, "train", "train", 1)
    assert len(train) == 2 * 3
    valid = read_chorales(data, "valid", "valid", 1)
    assert len(valid) == 1
    assert all(check_harmony(s, t).valid for s, t in zip(train.src, train.tgt or [], strict=True))
    with pytest.raises(DataError, match="empty"):
        read_chorales(data, "test", "test", 1)
    with pytest.raises(DataError, match="no split 'dev'"):
        read_chorales(data, "dev", "dev", 1)


def test_ragged_steps_are_refused(tmp_path: Path) -> None:
    (tmp_path / "jsb.json").write_text(json.dumps({"train": [[[60, 55, 52]]]}))
    with pytest.raises(DataError, match=r"train\[0\]"):
        read_chorales(
            Data(root=str(tmp_path), format="chorales", options=ChoraleOptions(files="jsb.json")),
            "train",
            "train",
            1,
        )


def test_midi_and_musicxml_hold_the_notes(tmp_path: Path) -> None:
    music21 = pytest.importorskip("music21")
    from seq2seq.tasks.music.io import write_output

    original = chorale()
    paths = write_output(
        Data(format="chorales"), tmp_path, "c", encode_source(original), encode_target(original)
    )
    assert sorted(p.suffix for p in paths) == [".mid", ".musicxml"]
    score = music21.converter.parse(str(tmp_path / "c.musicxml"))
    assert len(score.parts) == 4
    soprano = [n.pitch.midi for n in score.parts[0].flatten().notes]
    assert soprano == [72, 74, 76, 77]
    midi = music21.converter.parse(str(tmp_path / "c.mid"))
    assert len(midi.flatten().notes) == sum(
        1 for bars in original.voices.values() for bar in bars for n in bar if n.pitch is not None
    )


def test_piano_roll_draws_every_note_bar_and_voice(tmp_path: Path) -> None:
    pytest.importorskip("music21")
    pytest.importorskip("matplotlib")
    from seq2seq.tasks.music.io import chorale_score, write_output
    from seq2seq.tasks.music.pianoroll import draw_pianoroll

    original = chorale()
    roll = draw_pianoroll(chorale_score(original), tmp_path / "c.png", "a title")
    sounding = [n for bars in original.voices.values() for bar in bars for n in bar if n.pitch]
    assert roll.notes == len(sounding)
    assert roll.bars == 2 and roll.quarters == 6.0  # two bars of 3/4
    assert roll.pitch_range == (48, 77)
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    paths = write_output(
        Data(format="chorales"),
        tmp_path,
        "w",
        encode_source(original),
        encode_target(original),
        picture=True,
    )
    assert sorted(p.suffix for p in paths) == [".mid", ".musicxml", ".png"]


# --------------------------------------------------------------------- bar by bar


def test_bar_examples_hold_the_previous_bar_and_ask_for_one() -> None:
    piece = chorale()
    examples = bar_examples(piece)
    assert [tgt for _, tgt in examples] == encode_target(piece).replace("| ", "|\n").split("\n")
    first, second = (src for src, _ in examples)
    assert "V:" not in first  # nothing before the first bar
    assert first.startswith("M:3/4 K:-1 | p72 d4")
    assert second.startswith("M:3/4 K:-1 V:S p72 d4 p74 d4 p76 d4 V:A p65 d8")
    for b, (src, tgt) in enumerate(examples):  # each source asks for its own bar
        assert parse_source(src)[2] == [piece.voices["S"][b]]
        assert check_harmony(src, tgt).valid


class RecordingTranslator:
    """Answers each bar source with rests filling its bar; records every search."""

    def __init__(self) -> None:
        self.searches: list[list[str]] = []
        self.limits: list[int] = []

    def with_search(self, max_len_a: float, max_len_b: int) -> "RecordingTranslator":
        assert max_len_a == 0.0
        self.limits.append(max_len_b)
        return self

    def translate(self, sources: list[str]) -> list[str]:
        self.searches.append(list(sources))
        outputs = []
        for source in sources:
            (bar,) = parse_source(source)[2]
            length = sum(n.duration for n in bar)
            outputs.append(" ".join(f"V:{v} r d{length}" for v in "ATB") + " |")
        return outputs


def test_harmonizing_by_bars_searches_once_per_bar_with_its_own_previous_bar() -> None:
    from seq2seq.tasks.music.bars import harmonize_by_bars

    long_one = from_steps("long", steps(48, 1))  # 3 bars
    sources = [encode_source(chorale()), encode_source(long_one), "not music"]
    translator = RecordingTranslator()
    outputs = harmonize_by_bars(translator, sources)  # type: ignore[arg-type]
    assert [len(batch) for batch in translator.searches] == [2, 2, 1]  # bars in rounds
    # each round's outputs end where no valid bar of its longest bar could go on:
    # 3 voices x (marker + 16 sixteenth notes of 2 tokens) + "|"; the 3/4 bars alone: 12
    assert translator.limits == [3 * 33 + 1, 3 * 33 + 1, 3 * 33 + 1]
    assert longest_bar_output(12) == 3 * 25 + 1
    assert all(check_harmony(s, o).valid for s, o in zip(sources[:2], outputs[:2], strict=True))
    assert outputs[2] == "" and not check_harmony(sources[2], outputs[2]).valid
    # the second bar reads the first as the model wrote it (rests), not as Bach did
    assert (
        "V:S p72 d4 p74 d4 p76 d4 V:A r d12 V:T r d12 V:B r d12 | p77 d8"
        in (translator.searches[1][0])
    )


def test_the_bar_unit_reads_bars_for_training_and_pieces_for_scoring(tmp_path: Path) -> None:
    (tmp_path / "jsb.json").write_text(
        json.dumps({"train": [steps(40, 1)], "test": [steps(32, 2)]})
    )
    data = Data(
        root=str(tmp_path),
        format="chorales",
        options=ChoraleOptions(files="jsb.json", unit="bar"),
    )
    assert len(read_chorales(data, "train", "train", 1)) == 3  # 40 sixteenths: 3 bars
    whole = read_pieces(data, "test")
    assert (
        len(whole) == 1
        and parse_source(whole.src[0])[2] == from_steps("t", steps(32, 2)).voices["S"]
    )
