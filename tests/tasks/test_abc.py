"""ABC tunes: tokens -> text -> tokens round trip, validity, the reader's hold-out."""

from pathlib import Path

import pytest

from seq2seq.config import Data
from seq2seq.data.readers import DataError
from seq2seq.tasks.music.abc import (
    AbcError,
    AbcOptions,
    check_tune,
    parse_tunes,
    read_abc,
    source_from_abc,
    to_abc,
    tokenize,
)
from seq2seq.tasks.music.abc_count import with_positions, without_positions

TUNE = """X: 7
T:The Test Jig
% a comment
S:nowhere
M:6/8
L:1/8
K:G
P:A
d|"G"g2g B^AB|d2d G3|"Em"GAB "Am"A2A|\\
"D7"ABc "G"BAG:|
K:D
P:B
[1"D"(3fed [df]3|[2"A7"e2-e c'/2d/2e>f||
"""


def book(n: int) -> str:
    return "\n\n".join(
        TUNE.replace("X: 7", f"X: {i}").replace("Test", f"Test{i}") for i in range(n)
    )


def test_tokens_rejoin_to_the_body() -> None:
    tunes, errors = parse_tunes(TUNE, "t.abc")
    assert not errors
    tune = tunes[0]
    assert (tune.meter, tune.unit, tune.key, tune.title) == ("6/8", "1/8", "G", "The Test Jig")
    assert tune.tokens[:5] == ["d", "|", '"G"', "g2", "g"]
    assert "[K:D]" in tune.tokens and "(3" in tune.tokens and "[df]3" in tune.tokens
    assert "c'/2" in tune.tokens and ">" in tune.tokens


def test_tokens_to_text_to_tokens_round_trip() -> None:
    tune = parse_tunes(TUNE, "t.abc")[0][0]
    source = " ".join(["M:6/8", "K:G", "L:1/8", "T:test", *tune.tokens[:2]])
    target = " ".join(tune.tokens[2:])
    text = to_abc(source, target)
    again = parse_tunes(text, "again")[0][0]
    assert again.tokens == tune.tokens
    assert (again.meter, again.key, again.unit) == ("6/8", "G", "1/8")


def test_the_tune_is_valid_and_broken_ones_say_why() -> None:
    pytest.importorskip("music21")
    tune = parse_tunes(TUNE, "t.abc")[0][0]
    source = " ".join(["M:6/8", "K:G", "L:1/8", *tune.tokens[:2]])
    target = " ".join(tune.tokens[2:])
    assert check_tune(source, target).valid
    assert check_tune(source, target.replace("d2 d G3", "d2 d G3 G")).reason == "over-full bar"
    assert check_tune(source, target.replace("d2 d G3", "d2 d G2")).reason == "short bar"
    assert check_tune(source, target.replace("g2", "T:x", 1)).reason == "tokens"


def test_unreadable_text_names_the_place() -> None:
    with pytest.raises(AbcError, match="character 3"):
        tokenize("ab{c}")


def test_reader_holds_out_by_tune_and_skips_unreadable_tunes(tmp_path: Path) -> None:
    (tmp_path / "a.abc").write_text(book(60) + "\n\nX: 99\nT:Bad\nK:G\nab{c}|\n")
    data = Data(root=str(tmp_path), format="abc", options=AbcOptions(files="*.abc", holdout=0.2))
    parts = {p: read_abc(data, p, p) for p in ("train", "valid", "test")}
    assert sum(len(c) for c in parts.values()) == 60  # the unreadable tune is left out
    assert all(len(c) > 0 for c in parts.values())
    titles = [{s.split("T:test")[1].split()[0] for s in c.src} for c in parts.values()]
    assert not titles[0] & titles[1] and not titles[0] & titles[2]
    first = parts["train"]
    assert first.src[0].split()[:3] == ["M:6/8", "K:G", "L:1/8"]
    assert first.src[0].split()[-2:] == ["d", "|"]  # header and first bar -> the rest
    with pytest.raises(DataError, match="no ABC files"):
        options = AbcOptions(files="*.txt")
        read_abc(Data(root=str(tmp_path), format="abc", options=options), "train", "train")


