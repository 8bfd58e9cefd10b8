#!/usr/bin/env python3
"""Convert the face-api tfjs weights (``@vladmandic/face-api`` 1.7.15, MIT) to the safetensors files
shipped in ``editkit/facenets/weights/``. Run once; the output is committed.

    python scripts/convert_faceapi.py /path/to/golden/faceapi/model [--out editkit/facenets/weights]

Each ``<model>-weights_manifest.json`` lists the tensors concatenated in its ``.bin``; uint8-quantised
ones are dequantised as tfjs does (``float32(q * scale + min)``, computed in double). Tensors are
stored float32 in PyTorch layout, with their tfjs name/layout and the source files' SHA-256 in the
metadata. The package's LICENSE is copied beside them and PROVENANCE.md written.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from editkit.facenets.weights import NETWORKS, WEIGHTS_DIR, tfjs_to_torch, validate_state  # noqa: E402

PACKAGE = "@vladmandic/face-api"
VERSION = "1.7.15"
TARBALL_SHA256 = "0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_tfjs(model_dir: Path, stem: str) -> dict[str, np.ndarray]:
    """Dequantised float32 arrays by manifest name, in tfjs layout."""
    manifest = json.loads((model_dir / f"{stem}-weights_manifest.json").read_text())
    out: dict[str, np.ndarray] = {}
    for group in manifest:
        buf = b"".join((model_dir / p).read_bytes() for p in group["paths"])
        off = 0
        for entry in group["weights"]:
            shape = entry["shape"]
            n = int(np.prod(shape)) if shape else 1
            q = entry.get("quantization")
            if q is None:
                if entry["dtype"] != "float32":
                    raise SystemExit(f"{stem}: {entry['name']} has dtype {entry['dtype']}, expected float32")
                values = np.frombuffer(buf, "<f4", n, off).astype(np.float32)
                off += 4 * n
            elif q["dtype"] == "uint8":
                codes = np.frombuffer(buf, np.uint8, n, off)
                values = (codes.astype(np.float64) * q["scale"] + q["min"]).astype(np.float32)
                off += n
            else:
                raise SystemExit(f"{stem}: {entry['name']} uses unsupported quantisation {q['dtype']}")
            out[entry["name"]] = values.reshape(shape)
        if off != len(buf):
            raise SystemExit(f"{stem}: manifest covers {off} bytes of {len(buf)}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dir", type=Path, help="folder with the tfjs *-weights_manifest.json, *.bin and LICENSE")
    ap.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    a = ap.parse_args()
    from safetensors.torch import save_file

    a.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, (build, stem) in NETWORKS.items():
        tensors = {k: torch.from_numpy(v.copy()) for k, v in read_tfjs(a.model_dir, stem).items()}
        state, origin = tfjs_to_torch(tensors)
        dst = a.out / f"{name}.safetensors"
        validate_state(state, build(), dst)
        bin_path, man_path = a.model_dir / f"{stem}.bin", a.model_dir / f"{stem}-weights_manifest.json"
        meta = {"source_package": f"{PACKAGE}@{VERSION}", "source_tarball_sha256": TARBALL_SHA256,
                "source_license": "MIT (Copyright (c) Vladimir Mandic), see LICENSE beside this file",
                "source_bin": bin_path.name, "source_bin_sha256": sha256(bin_path),
                "source_manifest": man_path.name, "source_manifest_sha256": sha256(man_path),
                "tfjs_names": json.dumps(origin, sort_keys=True)}
        tmp = dst.with_suffix(".tmp")
        save_file(state, str(tmp), metadata=meta)
        tmp.chmod(0o644)
        tmp.replace(dst)
        n = sum(t.numel() for t in state.values())
        rows.append((name, dst.name, stem, n, meta["source_bin_sha256"], sha256(dst)))
        print(f"{name:12s} {len(state):4d} tensors {n:9,d} weights -> {dst}")
    shutil.copyfile(a.model_dir / "LICENSE", a.out / "LICENSE")
    lines = ["# Provenance of the face-network weights", "",
             f"Converted by `scripts/convert_faceapi.py` from the tfjs weight files of the npm package "
             f"**`{PACKAGE}` {VERSION}** (tarball SHA-256 `{TARBALL_SHA256}`), MIT licence, "
             "Copyright (c) Vladimir Mandic: see `LICENSE` in this folder, which must travel with these files. "
             "The package's TUTORIAL says the recognition weights were trained by Davis King (dlib's "
             "face recognition network).", "",
             "uint8-quantised tensors were dequantised as the manifests say (`float32(q * scale + min)` in "
             "double precision); every tensor is float32 in PyTorch layout. Each file's metadata maps every "
             "tensor to its tfjs name and layout. The port reproduces the package's own JavaScript outputs "
             "(tests/test_facenets_golden.py).", "",
             "| network | file | tfjs model | weights | source .bin SHA-256 | safetensors SHA-256 |",
             "|---|---|---|---:|---|---|"]
    lines += [f"| {r[0]} | `{r[1]}` | `{r[2]}` | {r[3]:,} | `{r[4]}` | `{r[5]}` |" for r in rows]
    (a.out / "PROVENANCE.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
