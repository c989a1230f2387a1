"""The order-writer lease: compare-and-set acquire, atomic transfer, epochs that only go up."""

import multiprocessing
import sqlite3

import pytest

from commander.lease import Lease, LeaseConflict, LeaseError, LeaseState
from sorte.errors import SorteError

ROUNDS = 40


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        self.now += 1
        return self.now


@pytest.fixture
def lease(tmp_path):
    with Lease(tmp_path / "data", clock=Clock()) as store:
        yield store


def test_a_fresh_lease_is_free_at_epoch_zero(lease):
    assert lease.current() == LeaseState(holder=None, epoch=0)
    assert not lease.is_current(0)


def test_acquire_bumps_the_epoch_and_records_the_holder(lease):
    state = lease.acquire("blue", expect_epoch=None)
    assert state.holder == "blue" and state.epoch == 1
    assert state.acquired_at == state.heartbeat_at is not None
    assert lease.current() == state
    assert lease.is_current(1) and not lease.is_current(0)


def test_acquire_is_compare_and_set(lease):
    lease.acquire("blue", expect_epoch=None)
    with pytest.raises(LeaseConflict, match="blue holds the lease at epoch 1") as err:
        lease.acquire("green", expect_epoch=None)
    assert isinstance(err.value, SorteError)
    with pytest.raises(LeaseConflict, match="expected epoch 0"):
        lease.acquire("green", expect_epoch=0)
    state = lease.acquire("green", expect_epoch=1)  # a takeover at the observed epoch
    assert (state.holder, state.epoch) == ("green", 2)
    with pytest.raises(LeaseConflict):
        lease.acquire("blue", expect_epoch=1)  # the same stale observation cannot win twice


def test_release_only_by_the_holder_at_its_epoch_and_idempotent(lease):
    lease.acquire("blue", expect_epoch=None)
    with pytest.raises(LeaseConflict, match="green at epoch 1 cannot release"):
        lease.release("green", 1)
    with pytest.raises(LeaseConflict):
        lease.release("blue", 0)
    released = lease.release("blue", 1)
    assert released == LeaseState(holder=None, epoch=1)
    assert lease.release("blue", 1) == released
    assert not lease.is_current(1)
    assert lease.acquire("green", expect_epoch=None).epoch == 2  # the epoch never reuses a value


def test_heartbeat_moves_only_the_heartbeat(lease):
    first = lease.acquire("blue", expect_epoch=None)
    beat = lease.heartbeat("blue", 1)
    assert beat.epoch == 1 and beat.acquired_at == first.acquired_at
    assert beat.heartbeat_at > first.heartbeat_at
    with pytest.raises(LeaseConflict):
        lease.heartbeat("green", 1)


def test_transfer_is_atomic_and_fences_the_old_holder(lease):
    lease.acquire("blue", expect_epoch=None)
    state = lease.transfer("blue", "green", 1)
    assert (state.holder, state.epoch) == ("green", 2)
    assert not lease.is_current(1) and lease.is_current(2)
    for stale in (lambda: lease.heartbeat("blue", 1), lambda: lease.release("blue", 1)):
        with pytest.raises(LeaseConflict, match="green holds the lease at epoch 2"):
            stale()
    with pytest.raises(LeaseConflict):
        lease.transfer("blue", "green", 2)  # blue no longer holds it
    assert lease.transfer("blue", "green", 1) == state  # a retried hand-over changes nothing
    assert lease.current() == state
    assert lease.transfer("green", "blue", 2).epoch == 3


def test_unknown_slot_and_self_transfer_are_refused(lease):
    with pytest.raises(LeaseError, match="unknown slot 'red'"):
        lease.acquire("red", expect_epoch=None)
    lease.acquire("blue", expect_epoch=None)
    with pytest.raises(LeaseError, match="to itself"):
        lease.transfer("blue", "blue", 1)


def test_epoch_survives_reopening_and_never_goes_down(tmp_path):
    data = tmp_path / "data"
    with Lease(data) as lease:
        lease.acquire("blue", expect_epoch=None)
        lease.transfer("blue", "green", 1)
    with Lease(data) as lease:
        assert (lease.current().holder, lease.current().epoch) == ("green", 2)
        assert lease.acquire("blue", expect_epoch=2).epoch == 3
        lease.release("blue", 3)
    with Lease(data) as lease:
        assert lease.current() == LeaseState(holder=None, epoch=3)
        with pytest.raises(sqlite3.IntegrityError, match="may not go down"):
            lease.db.execute("UPDATE lease SET epoch = 1")
        assert lease.current().epoch == 3


def _race(data_dir, slot, barrier, results):
    with Lease(data_dir) as lease:
        for rnd in range(ROUNDS):
            barrier.wait()
            try:
                state = lease.acquire(slot, expect_epoch=rnd + 1)
                results.put((rnd, slot, state.epoch))
            except LeaseConflict:
                results.put((rnd, slot, None))


def test_two_processes_racing_the_same_epoch_exactly_one_wins(tmp_path):
    data = tmp_path / "data"
    with Lease(data) as lease:
        assert lease.acquire("blue", expect_epoch=None).epoch == 1
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(str(data), slot, barrier, results)) for slot in ("blue", "green")]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=120) for _ in range(2 * ROUNDS)]
    for proc in procs:
        proc.join(timeout=120)
        assert proc.exitcode == 0
    epochs = []
    for rnd in range(ROUNDS):
        won = [(slot, epoch) for r, slot, epoch in outcomes if r == rnd and epoch is not None]
        assert len(won) == 1, f"round {rnd}: {won}"
        assert won[0][1] == rnd + 2
        epochs.append(won[0][1])
    assert epochs == sorted(set(epochs))
    with Lease(data) as lease:
        assert lease.current().epoch == ROUNDS + 1
