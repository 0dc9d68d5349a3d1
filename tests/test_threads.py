"""The thread governor: one thread fewer while our threads wait to run, the full count
tried again later (less often while the machine stays busy), and kept once it is quiet."""

from __future__ import annotations

from pathlib import Path

from seq2seq.threads import ThreadGovernor, read_schedstat


class FakeMachine:
    """A clock and schedstat counters that advance by the wait share each test sets."""

    def __init__(self) -> None:
        self.now = 0.0
        self.running = 1
        self.waiting = 0
        self.share = 0.0
        self.threads: list[int] = []

    def advance(self, seconds: float) -> None:
        self.now += seconds
        ns = int(seconds * 1e9)
        self.waiting += int(ns * self.share)
        self.running += ns - int(ns * self.share)

    def governor(self, threads: int = 2) -> ThreadGovernor:
        return ThreadGovernor(
            threads,
            reader=lambda: (self.running, self.waiting),
            clock=lambda: self.now,
            set_threads=self.threads.append,
        )


def run(machine: FakeMachine, governor: ThreadGovernor, seconds: float) -> None:
    for _ in range(int(seconds / 0.5)):  # a tick every half second, like training steps
        machine.advance(0.5)
        governor.tick()


def test_quiet_machine_keeps_every_thread():
    machine = FakeMachine()
    governor = machine.governor()
    machine.share = 0.02
    run(machine, governor, 60)
    assert governor.current == 2 and machine.threads == []


def test_busy_machine_drops_a_thread_then_probes_less_and_less_often():
    machine = FakeMachine()
    governor = machine.governor()
    machine.share = 0.35  # three runnable threads on two cores
    run(machine, governor, 3)
    assert machine.threads == [1]
    run(machine, governor, 300)
    # each probe back to 2 meets the busy machine and drops again, at growing gaps
    assert set(machine.threads) == {1, 2} and governor.current in (1, 2)
    probes = machine.threads.count(2)
    assert 3 <= probes <= 6  # 10, 20, 40, 80, 160 s gaps: not one every interval
    assert governor.probe_s == governor.last_probe_s


def test_the_full_count_comes_back_when_the_competitor_leaves():
    machine = FakeMachine()
    governor = machine.governor()
    machine.share = 0.35
    run(machine, governor, 30)
    machine.share = 0.01
    run(machine, governor, 200)
    assert governor.current == 2
    assert governor.probe_s == governor.first_probe_s  # quick to react next time


def test_never_below_one_thread_and_off_for_one_thread_or_no_schedstat():
    machine = FakeMachine()
    single = machine.governor(threads=1)
    machine.share = 0.9
    run(machine, single, 30)
    assert not single.enabled and machine.threads == []
    blind = ThreadGovernor(2, reader=lambda: None, set_threads=machine.threads.append)
    blind.tick()
    assert not blind.enabled and machine.threads == []


def test_schedstat_of_this_process_counts_its_running_time(tmp_path: Path):
    stat = read_schedstat()
    if stat is not None:  # Linux with schedstats: this thread has run
        assert stat[0] > 0 and stat[1] >= 0
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "schedstat").write_text("300 100 5\n")
    (tmp_path / "2").mkdir()
    (tmp_path / "2" / "schedstat").write_text("700 50 2\n")
    assert read_schedstat(tmp_path) == (1000, 150)
    (tmp_path / "2" / "schedstat").write_text("garbage\n")
    assert read_schedstat(tmp_path) is None
