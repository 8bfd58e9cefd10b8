"""Each editing example in examples/ runs end to end on a tiny bundle (in-process, through its main())."""
from __future__ import annotations

import runpy
import shutil
from pathlib import Path

import pytest

from product_helpers import NO_FACE_PHOTO, build_tiny_bundle, copy_face

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    return build_tiny_bundle(tmp_path_factory.mktemp("ex") / "tiny")


def _main(name):
    return runpy.run_path(str(EXAMPLES / name), run_name="example")["main"]


def test_edit_photo(bundle_dir, tmp_path, capsys):
    photo = copy_face(tmp_path / "p.jpg")
    out = _main("edit_photo.py")([str(photo), "--model", str(bundle_dir), "--attr", "smile", "--strength", "2",
                                  "--attr", "2", "--strength", "-1", "--method", "encoder"])
    assert out.is_file() and out.with_name(out.stem + ".crops.png").is_file()
    assert "face 0: psnr" in capsys.readouterr().out


def test_traverse_gif(bundle_dir, tmp_path):
    import imageio.v3 as iio

    photo = copy_face(tmp_path / "p.jpg")
    out = _main("traverse_gif.py")([str(photo), "--model", str(bundle_dir), "--attr", "age", "--frames", "4",
                                    "--face", "0"])
    assert iio.imread(out).shape[0] == 6 and out.with_name(out.stem + ".grid.png").is_file()


def test_official_weights(bundle_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("EDITKIT_HOME", str(tmp_path / "home"))
    photo = copy_face(tmp_path / "p.jpg")
    out = _main("official_weights.py")([str(photo), "--generator", str(bundle_dir / "generator.safetensors"),
                                        "--navigator", str(bundle_dir / "navigator-free.safetensors"),
                                        "--encoder", str(bundle_dir / "encoder.safetensors"), "--alignment",
                                        "utkface", "--steps", "2", "--register", "mine"])
    from editkit import registry

    assert out.is_file() and registry.resolve_bundle("mine").encoder is not None


def test_batch_folder(bundle_dir, tmp_path):
    copy_face(tmp_path / "in" / "a.jpg")
    shutil.copyfile(NO_FACE_PHOTO, tmp_path / "in" / "b.jpg")
    s = _main("batch_folder.py")([str(tmp_path / "in"), str(tmp_path / "out"), "--model", str(bundle_dir)])
    assert (s.done, s.failed) == (1, 1) and (tmp_path / "out" / "a.jpg").is_file()
