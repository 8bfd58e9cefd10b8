"""editkit.web.state: the model lock's order and the sessions' isolation, expiry and clean-up (no web framework)."""
from __future__ import annotations

import threading

import pytest

from editkit.web.state import ModelLock, SessionGone, Sessions


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _start_waiter(lock: ModelLock, order: list, name: str) -> threading.Thread:
    def run():
        with lock:
            order.append(name)

    t = threading.Thread(target=run)
    t.start()
    return t


def _wait_queued(lock: ModelLock, n: int) -> None:
    with lock._cond:
        while len(lock._queue) < n:
            lock._cond.wait(0.01)


def test_model_lock_serves_in_arrival_order():
    lock = ModelLock()
    order: list[str] = []
    lock.acquire()
    threads = []
    for i, name in enumerate("abc"):
        threads.append(_start_waiter(lock, order, name))
        _wait_queued(lock, i + 1)
    lock.release()
    for t in threads:
        t.join(5)
    assert order == ["a", "b", "c"]


def test_model_lock_pause_lets_waiting_requests_run_first():
    lock = ModelLock()
    order: list[str] = []
    lock.acquire()
    order.append("long job step 1")
    t = _start_waiter(lock, order, "slider")
    _wait_queued(lock, 1)
    lock.pause()  # the slider request runs here
    order.append("long job step 2")
    lock.pause()  # nobody waiting: returns at once
    lock.release()
    t.join(5)
    assert order == ["long job step 1", "slider", "long job step 2"]
    with pytest.raises(RuntimeError):
        lock.release()


def test_sessions_are_isolated_and_end_cleanly():
    sessions = Sessions()
    try:
        a, b = sessions.create(), sessions.create()
        assert a.id != b.id and len(a.id) >= 32
        assert a.folder != b.folder and a.folder.parent == b.folder.parent == sessions.root
        assert oct(sessions.root.stat().st_mode & 0o777) == "0o700"
        (a.folder / "upload.jpg").write_bytes(b"x")
        a.photo = "A's photo"
        assert sessions.get(b.id).photo is None
        assert sessions.end(a.id) is True
        assert not a.folder.exists() and a.photo is None
        with pytest.raises(SessionGone):
            sessions.get(a.id)
        assert sessions.end(a.id) is False
        with pytest.raises(SessionGone):
            sessions.get("../" + b.id)
    finally:
        sessions.close()
    assert not sessions.root.exists()


def test_idle_sessions_expire_and_the_oldest_makes_room():
    clock = FakeClock()
    sessions = Sessions(ttl=60, max_sessions=2, clock=clock)
    try:
        a = sessions.create()
        clock.t += 30
        b = sessions.create()
        clock.t += 40  # a idle 70 s, b 40 s
        with pytest.raises(SessionGone):
            sessions.get(a.id)
        assert not a.folder.exists()
        assert sessions.get(b.id) is b  # use refreshes it
        clock.t += 59
        assert sessions.sweep() == 0
        clock.t += 2
        assert sessions.sweep() == 1 and len(sessions) == 0 and not b.folder.exists()
        c, d = sessions.create(), sessions.create()
        clock.t += 1
        sessions.get(c.id)
        e = sessions.create()  # full: d (least recently used) is ended
        assert len(sessions) == 2 and not d.folder.exists() and c.folder.exists() and e.folder.exists()
    finally:
        sessions.close()


def test_reset_forgets_the_photo_and_its_files():
    sessions = Sessions()
    try:
        s = sessions.create()
        (s.folder / "upload.png").write_bytes(b"old")
        keep = s.folder / "incoming.png"
        keep.write_bytes(b"new")
        s.photo, s.inversions = "photo", {(0, "encoder"): "ws"}
        s.reset(keep=keep)
        assert s.photo is None and s.inversions == {} and s.generation == 1
        assert sorted(p.name for p in s.folder.iterdir()) == ["incoming.png"]
    finally:
        sessions.close()
