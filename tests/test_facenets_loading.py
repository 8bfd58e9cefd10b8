"""The face-network weights load from the shipped safetensors only: no pickle, no code, no network;
bad files are refused with a one-line error naming the file."""
from __future__ import annotations

import pickle
import socket

import pytest
import torch
from safetensors.torch import save_file

from editkit import facenets
from editkit.errors import CheckpointError, MissingWeightsError, UsageError
from editkit.facenets.weights import clear_cache, load_file, read_state

SHAPES = {"recognition": ((2, 3, 150, 150), (2, 128)), "age_gender": ((2, 3, 112, 112), None),
          "expression": ((2, 3, 112, 112), (2, 7)), "landmarks68": ((2, 3, 112, 112), (2, 136))}


def _forbid(*_a, **_k):
    raise AssertionError("code-executing or network loader used")


def test_weights_load_without_pickle_or_network(monkeypatch):
    clear_cache()
    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, _forbid)
    monkeypatch.setattr(torch, "load", _forbid)
    monkeypatch.setattr(socket, "socket", _forbid)
    monkeypatch.setattr(socket, "create_connection", _forbid)
    try:
        for name, (shape_in, shape_out) in SHAPES.items():
            net = facenets.load(name)
            assert not net.training and all(not p.requires_grad for p in net.parameters())
            with torch.no_grad():
                out = net(torch.zeros(shape_in))
            if name == "age_gender":
                assert out[0].shape == (2,) and out[1].shape == (2, 2)
            else:
                assert out.shape == shape_out
            assert facenets.load(name) is net  # cached
            assert facenets.weights_path(name).suffix == ".safetensors"
    finally:
        monkeypatch.undo()
        clear_cache()


def test_weights_files_are_plain_safetensors():
    for name in facenets.NETWORKS:
        with open(facenets.weights_path(name), "rb") as f:
            header_len = int.from_bytes(f.read(8), "little")
            assert f.read(1) == b"{" and 0 < header_len < 10_000_000
        _, meta = read_state(facenets.weights_path(name))
        assert meta["source_package"] == "@vladmandic/face-api@1.7.15"
    folder = facenets.weights_path("recognition").parent
    assert "MIT License" in (folder / "LICENSE").read_text()
    assert "face_recognition_model" in (folder / "PROVENANCE.md").read_text()


def _good_state(name):
    return read_state(facenets.weights_path(name))[0]


def test_wrong_shape_nan_and_missing_tensors_are_refused(tmp_path):
    state = _good_state("expression")
    bad = dict(state)
    bad["fc.weight"] = torch.zeros(5, 256)
    save_file(bad, str(tmp_path / "shape.safetensors"))
    with pytest.raises(CheckpointError, match=r"shape.safetensors: tensor fc.weight has shape \(5, 256\)"):
        load_file("expression", tmp_path / "shape.safetensors")
    bad = dict(state)
    bad["dense0.conv0.bias"] = torch.full_like(state["dense0.conv0.bias"], float("nan"))
    save_file(bad, str(tmp_path / "nan.safetensors"))
    with pytest.raises(CheckpointError, match="NaN"):
        load_file("expression", tmp_path / "nan.safetensors")
    bad = {k: v for k, v in state.items() if k != "fc.bias"}
    save_file(bad, str(tmp_path / "missing.safetensors"))
    with pytest.raises(CheckpointError, match="missing"):
        load_file("expression", tmp_path / "missing.safetensors")
    bad = {k: v.double() for k, v in state.items()}
    save_file(bad, str(tmp_path / "dtype.safetensors"))
    with pytest.raises(CheckpointError, match="float32"):
        load_file("expression", tmp_path / "dtype.safetensors")


def test_pickle_or_truncated_files_are_refused(tmp_path):
    p = tmp_path / "evil.safetensors"
    p.write_bytes(pickle.dumps({"fc.weight": 1}))
    with pytest.raises(CheckpointError, match="evil.safetensors: unreadable safetensors"):
        load_file("expression", p)
    good = facenets.weights_path("expression").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="cut.safetensors"):
        load_file("expression", tmp_path / "cut.safetensors")
    with pytest.raises(MissingWeightsError, match="missing"):
        load_file("expression", tmp_path / "absent.safetensors")
    with pytest.raises(UsageError, match="unknown face network"):
        facenets.load("arcface")


def test_load_on_another_device_keeps_cpu_copy():
    net = facenets.load("landmarks68", "cpu")
    assert next(net.parameters()).device.type == "cpu"
    if torch.cuda.is_available():  # pragma: no cover - GPU machines only
        gpu = facenets.load("landmarks68", "cuda")
        assert next(gpu.parameters()).is_cuda and facenets.load("landmarks68") is net


def test_first_load_inside_inference_mode_still_serves_autograd():
    clear_cache()
    try:
        with torch.inference_mode():
            facenets.load("age_gender")
        x = torch.zeros(1, 3, 112, 112, requires_grad=True)
        facenets.load("age_gender")(x)[0].sum().backward()
        assert x.grad is not None
    finally:
        clear_cache()
