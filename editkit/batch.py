"""Batch editing of a folder tree: streaming, resumable, sharded, and going on past bad files.

Photos are found by walking the folder (sorted, lazily); each output mirrors the input's relative path
under the output folder. A photo whose output already exists is skipped (so an interrupted run resumes);
failures are collected and written as ``batch-report.json`` and ``batch-report.csv``.
``shard=(i, n)`` keeps the photos whose relative path hashes to i modulo n, so n processes or machines
can split one folder with no coordination.
"""
from __future__ import annotations

import csv
import io
import json
import os
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from .atomic import atomic_write_text
from .errors import EditkitError, UsageError

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
REPORT_NAME = "batch-report"


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
    done: int = 0
    skipped: int = 0
    failed: int = 0
    faces: int = 0
    seconds: float = 0.0
    failures: list[Failure] = field(default_factory=list)
    report_json: str | None = None
    report_csv: str | None = None

    @property
    def faces_per_s(self) -> float:
        return self.faces / self.seconds if self.seconds > 0 else 0.0


def output_for(photo: Path, root: Path, out_dir: Path, suffix: str | None = None) -> Path:
    rel = photo.relative_to(root)
    out = out_dir / rel
    return out.with_suffix(suffix) if suffix else out


def run_batch(editor, root: str | Path, out_dir: str | Path, attr, strength, *, faces="all", method: str | None = None,
              shard: tuple[int, int] = (0, 1), overwrite: bool = False, crop_only: bool = False,
              suffix: str | None = None, on_item: Callable[[Path, str], None] | None = None) -> BatchSummary:
    """Edit every photo under ``root`` into ``out_dir``; never stops on a bad photo.

    ``on_item(path, status)`` is called after each photo with status 'done', 'skipped' or 'failed'.
    Writes the failure report (JSON + CSV) into ``out_dir`` at the end (also after Ctrl-C).
    """
    root, out_dir = Path(root), Path(out_dir)
    if not root.is_dir():
        raise UsageError("not a folder", root)
    if out_dir.resolve() == root.resolve():
        raise UsageError("the output folder must differ from the input folder (inputs are never overwritten)", out_dir)
    editor._edits(attr, strength)  # check the directions/strengths before touching any file
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = BatchSummary()
    t0 = time.perf_counter()
    try:
        for photo in iter_photos(root, shard, exclude=out_dir):
            out = output_for(photo, root, out_dir, suffix)
            if out.exists() and not overwrite:
                summary.skipped += 1
                status = "skipped"
            else:
                try:
                    res = editor.edit(photo, attr, strength, faces=faces, method=method)
                    res.save(out, crop_only=crop_only, overwrite=True, inputs=(photo,))
                    summary.done += 1
                    summary.faces += len(res.faces)
                    status = "done"
                except EditkitError as exc:
                    summary.failed += 1
                    summary.failures.append(Failure(str(photo), type(exc).__name__, str(exc)))
                    status = "failed"
                except (RuntimeError, ValueError, OSError, MemoryError) as exc:  # one bad photo must not stop the run
                    summary.failed += 1
                    summary.failures.append(Failure(str(photo), type(exc).__name__, f"{photo}: {exc}"))
                    status = "failed"
            if on_item:
                on_item(photo, status)
    finally:
        summary.seconds = time.perf_counter() - t0
        write_report(summary, out_dir, shard)
    return summary


def write_report(summary: BatchSummary, out_dir: Path, shard: tuple[int, int] = (0, 1)) -> None:
    """``batch-report[.i-of-n].json`` (summary + failures) and ``.csv`` (one failure per row)."""
    tag = "" if shard[1] == 1 else f".{shard[0]}-of-{shard[1]}"
    jpath = out_dir / f"{REPORT_NAME}{tag}.json"
    cpath = out_dir / f"{REPORT_NAME}{tag}.csv"
    data = {k: v for k, v in asdict(summary).items() if k not in ("report_json", "report_csv")}
    data["faces_per_s"] = summary.faces_per_s
    data["shard"] = f"{shard[0]}/{shard[1]}"
    atomic_write_text(jpath, json.dumps(data, indent=2) + "\n")
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["path", "error", "message"])
    for f in summary.failures:
        w.writerow([f.path, f.error, f.message])
    atomic_write_text(cpath, buf.getvalue())
    summary.report_json, summary.report_csv = str(jpath), str(cpath)
