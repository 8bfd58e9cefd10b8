"""Batch editing of a folder tree: streaming, resumable, sharded, shareable, and going on past bad files.

Photos are found by walking the folder (sorted); each output mirrors the input's relative path under the
output folder (crops are PNG; when two inputs would map to one output, e.g. ``same.jpg`` and ``same.png``
with ``--crop-only``, the one whose suffix changes keeps it: ``same.jpg.png``). The output folder holds
``batch-manifest.json``: the settings that produced its outputs (model file hashes, directions, strengths,
method, steps and every other edit option) and the state of each photo. A photo is skipped only when its
output exists and was made with the same settings; a folder made with other settings is refused (use
``overwrite`` to redo it). Several processes may share one output folder: each photo is claimed in the
manifest (under a lock on the folder) before work starts, so no photo is done twice; ``shard=(i, n)``
splits a folder with no coordination at all. ``batch-report[.i-of-n].json`` / ``.csv`` describe the photos
of the run's shard as the folder holds them (whoever did them) plus this run's own counts.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import socket
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from . import testhooks
from .atomic import atomic_write_text, check_folder_writable
from .errors import EditkitError, OutputError, UsageError

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
REPORT_NAME = "batch-report"
MANIFEST_NAME = "batch-manifest.json"
MANIFEST_FORMAT = "editkit-batch-manifest"


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n; None -> (0, 1)."""
    if text is None or text == "":
        return 0, 1
    try:
        i, n = (int(v) for v in str(text).split("/"))
    except ValueError:
        raise UsageError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise UsageError(f"--shard i/n needs 0 <= i < n, got {text!r}")
    return i, n


def in_shard(rel: str, shard: tuple[int, int]) -> bool:
    i, n = shard
    return n == 1 or zlib.crc32(rel.replace(os.sep, "/").encode("utf-8")) % n == i


def iter_photos(root: str | Path, shard: tuple[int, int] = (0, 1), exclude: Path | None = None) -> Iterator[Path]:
    """Photo files under ``root`` (recursive, sorted, streamed), skipping hidden files and ``exclude``."""
    root = Path(root)
    excl = exclude.resolve() if exclude is not None else None
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        dirnames[:] = sorted(n for n in dirnames if not n.startswith(".")
                             and (excl is None or (d / n).resolve() != excl))
        for name in sorted(filenames):
            if name.startswith(".") or Path(name).suffix.lower() not in PHOTO_SUFFIXES:
                continue
            p = d / name
            if in_shard(str(p.relative_to(root)), shard):
                yield p


@dataclass
class Failure:
    path: str
    error: str
    message: str


@dataclass
class BatchSummary:
    """This run's counts (``done``/``skipped``/``failed``; ``claimed``: photos another live worker had)."""

    done: int = 0
    skipped: int = 0
    failed: int = 0
    claimed: int = 0
    faces: int = 0
    seconds: float = 0.0
    failures: list[Failure] = field(default_factory=list)
    report_json: str | None = None
    report_csv: str | None = None
    report_error: str | None = None  # why the report could not be written (e.g. disk full)
    report: dict = field(default_factory=dict)  # the report as written
    renamed: dict[str, str] = field(default_factory=dict)  # input -> output for de-collided names

    @property
    def faces_per_s(self) -> float:
        return self.faces / self.seconds if self.seconds > 0 else 0.0


def output_for(photo: Path, root: Path, out_dir: Path, suffix: str | None = None) -> Path:
    rel = photo.relative_to(root)
    out = out_dir / rel
    return out.with_suffix(suffix) if suffix else out


def plan_outputs(root: Path, out_dir: Path, suffix: str | None = None) -> dict[Path, Path]:
    """Every photo under ``root`` (all shards) -> its output, unique per input; collisions are resolved by
    keeping the original suffix in the name of the input whose suffix changes, else refused (before work)."""
    photos = list(iter_photos(root, exclude=out_dir))
    plan = {p: output_for(p, root, out_dir, suffix) for p in photos}
    groups: dict[str, list[Path]] = {}
    for p, o in plan.items():
        groups.setdefault(str(o), []).append(p)
    for key, members in groups.items():
        if len(members) < 2:
            continue
        for p in members:
            if suffix and p.suffix.lower() != suffix.lower():
                plan[p] = out_dir / p.relative_to(root).with_name(p.name + suffix)
    seen: dict[str, Path] = {}
    for p, o in plan.items():
        other = seen.get(str(o))
        if other is not None:
            raise UsageError(f"output name collision: {other} and {p} would both write {o}; rename one of them")
        seen[str(o)] = p
    return plan


