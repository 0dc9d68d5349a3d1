"""Batches decoded side by side (``search.workers``): the same outputs as one after
another, each worker on its own thread with one compute thread, torch's thread count
restored after, and errors raised as they would be without workers."""

import threading
import time
from dataclasses import replace

import pytest
import torch
from helpers import random_batch, tiny_model

from seq2seq.config import Search
from seq2seq.data.batching import IdArray
from seq2seq.data.lexicon import Lexicon
from seq2seq.search.batches import decode_ids, workers
from seq2seq.search.shortlist import Shortlist

VOCAB = 19
CPU = torch.device("cpu")


class Watched:
    """A model that records the thread and torch's thread count of each step, and can
    fail at its ``fail_call``-th encoding (the others taking ``delay_s``)."""

    def __init__(self, model, fail_call: int = 0, delay_s: float = 0.0) -> None:
        self.model, self.fail_call, self.delay_s = model, fail_call, delay_s
        self.encoded = 0
        self._lock = threading.Lock()
        self.threads: set[int] = set()
        self.torch_threads: set[int] = set()

    def __getattr__(self, name):
        return getattr(self.model, name)

    def encode(self, src, lengths):
        with self._lock:
            self.encoded += 1
            call = self.encoded
        if call == self.fail_call:
            raise RuntimeError(f"encoding {call}")
        time.sleep(self.delay_s)
        return self.model.encode(src, lengths)

    def step(self, tokens, state, *rest):
        self.threads.add(threading.get_ident())
        self.torch_threads.add(torch.get_num_threads())
        return self.model.step(tokens, state, *rest)


def _shortlist() -> Shortlist:
    """Source id s translates to (s * 7) % VOCAB; 3 frequent target ids."""
    best = torch.tensor([[max((s * 7) % VOCAB, 4)] if s >= 4 else [-1] for s in range(VOCAB)])
    frequent = torch.arange(4, VOCAB)
    lexicon = Lexicon(best, torch.full((VOCAB, 1), 0.5), frequent, torch.ones(VOCAB - 4))
    return Shortlist(lexicon, VOCAB, translations=1, frequent=3, copy_source=False)


def _rows(n: int = 30, seed: int = 3) -> IdArray:
    src, lengths = random_batch(n, VOCAB, seed=seed, max_len=12)
    return IdArray.from_lists([src[i, : int(lengths[i])].tolist() for i in range(n)])


@pytest.mark.parametrize("beam", [1, 3])
@pytest.mark.parametrize("listed", [False, True])
def test_side_by_side_batches_give_the_outputs_of_one_after_another(beam, listed):
    model = tiny_model(VOCAB, seed=beam)
    cfg = Search(beam_size=beam, nbest=beam, batch_size=4, max_len_a=1.0, max_len_b=4, refill=2)
    shortlist = _shortlist() if listed else None
    one = decode_ids(model, _rows(), replace(cfg, workers=1), CPU, shortlist=shortlist)
    watched = Watched(model)
    three = decode_ids(watched, _rows(), replace(cfg, workers=3), CPU, shortlist=shortlist)
    assert [[h.tokens for h in n] for n in three] == [[h.tokens for h in n] for n in one]
    for mine, theirs in zip(three, one, strict=True):
        for a, b in zip(mine, theirs, strict=True):
            assert a.score == pytest.approx(b.score, abs=1e-5)
    assert len(watched.threads) > 1  # the batches did go to several threads
    assert watched.torch_threads == {1}  # each worker computes on one thread


def test_torch_threads_are_restored_a_workers_error_is_raised_and_one_batch_keeps_all():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        model = Watched(tiny_model(VOCAB, seed=1), fail_call=8)  # the last of 8 batches
        cfg = Search(beam_size=1, batch_size=4, max_len_a=1.0, max_len_b=4, workers=2, refill=0)
        with pytest.raises(RuntimeError, match="encoding 8"):
            decode_ids(model, _rows(), cfg, CPU)
        assert torch.get_num_threads() == 2
        decode_ids(Watched(tiny_model(VOCAB, seed=1)), _rows(), cfg, CPU)
        assert torch.get_num_threads() == 2
        one_batch = Watched(tiny_model(VOCAB, seed=1))
        decode_ids(one_batch, _rows(3), cfg, CPU)  # a shell line: every thread for it
        assert one_batch.torch_threads == {2}
    finally:
        torch.set_num_threads(before)


def test_sampling_and_gpus_decode_with_one_worker_and_0_means_one_per_thread():
    cfg = Search(workers=4)
    assert workers(cfg, CPU) == 4
    assert workers(replace(cfg, sampling=True), CPU) == 1  # a seed gives the same draws
    assert workers(cfg, torch.device("cuda")) == 1
    assert workers(replace(cfg, workers=0), CPU) == torch.get_num_threads()
    model = Watched(tiny_model(VOCAB, seed=2))
    sampling = Search(sampling=True, seed=4, batch_size=4, max_len_b=4, workers=3, refill=0)
    first = decode_ids(model, _rows(), sampling, CPU)
    assert len(model.threads) == 1
    again = decode_ids(model, _rows(), sampling, CPU)
    assert [h[0].tokens for h in first] == [h[0].tokens for h in again]


def test_after_a_workers_error_the_batches_not_begun_are_dropped():
    model = Watched(tiny_model(VOCAB, seed=1), fail_call=1, delay_s=0.2)
    cfg = Search(beam_size=1, batch_size=4, max_len_a=1.0, max_len_b=4, workers=2, refill=0)
    with pytest.raises(RuntimeError, match="encoding 1"):
        decode_ids(model, _rows(), cfg, CPU)  # 8 batches
    assert model.encoded < 8  # the failed one and those begun meanwhile, not all 8
