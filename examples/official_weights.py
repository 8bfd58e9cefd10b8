"""Edit with official weights you downloaded yourself: a generator (+ optional e4e encoder) and a navigator.

    .venv/bin/python examples/official_weights.py PHOTO --generator ffhq-res512-mirror-stylegan2-noaug.pkl \
        --navigator my-ffhq-navigator.safetensors [--encoder e4e_ffhq_encode.pt] [--register NAME]

Without an encoder the code is found by optimisation (slower). ``--register NAME`` also records the three
files as a bundle in the registry (``$EDITKIT_HOME``), so later runs can say ``--model NAME``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import editkit
from editkit import registry


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photo", type=Path, help="photo with a face")
    ap.add_argument("--generator", required=True, help="NVIDIA .pkl, rosinality/e4e .pt or editkit .safetensors")
    ap.add_argument("--navigator", required=True, help="navigator .safetensors (from `editkit train navigator`)")
    ap.add_argument("--encoder", default=None, help="e4e_ffhq_encode.pt or an editkit encoder (optional)")
    ap.add_argument("--alignment", default="ffhq", help="alignment template of the generator's training data")
    ap.add_argument("--steps", type=int, default=None, help="optimisation steps (hybrid/optimize)")
    ap.add_argument("--register", default=None, help="also register the files as a bundle under this name")
    ap.add_argument("-o", "--output", type=Path, default=None, help="output file")
    args = ap.parse_args(argv)

    opts = {"steps": args.steps} if args.steps else {}
    editor = editkit.Editor(generator=args.generator, encoder=args.encoder, navigator=args.navigator,
                            alignment=args.alignment, invert_options=opts)
    result = editor.edit(args.photo, attr=0, strength=2.0)
    out = args.output or args.photo.with_name(f"{args.photo.stem}.official.png")
    result.save(out)
    print(f"wrote {out}")
    if args.register:
        b = registry.compose_bundle(args.register, args.generator, args.encoder, {"default": args.navigator},
                                    alignment=args.alignment)
        print(f"registered bundle '{b.name}': use --model {b.name}")
    return out


if __name__ == "__main__":
    import sys

    from editkit.errors import EditkitError

    try:
        main()
    except EditkitError as exc:  # a missing or bad file: one line, no traceback
        print(f"official_weights.py: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
