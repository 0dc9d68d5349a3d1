"""The ABC bar grammar: whatever a search picks among the allowed tokens keeps the bar
rules of ``check_tune``; a real tune's own tokens are allowed; what is never ABC is not."""

from fractions import Fraction

import pytest
import torch

from seq2seq.data.tokenizer import EOS_ID, UNK_ID
from seq2seq.tasks.music.abc import check_tune, tokenize
from seq2seq.tasks.music.abc_count import with_positions, without_positions
from seq2seq.tasks.music.abc_grammar import (
    BROKEN,
    ENDING,
    NEVER,
    NOTE,
    OTHER,
    POSITION,
    REPEAT_BAR,
    TICKS,
    TUPLET,
    AbcConstraint,
    classify,
)

SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]
HEADERS = ["M:6/8", "M:4/4", "M:2/4", "M:3/4", "M:none", "K:G", "K:D", "L:1/8", "L:1/4", "T:x"]
BODY = tokenize(
    '"G"g2g B^AB|d2d G3|"Em"GAB "Am"A2A|"D7"ABc "G"BAG:|[K:D] [1"D"(3fed [df]3|'
    '[2"A7"e2-e c\'/2d/2e>f|| |: :| |] |1 A4 B8 z/ c/2 (2 (4 x ~ ( ) [M:3/4] [L:1/4] d|'
)
PIECES = SPECIALS + HEADERS + sorted(set(BODY))
ID = {p: i for i, p in enumerate(PIECES)}
SOURCES = [
    "M:6/8 K:G L:1/8 T:x d |",  # a pickup
    "M:4/4 K:D g2g B^AB d2 |",  # a full bar (L 1/8 by default)
    "M:2/4 K:G d2d G3 A2 |",  # a full bar in sixteenths (2/4's default unit)
    "M:3/4 L:1/4 K:G A B c :|",  # a repeat: the next bar may be short
]


def constraint() -> AbcConstraint:
    return AbcConstraint(PIECES, PIECES)


def source_tokens(source: str) -> list[str]:
    """Header fields as they are, the body through the ABC tokenizer."""
    return [t for f in source.split() for t in ([f] if f[1:2] == ":" else tokenize(f))]


def marked(source: str) -> list[str]:
    """The source's tokens with a position token after each note."""
    tokens = source_tokens(source)
    header = [t for t in tokens if t[1:2] == ":"]
    return header + with_positions(header, tokens[len(header) :])


def start(c: AbcConstraint, source: str) -> dict[str, torch.Tensor]:
    return c.start(torch.tensor([[ID[t] for t in source_tokens(source)]]), torch.tensor([0]))


def walks(
    c: AbcConstraint,
    source: str,
    seed: int,
    n: int = 60,
    steps: int = 60,
    pieces: list[str] = PIECES,
    positions: bool = False,
) -> list[list[str]]:
    """``n`` random searches under the grammar at once (rows of one state, as a search
    keeps them): notes three times as likely as anything else; PAD and BOS never chosen,
    as in a search; the step limit ends a row as a forced EOS would. With ``positions``,
    the source has position tokens (``with_positions``) and ``pieces`` has them too."""
    generator = torch.Generator().manual_seed(seed)
    tokens = marked(source) if positions else source_tokens(source)
    ids = torch.tensor([[pieces.index(t) for t in tokens]])
    state = c.start(ids, torch.zeros(n, dtype=torch.long))
    weights = torch.where(c.note, 3.0, 1.0)
    weights[[0, 2]] = 0.0
    outputs: list[list[str]] = [[] for _ in range(n)]
    done = torch.zeros(n, dtype=torch.bool)
    for _ in range(steps):
        tokens = torch.multinomial(c.allowed(state) * weights, 1, generator=generator).squeeze(1)
        tokens = torch.where(done, EOS_ID, tokens)
        done |= tokens == EOS_ID
        for row in (~done).nonzero().flatten().tolist():
            outputs[row].append(pieces[tokens[row]])
        state = c.advance(state, tokens)
    return outputs


