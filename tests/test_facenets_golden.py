"""The PyTorch port of face-api's face networks reproduces the package's own JavaScript outputs
(tests/fixtures/golden/faceapi, made from shared/golden/faceapi by scripts/make_faceapi_fixtures.py)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from editkit import facenets
from editkit.facenets.weights import read_state, to_tfjs_layout

GOLDEN = Path(__file__).parent / "fixtures" / "golden" / "faceapi"
TFJS_MODEL = {"recognition": "face_recognition_model", "age_gender": "age_gender_model",
              "expression": "face_expression_model", "landmarks68": "face_landmark_68_model"}


@pytest.fixture(scope="module")
def golden():
    ref = json.loads((GOLDEN / "outputs.json").read_text())
    images = []
    for f in ref["faces"]:
        img = np.asarray(Image.open(GOLDEN / f["png"]).convert("RGB"))
        assert hashlib.sha256(img.tobytes()).hexdigest() == f["pixels_sha256"]
        images.append(img)
    return ref, images


def _row(t: torch.Tensor) -> np.ndarray:
    """[1,3,S,S] → the NHWC row layout of inputs.npz."""
    return np.ascontiguousarray(t[0].permute(1, 2, 0).numpy(), np.float32)


@pytest.mark.parametrize("size", [150, 112])
def test_preprocess_reproduces_faceapi_inputs_bit_for_bit(golden, size):
    ref, images = golden
    for f, img in zip(ref["faces"], images):
        for key, fn in ((f"rgb{size}", facenets.preprocess_rgb), (f"input{size}", facenets.preprocess)):
            out = fn(img, size)
            assert out.shape == (1, 3, size, size) and out.dtype == torch.float32
            row, exp = _row(out), f["inputs"][key]
            got = row.reshape(-1)[exp["sample_index"]]
            assert np.abs(got - np.asarray(exp["sample_values"], np.float32)).max() == 0, (f["name"], key)
            assert hashlib.sha256(row.tobytes()).hexdigest() == exp["sha256"], (f["name"], key)


def test_pad_to_square_matches_faceapi(golden):
    ref, images = golden
    pad = ref["faces"][7]["pad_to_square"]  # 600×737: 68 zero columns left, 69 right
    assert pad == {"axis": "width", "before": 68, "after": 69, "size": 737}
    rgb = facenets.preprocess_rgb(images[7], 737)[0]  # already square after padding: no resize
    assert rgb.shape == (3, 737, 737)
    assert rgb[:, :, :68].abs().max() == 0 and rgb[:, :, -69:].abs().max() == 0
    assert torch.equal(rgb[:, :, 68:-69], torch.from_numpy(images[7].copy()).permute(2, 0, 1).float())


def test_shipped_weights_are_the_dequantised_tfjs_tensors(golden):
    ref, _ = golden
    for name, model in TFJS_MODEL.items():
        state, meta = read_state(facenets.weights_path(name))
        origin = json.loads(meta["tfjs_names"])
        table = ref["weights_sha256"][model]
        assert sorted(n for n, _ in origin.values()) == sorted(table)
        for key, (tfjs_name, layout) in origin.items():
            arr = to_tfjs_layout(state[key], layout).numpy().astype("<f4")
            assert hashlib.sha256(arr.tobytes()).hexdigest() == table[tfjs_name], (name, key)


def _inputs(images, size):
    return torch.cat([facenets.preprocess(im, size) for im in images])


def test_networks_reproduce_faceapi_outputs(golden):
    ref, images = golden
    F = ref["faces"]
    x150, x112 = _inputs(images, 150), _inputs(images, 112)
    with torch.no_grad():
        desc = facenets.load("recognition")(x150)
        age, gender_logits = facenets.load("age_gender")(x112)
        expr_logits = facenets.load("expression")(x112)
        raw = facenets.load("landmarks68")(x112)
    assert desc.shape == (8, 128) and age.shape == (8,) and gender_logits.shape == (8, 2)
    assert expr_logits.shape == (8, 7) and raw.shape == (8, 136)
    arr = lambda k: np.asarray([f[k] for f in F], np.float64)
    assert np.abs(desc.numpy() - arr("descriptor")).max() <= 1e-4
    assert np.abs(age.numpy() - arr("age")).max() <= 1e-3
    assert np.abs(gender_logits.numpy() - arr("gender_logits")).max() <= 1e-4
    assert np.abs(expr_logits.numpy() - arr("expression_logits")).max() <= 1e-4
    assert np.abs(raw.numpy() - arr("landmarks_raw_fc")).max() <= 1e-4


def test_analyze_reproduces_faceapi_results(golden):
    ref, images = golden
    F = ref["faces"]
    res = facenets.analyze(images, batch_size=3)  # the crops are the faces: no landmarks needed
    arr = lambda k: np.asarray([f[k] for f in F], np.float64)
    assert res.descriptor.shape == (8, 128) and res.landmarks.shape == (8, 68, 2)
    assert np.abs(res.descriptor - arr("descriptor")).max() <= 1e-4
    assert np.abs(res.age - arr("age")).max() <= 1e-3
    assert np.abs(res.p_male - np.asarray([f["gender_probabilities"]["male"] for f in F])).max() <= 1e-4
    assert np.abs(res.expression - arr("expression_probabilities")).max() <= 1e-4
    assert np.abs(res.expression.sum(1) - 1).max() < 1e-5
    assert np.abs(res.landmarks - arr("landmarks_positions")).max() <= 1e-3
    for i, f in enumerate(F):
        rel = facenets.landmarks_from_raw(torch.tensor(f["landmarks_raw_fc"])[None], f["height"], f["width"])
        rel = rel[0].numpy() / [f["width"], f["height"]]
        assert np.abs(rel.reshape(-1) - f["landmarks_relative"]).max() <= 1e-4
    dist = facenets.identity_distance(res.descriptor[:, None], res.descriptor[None])
    assert np.abs(dist - np.asarray(ref["descriptor_distances"])).max() <= 1e-4
    assert res.face(1)["top_expression"] == "happy" and ref["expression_labels"] == list(facenets.EXPRESSIONS)


def test_tensor_variant_matches_and_is_differentiable(golden):
    ref, images = golden
    F = ref["faces"]
    batch = torch.stack([torch.from_numpy(im.copy()).permute(2, 0, 1) for im in images[5:7]]).float()
    x = (batch / 127.5 - 1).requires_grad_(True)  # [-1, 1], the generator's convention
    res = facenets.analyze_tensor(x)
    assert np.abs(res.age.detach().numpy() - [F[5]["age"], F[6]["age"]]).max() <= 1e-3
    assert np.abs(res.descriptor.detach().numpy() - [F[5]["descriptor"], F[6]["descriptor"]]).max() <= 1e-4
    loss = facenets.identity_distance(res.descriptor[0], res.descriptor[1]) + res.age.sum() + res.expression[:, 1].sum()
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in facenets.load("recognition").parameters())


def test_identity_distance_and_similarity_conventions(golden):
    ref, _ = golden
    d = np.asarray([f["descriptor"] for f in ref["faces"]], np.float32)
    assert facenets.identity_distance(d[0], d[0]) == 0
    assert abs(float(facenets.identity_distance(d[0], d[1])) - ref["descriptor_distances"][0][1]) <= 1e-4
    sim = facenets.identity_similarity(d[0], d[1])
    assert isinstance(sim, np.ndarray) and -1 <= sim <= 1
    assert abs(float(facenets.identity_similarity(d[2], d[2])) - 1) < 1e-6
    t = torch.from_numpy(d)
    assert torch.is_tensor(facenets.identity_distance(t[0], t[1]))
