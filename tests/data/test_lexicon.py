"""The lexical table: IBM model 1 finds which target token each source token becomes;
the file round-trips any piece; a bad file is an error naming its line."""

from pathlib import Path

import numpy as np
import pytest

from seq2seq.data.batching import IdArray
from seq2seq.data.lexicon import learn_lexicon, read_lexicon, write_lexicon
from seq2seq.data.readers import DataError

SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]


def _pairs(count: int, seed: int = 0) -> tuple[IdArray, IdArray, dict[int, int]]:
    """Sentences of source ids 4..13, each translated word by word to target id 30 - id
    in a shuffled order, plus a function word (id 40) in every target."""
    rng = np.random.default_rng(seed)
    src, tgt = [], []
    for _ in range(count):
        words = rng.choice(np.arange(4, 14), size=rng.integers(2, 6), replace=False)
        translated = [30 - int(w) for w in words] + [40]
        rng.shuffle(translated)
        src.append([int(w) for w in words])
        tgt.append(translated)
    return IdArray.from_lists(src), IdArray.from_lists(tgt), {w: 30 - w for w in range(4, 14)}


def test_ibm1_finds_each_word_translation_despite_the_word_in_every_sentence():
    src, tgt, truth = _pairs(400)
    lexicon = learn_lexicon(src, tgt, src_vocab=20, tgt_vocab=45, translations=3)
    for source, target in truth.items():
        assert int(lexicon.best[source, 0]) == target
        assert float(lexicon.probs[source, 0]) > 0.5
    # co-occurrence would rank the function word first everywhere: EM gives it to NULL
    assert int(lexicon.frequent[0]) == 40
    assert int(lexicon.counts[0]) == 400
    assert (lexicon.best[14:] == -1).all()  # never seen: no translations


def test_link_budget_uses_the_first_pairs_only():
    src, tgt, _ = _pairs(100)
    lexicon = learn_lexicon(src, tgt, 20, 45, max_links=60)
    assert int(lexicon.counts[0]) < 100  # the function word counted in the used pairs only


def test_file_round_trip_with_awkward_pieces(tmp_path: Path):
    src, tgt, _ = _pairs(200)
    lexicon = learn_lexicon(src, tgt, 20, 45, translations=4)
    odd = {5: "tab\there", 6: "back\\slash", 7: "new\nline", 8: "\\t"}
    src_pieces = SPECIALS + [odd.get(i, f"s{i}") for i in range(4, 20)]
    tgt_pieces = SPECIALS + [f"t{i}" if i != 25 else "a\tb\\" for i in range(4, 45)]
    path = tmp_path / "shortlist.tsv"
    write_lexicon(path, lexicon, src_pieces, tgt_pieces)
    back = read_lexicon(path, src_pieces, tgt_pieces)
    for source in range(4, 14):
        kept = lexicon.best[source][lexicon.best[source] >= 0]
        assert back.best[source, : len(kept)].tolist() == kept.tolist()
    assert back.frequent.tolist() == lexicon.frequent.tolist()
    assert back.counts.tolist() == lexicon.counts.tolist()


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("s4\tt26", "line 2: expected 3 tab-separated fields, found 2"),
        ("s4\tnope\t0.5", "line 2: target piece 'nope' is not in the run's vocabulary"),
        ("zz\tt26\t0.5", "line 2: source piece 'zz' is not in the run's vocabulary"),
        ("s4\tt26\tmuch", "line 2: 'much' is not a number"),
        ("s4\tt26\t-1", "line 2: '-1' is negative"),
    ],
)
def test_bad_rows_name_the_file_and_line(tmp_path: Path, row: str, message: str):
    path = tmp_path / "shortlist.tsv"
    path.write_text(f"# header\n{row}\n\tt26\t3\n", encoding="utf-8")
    pieces = SPECIALS + [f"s{i}" for i in range(4, 20)]
    targets = SPECIALS + [f"t{i}" for i in range(4, 45)]
    with pytest.raises(DataError, match=str(path)) as err:
        read_lexicon(path, pieces, targets)
    assert message in str(err.value)