def test_prompt_on_one_line_or_several() -> None:
    one = source_from_abc("T:My Tune M:6/8 K:G g2g B^AB|")
    assert one == "M:6/8 K:G T:my T:tune g2 g B ^A B |"
    lines = source_from_abc("T:My Tune\nM:6/8\nK:G\ng2g B^AB|")
    assert lines == one


def test_a_tune_with_unpaired_repeats_still_gets_a_midi_file(tmp_path: Path, capsys) -> None:
    pytest.importorskip("music21")
    from seq2seq.tasks.music.io import write_output

    source = "M:6/8 L:1/8 K:D A |"
    target = "d2 A A B A | d3 d3 :: g2 d B B B | d3 d3 ||"
    paths = write_output(Data(format="abc"), tmp_path, "t", source, target)
    assert [p.suffix for p in paths] == [".abc", ".mid"]
    assert all(p.stat().st_size > 0 for p in paths)


def test_documents_give_the_tune_as_abc_and_midi_and_say_when_no_file_could_be_made() -> None:
    """What the server's /v1/generate returns for a music output: validity, the ABC text,
    the MIDI file in base64; an output music21 cannot write gets files_error instead."""
    pytest.importorskip("music21")
    import base64

    from seq2seq.tasks.music.io import documents

    source = "M:6/8 L:1/8 K:D A |"
    target = "d2 A A B A | d3 d3 | g2 d B B B | d3 d3 |]"
    found = documents(Data(format="abc"), source, target)
    assert found["valid"] is True and found["reason"] is None
    assert found["abc"] == to_abc(source, target)
    assert base64.b64decode(found["midi"]).startswith(b"MThd")
    broken = documents(Data(format="chorales"), "M:4/4 p72 d16 |", "V:A p60")  # cut short
    assert broken["valid"] is False and broken["reason"]
    assert "midi" not in broken and broken["files_error"]


# --------------------------------------------------------------------- transposition

ACCIDENTALS = """X:1
T:Accidentals
M:3/4
L:1/8
K:G
"G"B^cd "D7"=f2 f|"Am/C"[ce]2 B,2 c'2|[K:Dm]_B2 B c2 ^C|
"""


def sounding(source: str, target: str) -> tuple[list[int], list[int]]:
    """What music21 reads in a tune: the MIDI pitches of its notes in order (chords'
    included), and the pitch classes of its chord symbols' roots."""
    from music21 import harmony

    from seq2seq.tasks.music.abc import parse_abc

    notes = parse_abc(to_abc(source, target)).flatten().notes
    symbols = [n for n in notes if isinstance(n, harmony.ChordSymbol)]
    pitches = [p.midi for n in notes if n not in symbols for p in n.pitches]
    return pitches, [n.root().pitchClass for n in symbols]


def as_example(tune) -> tuple[str, str]:
    from seq2seq.tasks.music.abc import first_bar_end, header_tokens

    cut = first_bar_end(tune.tokens)
    return " ".join(header_tokens(tune) + tune.tokens[:cut]), " ".join(tune.tokens[cut:])


@pytest.mark.parametrize("text", [ACCIDENTALS, TUNE])
@pytest.mark.parametrize("semitones", [-5, -2, -1, 1, 2, 7])
def test_a_transposed_tune_sounds_every_note_moved_by_the_shift(text: str, semitones: int) -> None:
    pytest.importorskip("music21")
    from seq2seq.tasks.music.abc_transpose import key_sharps, transpose_tune

    tune = parse_tunes(text, "t.abc")[0][0]
    moved = transpose_tune(tune, semitones)
    (notes, roots), (moved_notes, moved_roots) = (
        sounding(*as_example(tune)),
        sounding(*as_example(moved)),
    )
    assert moved_notes == [p + semitones for p in notes]
    assert moved_roots == [(r + semitones) % 12 for r in roots]
    assert abs(key_sharps(moved.key)) <= 6 and check_tune(*as_example(moved)).valid
    back = transpose_tune(moved, -semitones)  # spelled in the same keys: the same tokens
    assert back.key == tune.key and back.tokens == tune.tokens


