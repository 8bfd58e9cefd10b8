"""editkit.Editor on a tiny bundle and a real photo: edit, several edits, traverse, invert, save."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import editkit
from editkit.errors import MissingWeightsError, NoFaceError, UsageError
from product_helpers import FACE_PHOTO, NO_FACE_PHOTO, build_tiny_bundle


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    return build_tiny_bundle(tmp_path_factory.mktemp("ed") / "tiny")


@pytest.fixture(scope="module")
def editor(bundle_dir):
    return editkit.Editor(bundle_dir, method="encoder")


@pytest.fixture(scope="module")
def result(editor):
    return editor.edit(FACE_PHOTO, attr=0, strength=2.0)


def test_edit_result_parts(editor, result):
    from editkit.photos import load_photo

    photo = load_photo(FACE_PHOTO)
    assert result.image.shape == photo.shape and result.image.dtype == np.uint8
    assert np.array_equal(result.photo, photo)
    assert len(result.faces) == 1 and result.edits == [(0, 2.0)]
    for f in result.faces:
        assert f.before.shape == f.after.shape == f.reconstruction.shape == (16, 16, 3)
        assert f.ws.shape == f.ws_edited.shape == (editor.G.num_ws, editor.G.w_dim)
        # the edit is exactly ws + s * D_k, and it changes the rendered face
        D0 = editor.navigator.offsets()[0].cpu()
        assert torch.allclose(f.ws_edited, f.ws + 2.0 * D0, atol=1e-5)
        assert np.abs(f.after.astype(int) - f.reconstruction.astype(int)).max() > 0
        assert "psnr" in f.metrics
    # rendered (transfer): the face region changed, the far corners of the photo did not
    assert (result.image != photo).any()
    assert np.array_equal(result.image[:40, -40:], photo[:40, -40:])
    assert np.array_equal(result.image[-10:, :10], photo[-10:, :10])


def test_weak_detections_are_dropped_by_default(editor):
    # the astronaut photo has one face and a weak false HOG detection (score ~0.12) on the suit
    assert len(editor.align(FACE_PHOTO)) == 1
    loose = editkit.Editor(editor.bundle.root, method="encoder", align_options={"min_score": 0.0})
    faces = loose.align(FACE_PHOTO)
    assert len(faces) == 2 and min(f.score for f in faces) < 0.25


def test_several_edits_at_once_and_labels(editor, result):
    res = editor.edit(FACE_PHOTO, attr=[0, "age"], strength=[2, -1], faces=[0])
    D = editor.navigator.offsets().cpu()
    f = res.faces[0]
    assert res.edits == [(0, 2.0), (2, -1.0)]
    assert torch.allclose(f.ws_edited, f.ws + 2 * D[0] - D[2], atol=1e-5)
    assert torch.allclose(f.ws, result.faces[0].ws)  # same inversion (encoder) -> same code
    # one strength for several directions applies to each
    assert editor._edits(["smile", 2], [1.5]) == [(0, 1.5), (2, 1.5)]


def test_attr_resolution(editor):
    assert editor.resolve_attr("smile") == 0 and editor.resolve_attr("SMILE") == 0
    assert editor.resolve_attr("age") == 2 and editor.resolve_attr("attr1") == 1
    assert editor.resolve_attr("3") == 3 and editor.resolve_attr(1) == 1
    with pytest.raises(UsageError, match="ambiguous direction 'ag'"):
        editor.resolve_attr("ag")
    with pytest.raises(UsageError, match="unknown direction 'beard'.*0=smile"):
        editor.resolve_attr("beard")
    with pytest.raises(UsageError, match="out of range"):
        editor.resolve_attr(7)
    with pytest.raises(UsageError, match="2 directions but 3 strengths"):
        editor._edits([0, 1], [1, 2, 3])
    with pytest.raises(UsageError, match="finite"):
        editor._edits(0, float("nan"))


def test_zero_strength_gives_the_reconstruction(editor):
    res = editor.edit(FACE_PHOTO, attr=1, strength=0.0, faces=0)
    assert np.array_equal(res.faces[0].after, res.faces[0].reconstruction)


def test_bad_photos(editor, tmp_path):
    with pytest.raises(NoFaceError, match="camera.jpg"):
        editor.edit(NO_FACE_PHOTO, attr=0, strength=1)
    with pytest.raises(UsageError, match="out of range"):
        editor.edit(FACE_PHOTO, attr=0, strength=1, faces=9)
    with pytest.raises(UsageError, match="uint8"):
        editor.edit(np.zeros((8, 8), np.float32), attr=0, strength=1)
    with pytest.raises(UsageError, match="no encoder"):
        editkit.Editor(generator=editor.paths["generator"], navigator=editor.paths["navigator"]).edit(
            FACE_PHOTO, 0, 1, method="encoder")


def test_save_writes_atomically_and_never_clobbers(result, tmp_path):
    from PIL import Image

    out = tmp_path / "edited.jpg"
    written = result.save(out, crops=True)
    assert written == [out, tmp_path / "edited.crops.png"]
    assert Image.open(out).size == (512, 512)
    from editkit.render import native_size

    n = len(result.faces)
    side = native_size(result.faces[0].face)  # transfer: the photo's own face, 1:1
    assert Image.open(written[1]).size == (2 * side + 6, n * (side + 2) + 2)  # a [before | after] row per face
    with pytest.raises(UsageError, match="output exists"):
        result.save(out)
    with pytest.raises(UsageError, match="refusing to overwrite an input"):
        result.save(FACE_PHOTO, overwrite=True)
    crop = result.save(tmp_path / "crop.png", crop_only=True)[0]
    assert Image.open(crop).size == ((side, side) if n == 1 else (n * (side + 2) + 2, side + 4))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crop.png", "edited.crops.png", "edited.jpg"]


def test_traverse_and_files(editor, tmp_path):
    import cv2
    import imageio.v3 as iio

    trav = editor.traverse(FACE_PHOTO, "age", 3.0, frames=5, face=0, render="generated")
    assert trav.strengths == [-3.0, -1.5, 0.0, 1.5, 3.0] and trav.directions == [2]
    assert len(trav.frames) == 5 and trav.frames[0].shape == (16, 16, 3)
    assert not np.array_equal(trav.frames[0], trav.frames[-1])
    gif = trav.save(tmp_path / "t.gif")
    frames = iio.imread(gif)
    assert frames.shape[0] == 8  # forward then back: 5 + 3
    assert iio.immeta(gif)["loop"] == 0 and iio.immeta(gif)["duration"] == 100
    mp4 = trav.save(tmp_path / "t.mp4")
    cap = cv2.VideoCapture(str(mp4))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 8 and int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 16
    cap.release()
    grid = editor.traverse(FACE_PHOTO, [0, 2], None, frames=4, face=0, render="generated")
    assert grid.strengths == [-2.0, -2 / 3, 2 / 3, 2.0] or np.allclose(grid.strengths, [-2, -2 / 3, 2 / 3, 2])
    png = grid.save(tmp_path / "g.png")
    from PIL import Image

    w, h = Image.open(png).size
    assert h == 2 * 16 + 3 * 2 and w > 4 * 16
    with pytest.raises(UsageError, match="at least 2"):
        editor.traverse(FACE_PHOTO, 0, 1, frames=1)


def test_traverse_transfer_frames_are_the_photo_at_its_resolution(editor):
    from editkit.photos import load_photo
    from editkit.render import native_crop, native_size

    trav = editor.traverse(FACE_PHOTO, "age", 3.0, frames=3, face=0)  # transfer is the default
    face = editor.align(FACE_PHOTO)[0]
    side = min(native_size(face), 384)
    assert trav.frames[0].shape == (side, side, 3) and side > editor.G.resolution
    assert np.array_equal(trav.frames[1], native_crop(load_photo(FACE_PHOTO), face, side))  # strength 0
    assert not np.array_equal(trav.frames[0], trav.frames[2])


def test_invert_and_preview(editor):
    inv = editor.invert(FACE_PHOTO, faces=[0])
    assert len(inv) == 1 and inv[0].ws.shape == (6, 16) and inv[0].index == 0
    assert np.array_equal(inv[0].reconstruction, editor.synthesize(inv[0].ws[None])[0])
    grid = editor.preview(samples=2, seed=0)
    assert grid.shape[0] == 4 * 16 + 5 * 2  # a row per direction
    assert np.array_equal(grid, editor.preview(samples=2, seed=0))
    dirs = editor.directions()
    assert [d.name for d in dirs] == ["smile", "attr1", "age", "agex"] and dirs[2].strength_range == (-3.0, 3.0)
    assert all(d.layers for d in dirs)


def test_models_loaded_once(bundle_dir, monkeypatch):
    calls = []
    real = editkit.load_generator

    def counting(*a, **k):
        calls.append(a)
        return real(*a, **k)

    monkeypatch.setattr(editkit, "load_generator", counting)
    ed = editkit.Editor(bundle_dir, method="encoder")
    ed.edit(FACE_PHOTO, 0, 1, faces=0)
    ed.edit(FACE_PHOTO, 2, -1, faces=0)
    ed.traverse(FACE_PHOTO, 0, 1, frames=2, face=0)
    assert len(calls) == 1


def test_official_files_without_encoder_use_optimisation(editor):
    ed = editkit.Editor(generator=editor.paths["generator"], navigator=editor.paths["navigator"],
                        alignment="ffhq", invert_options={"steps": 3})
    assert ed.encoder is None and ed.template.name == "ffhq"
    res = ed.edit(FACE_PHOTO, "smile", 1.0, faces=0)  # hybrid falls back to optimisation from the average code
    assert res.faces[0].ws.shape == (6, 16)


def test_alignment_parameters_from_bundle(tmp_path):
    d = build_tiny_bundle(tmp_path / "custom", with_encoder=False,
                          alignment={"name": "custom", "size": 200, "eye_scale": 1.2, "mouth_scale": 1.1,
                                     "centre_shift": 0.5})
    ed = editkit.Editor(d, invert_options={"steps": 2})
    assert ed.template.name == "custom" and ed.template.eye_scale == 1.2


def test_missing_default_bundle_is_a_clear_error(monkeypatch, tmp_path):
    from editkit import registry

    monkeypatch.setattr(registry, "bundled_path", lambda: tmp_path / "nothing")
    with pytest.raises(MissingWeightsError, match="bundled model is not installed"):
        editkit.Editor()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(bundle_dir, editor):
    ed = editkit.Editor(bundle_dir, method="encoder", device="cuda")
    a = ed.edit(FACE_PHOTO, 0, 2, faces=0).faces[0]
    b = editor.edit(FACE_PHOTO, 0, 2, faces=0).faces[0]
    assert torch.allclose(a.ws_edited, b.ws_edited, atol=1e-3)
    assert np.abs(a.after.astype(int) - b.after.astype(int)).max() <= 3
