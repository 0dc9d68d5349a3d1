import numpy as np
import pytest

from seq2seq.data.batching import IdArray, make_batch, sentence_batches, token_batches
from seq2seq.data.tokenizer import BOS_ID, EOS_ID, PAD_ID


def lengths(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(1, 40, n), rng.integers(1, 40, n)


def test_batches_cover_every_example_once_within_the_budget():
    src, tgt = lengths(1000)
    batches = token_batches(src, tgt, 300, seed=1, epoch=0)
    seen = np.sort(np.concatenate(batches))
    assert np.array_equal(seen, np.arange(1000))
    for batch in batches:
        width = int(np.maximum(src[batch], tgt[batch]).max()) + 1
        assert width * len(batch) <= 300 or len(batch) == 1


def test_batches_are_seeded_per_epoch():
    src, tgt = lengths(500)
    a = token_batches(src, tgt, 256, seed=3, epoch=2)
    b = token_batches(src, tgt, 256, seed=3, epoch=2)
    c = token_batches(src, tgt, 256, seed=3, epoch=3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert any(not np.array_equal(x, y) for x, y in zip(a, c, strict=False))


def test_length_bucketing_keeps_padding_low_on_both_sides():
    # translation-like lengths: the target follows the source, give or take 5 tokens
    # (sorting by source alone left 11% target padding here)
    rng = np.random.default_rng(0)
    src = rng.integers(5, 40, 4000)
    tgt = np.clip(src + rng.integers(-5, 6, 4000), 1, None)
    batches = token_batches(src, tgt, 1024, seed=1, epoch=0)
    for side in (src, tgt):
        real = sum(int(side[b].sum()) for b in batches)
        padded = sum(int(side[b].max()) * len(b) for b in batches)
        assert 1 - real / padded < 0.10


def test_make_batch_adds_bos_and_eos():
    src = IdArray.from_lists([[5, 6, 7], [8]])
    tgt = IdArray.from_lists([[9], [10, 11]])
    batch = make_batch(src, tgt, np.array([0, 1]))
    assert batch.src.tolist() == [[5, 6, 7, EOS_ID], [8, EOS_ID, PAD_ID, PAD_ID]]
    assert batch.src_lengths.tolist() == [4, 2]
    assert batch.tgt_in.tolist() == [[BOS_ID, 9, PAD_ID], [BOS_ID, 10, 11]]
    assert batch.tgt_out.tolist() == [[9, EOS_ID, PAD_ID], [10, 11, EOS_ID]]
    assert batch.num_tgt_tokens == 5


def test_id_array_round_trip_and_select():
    seqs = [[1, 2], [], [3, 4, 5]]
    ids = IdArray.from_lists(seqs)
    assert [ids[i].tolist() for i in range(3)] == seqs
    assert ids.lengths.tolist() == [2, 0, 3]
    kept = ids.select(np.array([True, False, True]))
    assert [kept[i].tolist() for i in range(2)] == [[1, 2], [3, 4, 5]]
    joined = IdArray.concat([ids, kept])
    assert len(joined) == 5 and joined[4].tolist() == [3, 4, 5]


@pytest.mark.parametrize("size", [1, 3, 64])
def test_sentence_batches_partition(size: int):
    lens = np.array([3, 9, 1, 4, 4, 7])
    batches = sentence_batches(lens, size)
    assert sorted(np.concatenate(batches).tolist()) == list(range(6))
    assert all(len(b) <= size for b in batches)