def test_pieces_are_classified_with_their_lengths_in_ticks() -> None:
    assert classify("A3/2")[:2] == (NOTE, 3 * TICKS // 2)
    assert classify("[df]3")[:2] == (NOTE, 3 * TICKS)
    assert classify("z/")[:2] == (NOTE, TICKS // 2)
    assert classify("(3") == (TUPLET, 0, 3, 2, 3)
    assert classify("|1")[0] == classify(":|")[0] == REPEAT_BAR
    assert classify("[2")[0] == ENDING
    assert classify("[K:D]")[0] == classify('"Em"')[0] == classify("-")[0] == OTHER
    assert classify(">")[0] == BROKEN
    assert classify("[M:3/4]")[0] == classify("[L:1/4]")[0] == classify("<unk>")[0] == NEVER


@pytest.mark.parametrize("source", SOURCES)
def test_every_walk_under_the_grammar_keeps_the_bar_rules(source: str) -> None:
    outputs = walks(constraint(), source, seed=SOURCES.index(source))
    for out in outputs:
        check = check_tune(" ".join(source_tokens(source)), " ".join(out), parse=False)
        assert check.valid, (check.reason, out)
    # the walks wrote music, not only chord symbols and slurs
    assert sum(len([t for t in o if classify(t)[0] == NOTE]) for o in outputs) > 300


# a position token for every multiple of 1/48 of L up to 8 (every length the walks make)
MARKED = PIECES + [f"@{Fraction(k, 48)}" for k in range(8 * 48 + 1)]


@pytest.mark.parametrize("source", SOURCES[:3])
def test_under_the_grammar_each_note_is_followed_by_its_true_position(source: str) -> None:
    c = AbcConstraint(MARKED, MARKED)
    assert classify("@7/2") == (POSITION, 7 * TICKS // 2, 0, 1, 1)
    outputs = walks(c, source, seed=7, pieces=MARKED, positions=True, steps=90)
    header = marked(source)[:2]
    body = without_positions(" ".join(marked(source)[2:])).split()
    for out in outputs:
        plain = without_positions(" ".join(out)).split()
        assert check_tune(" ".join(marked(source)), " ".join(out), parse=False).valid, out
        # the walk's position tokens are exactly the ones with_positions writes (but for
        # the last note's, when the step limit cut the walk right after it)
        expected = with_positions(header, body + plain)[len(marked(source)) - 2 :]
        assert out == expected[: len(out)] and len(expected) - len(out) in (0, 1)
    assert sum(classify(t)[0] == POSITION for o in outputs for t in o) > 300


def test_a_real_tune_is_allowed_token_by_token() -> None:
    c = constraint()
    source, target = "M:6/8 K:G L:1/8 T:x d |", BODY[BODY.index("|") + 1 : BODY.index("||") + 1]
    state = start(c, source)
    for token in target:
        assert c.allowed(state)[0, ID[token]], token
        state = c.advance(state, torch.tensor([ID[token]]))
    assert c.allowed(state)[0, EOS_ID]


def test_what_breaks_a_bar_is_refused() -> None:
    c = constraint()
    state = start(c, "M:6/8 K:G L:1/8 T:x g2g B^AB |")  # a full bar: the next must be too
    allowed = c.allowed(state)[0]
    assert allowed[EOS_ID] and allowed[ID["A4"]] and not allowed[ID["B8"]]  # 8 > 6 eighths
    assert not allowed[ID["[M:3/4]"]] and not allowed[ID["<unk>"]]
    state = c.advance(state, torch.tensor([ID["A4"]]))
    allowed = c.allowed(state)[0]
    assert not allowed[ID["|"]] and not allowed[EOS_ID]  # a short bar, mid-bar
    assert allowed[ID["|]"]] and allowed[ID["A"]] and not allowed[ID["G3"]]
    state = c.advance(state, torch.tensor([ID["(3"]]))  # a triplet of eighths: 2/3 each
    assert state["num"].item() == 2 and state["den"].item() == 3
    for _ in range(3):
        assert not c.allowed(state)[0, ID["|"]]  # no bar line inside a tuplet
        state = c.advance(state, torch.tensor([ID["A"]]))
    assert state["total"].item() == 6 * TICKS and c.allowed(state)[0, ID["|"]]
    assert Fraction(state["total"].item(), TICKS) == 6


def test_a_broken_rhythm_pairs_two_notes_of_one_length() -> None:
    c = constraint()
    state = start(c, "M:6/8 K:G L:1/8 T:x d |")
    assert not c.allowed(state)[0, ID[">"]]  # not before a note
    state = c.advance(state, torch.tensor([ID["A"]]))
    assert c.allowed(state)[0, ID[">"]]
    state = c.advance(state, torch.tensor([ID[">"]]))
    allowed = c.allowed(state)[0]
    assert allowed[ID["B"]] and not allowed[ID["z/"]] and not allowed[ID["G3"]]
    assert not allowed[ID["|"]] and not allowed[ID['"G"']] and not allowed[EOS_ID]
    state = c.advance(state, torch.tensor([ID["B"]]))
    assert not c.allowed(state)[0, ID[">"]]  # A>B>C is not a pair of pairs
    state = c.advance(state, torch.tensor([ID["G3"]]))  # 1 + 1 + 3 of 6 eighths
    assert not c.allowed(state)[0, ID[">"]]  # a second G3 would not fit
    state = c.advance(state, torch.tensor([ID["A"]]))  # the bar is full
    assert not c.allowed(state)[0, ID[">"]] and c.allowed(state)[0, ID["|"]]


def test_a_tuplet_keeps_room_for_its_notes() -> None:
    c = constraint()  # the shortest note of the vocabulary is half a unit
    state = start(c, "M:6/8 K:G L:1/8 T:x d |")
    for token in ("A4", "A"):
        state = c.advance(state, torch.tensor([ID[token]]))
    assert c.allowed(state)[0, ID["(3"]]  # 3 halves as a triplet: one unit, as left
    refused = c.advance(state, torch.tensor([ID["z/"]]))
    assert not c.allowed(refused)[0, ID["(3"]]  # half a unit left
    state = c.advance(start(c, "M:6/8 K:G L:1/8 T:x d |"), torch.tensor([ID["A4"]]))
    state = c.advance(state, torch.tensor([ID["(3"]]))  # two units left for three notes
    allowed = c.allowed(state)[0]
    assert allowed[ID["A"]] and allowed[ID["A2"]]
    assert not allowed[ID["G3"]]  # it fits alone (3 x 2/3) but leaves nothing for two more


def test_a_source_the_grammar_cannot_count_is_left_free() -> None:
    c = constraint()
    assert c.allowed(start(c, "M:none K:G d |"))[0].all()
    # an unknown piece in the first bar: its length is unknown; in the title: harmless
    head = [ID[t] for t in ("M:6/8", "K:G", "L:1/8")]
    in_bar = torch.tensor([[*head, ID["d"], UNK_ID, ID["|"]]])
    in_title = torch.tensor([[*head, UNK_ID, ID["d"], ID["|"]]])
    assert c.start(in_bar, torch.tensor([0]))["free"].item()
    assert not c.start(in_title, torch.tensor([0]))["free"].item()