def test_keys_move_to_the_simplest_spelling_and_odd_keys_do_not_move() -> None:
    from seq2seq.tasks.music.abc_transpose import Untransposable, best_steps, transpose_key

    assert [transpose_key("G", best_steps("G", s), s) for s in (1, 2, -1)] == ["Ab", "A", "F#"]
    assert transpose_key("D mix", best_steps("D mix", 2), 2) == "E mix"
    assert transpose_key("Am", best_steps("Am", 3), 3) == "Cm"
    for key in ("HP", "none", "Gxyz"):
        with pytest.raises(Untransposable):
            best_steps(key, 2)


def test_the_reader_transposes_the_training_split_only(tmp_path: Path) -> None:
    (tmp_path / "tunes.abc").write_text(book(30) + "\n\nX: 99\nT:Pipes\nK:HP\nABc|d2|\n")
    data = Data(root=str(tmp_path), format="abc", options=AbcOptions(transpose=(-1, 1)))
    plain = Data(root=str(tmp_path), format="abc")
    train, once = read_abc(data, "train", "train"), read_abc(plain, "train", "train")
    pipes = sum("K:HP" in s for s in once.src)
    assert len(train) == 3 * (len(once) - pipes) + pipes  # the pipes tune keeps shift 0
    assert {s.split()[1] for s in train.src} >= {"K:G", "K:Ab", "K:F#"}
    assert len(read_abc(data, "valid", "valid")) == len(read_abc(plain, "valid", "valid"))


def test_a_transposition_range_must_hold_zero() -> None:
    from seq2seq.config import ConfigError

    with pytest.raises(ConfigError, match=r"data.abc.transpose: \[1, 2\] must be"):
        AbcOptions(transpose=(1, 2))


def test_position_tokens_say_what_is_left_of_the_bar_after_each_note() -> None:
    header = ["M:6/8", "K:G", "L:1/8"]
    body = tokenize('g2g B^AB|(3ABc d2 z|[1 G3 G3:|[K:D] "G" [df]3 d>e f||[M:2/4] A4|')
    marked = with_positions(header, body)
    assert " ".join(marked) == (
        "g2 @4 g @3 B @2 ^A @1 B @0 | (3 A @16/3 B @14/3 c @4 d2 @2 z @1 | "
        '[1 G3 @3 G3 @0 :| [K:D] "G" [df]3 @3 d @2 > e @1 f @0 || [M:2/4] A4 @0 |'
    )
    assert without_positions(" ".join(marked)).split() == body


def test_position_tokens_change_neither_validity_nor_the_abc_text() -> None:
    tune = parse_tunes(TUNE, "t.abc")[0][0]
    header = ["M:6/8", "K:G", "L:1/8"]
    marked = with_positions(header, tune.tokens)
    plain = " ".join(header + tune.tokens[:2]), " ".join(tune.tokens[2:])
    both = " ".join(header + marked[:3]), " ".join(marked[3:])
    assert to_abc(*both) == to_abc(*plain)
    assert check_tune(*both, parse=False) == check_tune(*plain, parse=False)
    broken = both[1].replace("d2 @4 d @3 G3 @0", "d2 @4 d @3 G2 @1")
    assert check_tune(both[0], broken, parse=False).reason == "short bar"


def test_the_reader_and_a_prompt_mark_positions_when_the_recipe_asks(tmp_path: Path) -> None:
    (tmp_path / "a.abc").write_text(book(20))
    marked = Data(root=str(tmp_path), format="abc", options=AbcOptions(positions=True))
    plain = Data(root=str(tmp_path), format="abc")
    ours, theirs = read_abc(marked, "train", "t"), read_abc(plain, "train", "t")
    assert ours.tgt is not None and theirs.tgt is not None and len(ours) == len(theirs)
    assert [without_positions(s) for s in ours.src] == theirs.src
    assert [without_positions(t) for t in ours.tgt] == theirs.tgt
    assert all(s.endswith("d @5 |") for s in ours.src)  # the pickup: 1 of 6 eighths
    assert source_from_abc("T:My Tune M:6/8 K:G g2g B^AB|", positions=True) == (
        "M:6/8 K:G T:my T:tune g2 @4 g @3 B @2 ^A @1 B @0 |"
    )
