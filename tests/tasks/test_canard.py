"""CANARD reader: dialog context from the ids, both targets, errors naming file and line."""

from pathlib import Path

import pytest

from seq2seq.config import Data
from seq2seq.data.readers import DataError
from seq2seq.tasks.query_expansion.canard import (
    CanardOptions,
    pick_context,
    read_canard,
    read_turns,
    source_text,
    split_terms,
)
from seq2seq.tasks.query_expansion.dialog import context_entry, rewrite_dialogs

ROWS = [
    (
        "C_1_q#0",
        "what team did unitas play for",
        "what team did Johnny Unitas play for?",
        "team | unitas | colts",
    ),
    (
        "C_1_q#1",
        "how many games did they win",
        "how many games did the Colts win?",
        "games | colts | colts",
    ),
    ("C_1_q#2", "who coached", "who coached the Colts?", ""),
    ("C_2_q#0", "where was she born", "where was Ada Lovelace born?", "lovelace | london"),
]


def write_canard(root: Path, stem: str = "train", rows=ROWS) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{stem}.tsv").write_text(
        "id\tquestion\trewrite\n" + "".join(f"{i}\t{q}\t{r}\n" for i, q, r, _ in rows)
    )
    (root / f"{stem}.answer_terms.tsv").write_text(
        "id\tquestion\tterms\n" + "".join(f"{i}\t{q}\t{t}\n" for i, q, _, t in rows)
    )


def test_turns_get_the_earlier_questions_of_their_dialog(tmp_path: Path) -> None:
    write_canard(tmp_path)
    turns = read_turns(str(tmp_path), "train", context_turns=3)
    assert turns[0].context == ()
    assert turns[2].context == (ROWS[0][1], ROWS[1][1])
    assert turns[3].context == ()  # another dialog
    assert turns[1].terms == ("games", "colts")  # distinct, in order


def test_turns_can_carry_the_earlier_reference_rewrites(tmp_path: Path) -> None:
    write_canard(tmp_path)
    turns = read_turns(str(tmp_path), "train", context_turns=3, context="rewrites")
    assert turns[2].context == (ROWS[0][2], ROWS[1][2])
    assert (turns[2].dialog, turns[2].index) == ("C_1", 2)
    data = Data(root=str(tmp_path), format="canard", options=CanardOptions(context="rewrites"))
    corpus = read_canard(data, "train", "train")
    assert corpus.src[1] == f"rewrite: how many games did they win || {ROWS[0][2]}"


class EchoTranslator:
    """Rewrites a source as ``<question>!``; records each batched search's sources."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def translate(self, sources: list[str]) -> list[str]:
        self.calls.append(sources)
        return [s.split(": ", 1)[1].split(" || ")[0] + "!" for s in sources]


def test_dialogs_are_rewritten_in_rounds_with_the_models_own_earlier_rewrites(
    tmp_path: Path,
) -> None:
    write_canard(tmp_path)
    turns = read_turns(str(tmp_path), "train", context_turns=3, context="rewrites")
    translator = EchoTranslator()
    rewrites, contexts = rewrite_dialogs(translator, turns, 3)  # type: ignore[arg-type]
    assert rewrites == [f"{q}!" for _, q, _, _ in ROWS]
    # the context is the model's output for the earlier turns, never the reference
    assert contexts[2] == (f"{ROWS[0][1]}!", f"{ROWS[1][1]}!")
    assert contexts[3] == ()
    # one search per turn index: both dialogs' first turns together
    assert [len(c) for c in translator.calls] == [2, 1, 1]


def test_a_rewrite_that_ran_away_leaves_its_question_in_later_contexts(tmp_path: Path) -> None:
    write_canard(tmp_path)
    turns = read_turns(str(tmp_path), "train", context_turns=3, context="rewrites")

    class Looping(EchoTranslator):
        def translate(self, sources: list[str]) -> list[str]:
            return [out + " thru" * 60 for out in super().translate(sources)]

    rewrites, contexts = rewrite_dialogs(Looping(), turns, 3)  # type: ignore[arg-type]
    assert rewrites[0].endswith("thru thru")  # the output is the model's, loop and all
    assert contexts[1] == (ROWS[0][1],)  # the next turn reads the question instead
    assert context_entry("who won", "who won the 1958 title") == "who won the 1958 title"


def test_corpus_has_rewrites_then_terms_and_skips_rows_without_terms(tmp_path: Path) -> None:
    write_canard(tmp_path)
    corpus = read_canard(Data(root=str(tmp_path), format="canard"), "train", "train")
    assert corpus.tgt is not None
    assert len(corpus) == 4 + 3
    assert corpus.src[1] == "rewrite: how many games did they win || what team did unitas play for"
    assert corpus.tgt[1] == ROWS[1][2]
    assert corpus.src[4].startswith("terms: what team")
    assert corpus.tgt[4] == "team | unitas | colts"


def test_context_keeps_the_first_question_and_the_most_recent() -> None:
    earlier = ["q0", "q1", "q2", "q3", "q4"]
    assert pick_context(earlier, 3) == ["q0", "q3", "q4"]
    assert pick_context(earlier, 1) == ["q0"]
    assert pick_context(earlier, 0) == []
    assert pick_context(earlier[:2], 3) == ["q0", "q1"]


def test_source_text_and_terms_are_normalised() -> None:
    assert source_text("terms", " who  won ", ["a  b"]) == "terms: who won || a b"
    assert split_terms("Colts | colts |  | Unitas") == ["colts", "unitas"]


def test_ragged_row_names_file_and_line(tmp_path: Path) -> None:
    write_canard(tmp_path)
    path = tmp_path / "train.tsv"
    lines = path.read_text().splitlines()
    lines[3] = lines[3].replace("\t", " ", 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"train.tsv:4: expected 3"):
        read_turns(str(tmp_path), "train", 3)


def test_misaligned_term_file_is_refused(tmp_path: Path) -> None:
    write_canard(tmp_path)
    write_canard(tmp_path / "other", rows=ROWS[:3])
    (tmp_path / "other" / "train.tsv").replace(tmp_path / "train.tsv")
    with pytest.raises(DataError, match="rows"):
        read_turns(str(tmp_path), "train", 3)
