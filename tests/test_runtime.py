"""The heap trimmer trims only when resident memory outgrows the working set by a margin."""

import pytest

from seq2seq import runtime
from seq2seq.runtime import HeapTrimmer, resident_bytes


def test_resident_bytes_is_this_process():
    assert resident_bytes() > 10 * 2**20  # python + torch are loaded


def test_trims_only_past_the_working_set(monkeypatch: pytest.MonkeyPatch):
    rss = {"now": 1000}
    trims: list[int] = []

    def release() -> None:
        trims.append(rss["now"])
        rss["now"] = rss.pop("after")

    monkeypatch.setattr(runtime, "_libc", object())  # as if the allocator were tuned
    monkeypatch.setattr(runtime, "resident_bytes", lambda: rss["now"])
    monkeypatch.setattr(runtime, "release_memory", release)
    trimmer = HeapTrimmer(every=10, growth=0.5)
    assert not trimmer.step(5)  # not a checking step
    assert not trimmer.step(10)  # the first check notes the working set: 1000 bytes
    rss["now"] = 1400
    assert not trimmer.step(20)  # +40%: kept
    rss.update(now=1600, after=1100)
    assert trimmer.step(30)  # +60%: trimmed, back to 1100
    rss.update(now=1600, after=1300)
    assert not trimmer.step(40)  # 1600 is within 1.5 x 1100
    rss.update(now=1700, after=1300)
    assert trimmer.step(50) and trimmer.working_set == 1300  # the live data grew
    assert trims == [1600, 1700] and trimmer.trims == 2
    assert not HeapTrimmer(every=0).step(10)  # 0 = never


def test_never_trims_an_untuned_allocator(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(runtime, "_libc", None)
    assert not HeapTrimmer(every=1).step(1)
