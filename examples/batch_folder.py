"""Edit a whole folder from Python: streaming, resumable, with a failure report (like `editkit batch`).

    .venv/bin/python examples/batch_folder.py FOLDER OUTDIR [--model BUNDLE] [--attr 0] [--strength 2]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import editkit
from editkit.batch import run_batch


def main(argv: list[str] | None = None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, help="folder of photos (recursive)")
    ap.add_argument("outdir", type=Path, help="output folder (mirrors the input tree)")
    ap.add_argument("--model", default=None, help="bundle folder or registered name (default: the bundled model)")
    ap.add_argument("--attr", default="0", help="direction index or label")
    ap.add_argument("--strength", type=float, default=2.0, help="edit strength")
    args = ap.parse_args(argv)

    editor = editkit.Editor(args.model, method="encoder")
    summary = run_batch(editor, args.folder, args.outdir, args.attr, args.strength,
                        on_item=lambda path, status: print(f"{status:8s} {path}"))
    print(f"done {summary.done}, skipped {summary.skipped}, failed {summary.failed}; "
          f"{summary.faces_per_s:.2f} faces/s; report {summary.report_json}")
    return summary


if __name__ == "__main__":
    main()
