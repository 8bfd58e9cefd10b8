#!/usr/bin/env python3
"""Copy the part of the face-api golden fixtures that the tests need into tests/fixtures/golden/faceapi/.

    python scripts/make_faceapi_fixtures.py /path/to/golden/faceapi

Keeps the 8 PNG crops, the outputs the port must reproduce, the dequantised-weight hashes, and for
the preprocessed tensors of ``inputs.npz`` (4.5 MB) only each row's SHA-256 plus 256 sampled values.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np

DST = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "golden" / "faceapi"
MODELS = ["face_recognition_model", "age_gender_model", "face_expression_model", "face_landmark_68_model"]


def main(src: Path) -> int:
    out = json.loads((src / "outputs.json").read_text())
    inp = np.load(src / "inputs.npz")
    (DST / "crops").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    faces = []
    for f in out["faces"]:
        i = f["index"]
        shutil.copyfile(src / f["png"], DST / f["png"])
        arrays = {}
        for key in ("rgb150", "input150", "rgb112", "input112"):
            row = np.ascontiguousarray(inp[key][i], np.float32)  # NHWC row, [S,S,3]
            idx = np.sort(rng.choice(row.size, 256, replace=False))
            arrays[key] = {"sha256": hashlib.sha256(row.tobytes()).hexdigest(), "sample_index": idx.tolist(),
                           "sample_values": [float(v) for v in row.reshape(-1)[idx]]}
        faces.append({
            "index": i, "name": f["name"], "png": f["png"], "height": f["height"], "width": f["width"],
            "pixels_sha256": f["pixels_sha256"], "pad_to_square": f["pad_to_square"], "inputs": arrays,
            "descriptor": f["face_recognition"]["descriptor"],
            "age": f["age_gender"]["age"], "gender_logits": f["age_gender"]["gender_logits"],
            "gender_probabilities": f["age_gender"]["gender_probabilities"],
            "expression_logits": f["face_expression"]["logits"],
            "expression_probabilities": f["face_expression"]["probabilities"],
            "landmarks_raw_fc": f["face_landmark_68"]["raw_fc"],
            "landmarks_relative": f["face_landmark_68"]["relative"],
            "landmarks_positions": f["face_landmark_68"]["positions"]})
    fixture = {"source": "shared/golden/faceapi (outputs of @vladmandic/face-api 1.7.15, tfjs cpu backend); "
                         "see its README", "package": out["package"], "expression_labels": out["expression_labels"],
               "inputs_layout": "NHWC rows of inputs.npz, float32 little-endian",
               "weights_sha256": {m: out["weights_sha256"][m] for m in MODELS},
               "descriptor_distances": out["descriptor_distances"]["euclidean"], "faces": faces}
    (DST / "outputs.json").write_text(json.dumps(fixture, indent=1) + "\n")
    shutil.copyfile(src / "model" / "LICENSE", DST / "LICENSE")
    print(f"wrote {DST}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