# ---------------------------------------------------------------------------------------------- settings
_HASHES: dict[tuple, str] = {}


def _file_hash(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def batch_settings(editor, edits: list[tuple[int, float]], faces, method: str | None, crop_only: bool,
                   suffix: str | None, extra: dict | None = None) -> dict:
    """Everything that decides what an output looks like: model files (SHA-256), resolved edits, method,
    inversion/alignment options, output kind, plus ``extra`` (the command's own options, generically)."""
    weights = {}
    for kind, p in (getattr(editor, "paths", None) or {}).items():
        if p is not None:
            p = Path(p)
            files = sorted(x for x in p.rglob("*") if x.is_file()) if p.is_dir() else [p]
            weights[kind] = {"file": p.name, "sha256": hashlib.sha256(
                "".join(_file_hash(x) for x in files).encode()).hexdigest() if len(files) != 1 else _file_hash(files[0])}
    labels = getattr(getattr(editor, "navigator", None), "labels", None) or []
    settings = {
        "weights": weights,
        "edits": [{"direction": k, "label": labels[k] if k < len(labels) else None, "strength": s} for k, s in edits],
        "faces": faces if isinstance(faces, (str, int)) else list(faces),
        "method": method or getattr(editor, "method", None),
        "invert_options": getattr(editor, "invert_options", {}),
        "align_options": getattr(editor, "align_options", {}),
        "crop_only": bool(crop_only),
        "suffix": suffix,
    }
    for k, v in (extra or {}).items():
        settings.setdefault(k, v)
    return _jsonable(settings)


def settings_id(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def _differences(old: dict, new: dict) -> str:
    keys = sorted(set(old) | set(new))
    diff = [k for k in keys if old.get(k) != new.get(k)]
    parts = []
    for k in diff[:3]:
        a, b = json.dumps(old.get(k)), json.dumps(new.get(k))
        parts.append(f"{k} {a[:60]} -> {b[:60]}")
    return "; ".join(parts) + (f" (+{len(diff) - 3} more)" if len(diff) > 3 else "")


# ---------------------------------------------------------------------------------------------- manifest
class Manifest:
    """``batch-manifest.json`` in the output folder, read and written only under an exclusive lock on the
    folder itself (``flock``; shared by processes on one machine: use --shard across machines)."""

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self.path = out_dir / MANIFEST_NAME
        self.data: dict = {}

    @contextlib.contextmanager
    def locked(self) -> Iterator[dict]:
        """Lock, read, yield the data for changes, write it back (atomically), unlock."""
        fd = None
        try:
            import fcntl

            fd = os.open(self.out_dir, os.O_RDONLY)
            fcntl.flock(fd, fcntl.LOCK_EX)
        except (ImportError, OSError):  # no flock here (e.g. Windows): single-process use stays safe
            if fd is not None:
                os.close(fd)
            fd = None
        try:
            self.data = self._read()
            before = json.dumps(self.data, sort_keys=True)
            yield self.data
            if json.dumps(self.data, sort_keys=True) != before:
                atomic_write_text(self.path, json.dumps(self.data, indent=1, sort_keys=True) + "\n")
        finally:
            if fd is not None:
                os.close(fd)  # releases the lock

    def _read(self) -> dict:
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UsageError(f"unreadable batch manifest ({exc}); delete it or use another output folder",
                             self.path) from None
        if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
            raise UsageError("not an editkit batch manifest; use another output folder", self.path)
        return data


def _alive(entry: dict) -> bool:
    """Whether the worker that claimed a photo still runs (same machine only; other machines: assumed so)."""
    if entry.get("host") != socket.gethostname():
        return True
    pid = int(entry.get("pid", 0))
    if pid <= 0:
        return False
    if pid == os.getpid():
        return False  # our own stale claim from an earlier call
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---------------------------------------------------------------------------------------------- run
def run_batch(editor, root: str | Path, out_dir: str | Path, attr, strength, *, faces="all", method: str | None = None,
              shard: tuple[int, int] = (0, 1), overwrite: bool = False, crop_only: bool = False,
              suffix: str | None = None, on_item: Callable[[Path, str], None] | None = None,
              settings: dict | None = None, force: bool = False, on_start: Callable[[int], None] | None = None
              ) -> BatchSummary:
    """Edit every photo under ``root`` into ``out_dir``; never stops on a bad photo.

    ``on_item(path, status)`` is called after each photo with status 'done', 'skipped', 'claimed' (another
    worker has it) or 'failed'; ``on_start(total)`` once the photos are counted. ``settings``: extra
    options recorded in the manifest (the CLI passes all of its edit options). Writes the report (JSON +
    CSV) at the end, also after Ctrl-C/SIGTERM or a write error (an :class:`OutputError` such as a full
    disk stops the run: it would fail every photo). An exception leaving (that one, Ctrl-C, SIGTERM) carries
    the run's summary as ``.summary``.
    """
    root, out_dir = Path(root), Path(out_dir)
    if not root.is_dir():
        raise UsageError("not a folder", root)
    if out_dir.resolve() == root.resolve():
        raise UsageError("the output folder must differ from the input folder (inputs are never overwritten)", out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError("output exists and is not a folder", out_dir)
    edits = editor._edits(attr, strength, force)  # check the directions/strengths before touching any file
    check_folder_writable(out_dir)
    plan = plan_outputs(root, out_dir, suffix)
    mine = [(p, o) for p, o in plan.items() if in_shard(str(p.relative_to(root)), shard)]
    full = batch_settings(editor, edits, faces, method, crop_only, suffix, settings)
    sid = settings_id(full)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(out_dir)
    t_start = time.time()
    summary = BatchSummary(renamed={str(p): str(o) for p, o in mine if o != output_for(p, root, out_dir, suffix)})
    with manifest.locked() as data:
        _start(data, full, sid, mine, root, out_dir, overwrite)
    if on_start:
        on_start(len(mine))
    host, pid = socket.gethostname(), os.getpid()
    t0 = time.perf_counter()
    claimed_rel: str | None = None
    fatal: BaseException | None = None
    try:
        for photo, out in mine:
            rel = str(photo.relative_to(root))
            with manifest.locked() as data:
                e = data["items"].get(rel)
                status = None
                if (e and e.get("status") == "done" and e.get("settings_id") == sid and out.exists()
                        and (not overwrite or e.get("time", 0) >= t_start)):
                    status = "skipped"
                elif e and e.get("status") == "working" and _alive(e):
                    status = "claimed"
                elif (e and e.get("status") == "failed" and e.get("settings_id") == sid and e.get("pid") != pid
                      and e.get("time", 0) >= t_start):
                    status = "claimed"  # a concurrent worker just tried it (a later run retries failures)
                else:
                    data["items"][rel] = {"status": "working", "output": str(out.relative_to(out_dir)),
                                          "pid": pid, "host": host, "time": time.time(), "settings_id": sid}
                    claimed_rel = rel
            if status is None:
                entry = _edit_one(editor, photo, out, attr, strength, faces, method, crop_only, force, summary)
                entry.update(output=str(out.relative_to(out_dir)), pid=pid, host=host, time=time.time(),
                             settings_id=sid)
                with manifest.locked() as data:
                    data["items"][rel] = entry
                claimed_rel = None
                status = entry["status"]
            elif status == "skipped":
                summary.skipped += 1
            else:
                summary.claimed += 1
            if on_item:
                on_item(photo, status)
            if status in ("done", "failed"):
                testhooks.pause("batch-item")
    except BaseException as exc:  # a full disk, Ctrl-C or SIGTERM: the report below is still written
        fatal = exc
        raise
    finally:
        summary.seconds = time.perf_counter() - t0
        try:
            with manifest.locked() as data:
                if claimed_rel is not None and data["items"].get(claimed_rel, {}).get("pid") == pid:
                    del data["items"][claimed_rel]  # interrupted mid-photo: release the claim
                report = _report(data, mine, root, out_dir, shard, summary)
            write_report(summary, out_dir, shard, report)
        except (OutputError, OSError) as exc:
            summary.report_error = f"could not write the batch report in {out_dir} ({exc})"
        if fatal is not None:
            fatal.summary = summary  # type: ignore[attr-defined]
    return summary


def _start(data: dict, full: dict, sid: str, mine, root: Path, out_dir: Path, overwrite: bool) -> None:
    """Check the folder's settings against ours (refuse a different edit unless ``overwrite``)."""
    if not data:
        data.update(format=MANIFEST_FORMAT, version=1, settings=full, settings_id=sid, items={})
    if data.get("settings_id") != sid:
        if not overwrite:
            raise UsageError(f"holds outputs of a different edit ({_differences(data.get('settings', {}), full)}); "
                             "use --overwrite to redo them with these settings, or another output folder", out_dir)
        data.update(settings=full, settings_id=sid)
    items = data.setdefault("items", {})
    if not overwrite:
        unknown = [o for p, o in mine if o.exists()
                   and (items.get(str(p.relative_to(root))) or {}).get("settings_id") != sid
                   and (items.get(str(p.relative_to(root))) or {}).get("status") != "working"]
        if unknown:
            raise UsageError(f"{len(unknown)} existing output(s) were not made by this batch with these settings "
                             f"(e.g. {unknown[0]}); use --overwrite to redo them, or another output folder", out_dir)


def _edit_one(editor, photo: Path, out: Path, attr, strength, faces, method, crop_only, force,
              summary: BatchSummary) -> dict:
    try:
        res = editor.edit(photo, attr, strength, faces=faces, method=method, force=force)
        res.save(out, crop_only=crop_only, overwrite=True, inputs=(photo,))
    except OutputError:
        raise  # the output folder itself is unusable (disk full, read-only): every photo would fail
    except EditkitError as exc:
        return _failed(summary, photo, type(exc).__name__, str(exc))
    except (RuntimeError, ValueError, OSError, MemoryError) as exc:  # one bad photo must not stop the run
        return _failed(summary, photo, type(exc).__name__, f"{photo}: {exc}")
    summary.done += 1
    summary.faces += len(res.faces)
    return {"status": "done", "faces": len(res.faces)}


def _failed(summary: BatchSummary, photo: Path, error: str, message: str) -> dict:
    summary.failed += 1
    summary.failures.append(Failure(str(photo), error, message))
    return {"status": "failed", "error": error, "message": message}


def _report(data: dict, mine, root: Path, out_dir: Path, shard, summary: BatchSummary) -> dict:
    items = data.get("items", {})
    sid = data.get("settings_id")
    done = failed = working = faces = 0
    failures = []
    for photo, _ in mine:
        e = items.get(str(photo.relative_to(root)))
        if not e or e.get("settings_id") != sid:
            continue
        if e["status"] == "done":
            done += 1
            faces += int(e.get("faces", 0))
        elif e["status"] == "failed":
            failed += 1
            failures.append({"path": str(photo), "error": e.get("error", ""), "message": e.get("message", "")})
        elif e["status"] == "working":
            working += 1
    return {
        "photos": len(mine), "done": done, "failed": failed, "in_progress": working,
        "pending": len(mine) - done - failed - working, "faces": faces, "failures": failures,
        "shard": f"{shard[0]}/{shard[1]}", "manifest": str(out_dir / MANIFEST_NAME), "settings_id": sid,
        "settings": data.get("settings"), "renamed": summary.renamed,
        "run": {"pid": os.getpid(), "done": summary.done, "skipped": summary.skipped, "claimed": summary.claimed,
                "failed": summary.failed, "faces": summary.faces, "seconds": round(summary.seconds, 3),
                "faces_per_s": round(summary.faces_per_s, 4)},
    }


def write_report(summary: BatchSummary, out_dir: Path, shard: tuple[int, int] = (0, 1),
                 report: dict | None = None) -> None:
    """``batch-report[.i-of-n].json`` (the shard's photos + this run) and ``.csv`` (one failure per row)."""
    tag = "" if shard[1] == 1 else f".{shard[0]}-of-{shard[1]}"
    jpath = out_dir / f"{REPORT_NAME}{tag}.json"
    cpath = out_dir / f"{REPORT_NAME}{tag}.csv"
    if report is None:
        report = {"done": summary.done, "failed": summary.failed, "faces": summary.faces,
                  "failures": [f.__dict__ for f in summary.failures], "shard": f"{shard[0]}/{shard[1]}"}
    summary.report = report
    atomic_write_text(jpath, json.dumps(report, indent=2) + "\n")
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["path", "error", "message"])
    for f in report["failures"]:
        w.writerow([f["path"], f["error"], f["message"]])
    atomic_write_text(cpath, buf.getvalue())
    summary.report_json, summary.report_csv = str(jpath), str(cpath)
