"""Server-side state of ``editkit serve``: the shared model lock and the per-browser sessions.

Nothing here imports the web framework, so it is tested on its own. A session owns a private temporary
folder (the uploaded file, files being prepared for download) and in-memory results (the decoded photo,
the detected faces, cached inversions); ending it, or its expiry, deletes both.
"""
from __future__ import annotations

import secrets
import shutil
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


class ModelLock:
    """A first-come-first-served lock around the models (one CPU-heavy job at a time, in arrival order).

    A long job (the faithful inversion) calls :meth:`pause` between its steps: requests that arrived
    meanwhile run first, so a slider in another tab stays responsive during a refinement.
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._queue: deque[int] = deque()
        self._owner: int | None = None
        self._next = 0

    def __enter__(self) -> "ModelLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        with self._cond:
            ticket = self._next
            self._next += 1
            self._queue.append(ticket)
            while self._owner is not None or self._queue[0] != ticket:
                self._cond.wait()
            self._queue.popleft()
            self._owner = ticket

    def release(self) -> None:
        with self._cond:
            if self._owner is None:
                raise RuntimeError("ModelLock released while not held")
            self._owner = None
            self._cond.notify_all()

    def pause(self) -> None:
        """Let every request waiting now run, then take the lock back (call only while holding it)."""
        with self._cond:
            if not self._queue:
                return
        self.release()
        self.acquire()

    @property
    def waiting(self) -> int:
        with self._cond:
            return len(self._queue)


class SessionGone(Exception):
    """The session does not exist (never did, ended, or expired)."""


@dataclass
class RefineJob:
    """The faithful inversion of one face, run in the background."""

    face: int
    state: str = "running"  # running | done | failed | cancelled
    step: int = 0
    total: int = 0
    message: str = ""
    cancel: threading.Event = field(default_factory=threading.Event)


@dataclass
class Session:
    id: str
    folder: Path
    created: float
    last_used: float
    photo: Any = None  # editkit.photos.Photo of the current upload
    name: str = ""  # the uploaded file's name as the user sent it (display and download names only)
    faces: list = field(default_factory=list)  # inversion.align.AlignedFace, numbered left to right
    inversions: dict = field(default_factory=dict)  # (face, method) -> editkit.editor.FaceInversion
    refine: RefineJob | None = None
    generation: int = 0  # bumped by each upload: background work for an older photo is dropped
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self, keep: Path | None = None) -> None:
        """Forget the current photo and everything computed from it (its files too, except ``keep``)."""
        if self.refine is not None:
            self.refine.cancel.set()
        self.photo, self.name, self.faces, self.inversions, self.refine = None, "", [], {}, None
        self.generation += 1
        for p in self.folder.iterdir():
            if p == keep:
                continue
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


class Sessions:
    """Every live session; each has its own folder under one private root removed on :meth:`close`.

    Sessions idle for ``ttl`` seconds are ended by :meth:`sweep`; beyond ``max_sessions`` the least
    recently used one is ended to make room.
    """

    def __init__(self, ttl: float = 1800.0, max_sessions: int = 16, clock: Callable[[], float] = time.monotonic):
        self.ttl = float(ttl)
        self.max_sessions = int(max_sessions)
        self.clock = clock
        self.root = Path(tempfile.mkdtemp(prefix="editkit-serve-"))  # mode 0700: private to this user
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self) -> Session:
        self.sweep()
        with self._lock:
            while len(self._sessions) >= self.max_sessions:
                oldest = min(self._sessions.values(), key=lambda s: s.last_used)
                self._end_locked(oldest.id)
            sid = secrets.token_urlsafe(24)
            folder = self.root / sid
            folder.mkdir(mode=0o700)
            now = self.clock()
            s = self._sessions[sid] = Session(sid, folder, now, now)
            return s

    def get(self, sid: str) -> Session:
        with self._lock:
            s = self._sessions.get(sid)
            if s is None or self.clock() - s.last_used > self.ttl:
                if s is not None:
                    self._end_locked(sid)
                raise SessionGone(sid)
            s.last_used = self.clock()
            return s

    def end(self, sid: str) -> bool:
        with self._lock:
            return self._end_locked(sid)

    def _end_locked(self, sid: str) -> bool:
        s = self._sessions.pop(sid, None)
        if s is None:
            return False
        if s.refine is not None:
            s.refine.cancel.set()
        s.photo, s.faces, s.inversions = None, [], {}
        shutil.rmtree(s.folder, ignore_errors=True)
        return True

    def sweep(self) -> int:
        """End every session idle for longer than the TTL; returns how many were ended."""
        now = self.clock()
        with self._lock:
            stale = [sid for sid, s in self._sessions.items() if now - s.last_used > self.ttl]
            for sid in stale:
                self._end_locked(sid)
        return len(stale)

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def close(self) -> None:
        """End every session and remove the root folder."""
        with self._lock:
            for sid in list(self._sessions):
                self._end_locked(sid)
        shutil.rmtree(self.root, ignore_errors=True)
