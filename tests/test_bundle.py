"""Bundle folders: manifest round trip, size and hash checks, atomic and no-clobber writing."""
from __future__ import annotations

import json

import pytest

from editkit.bundle import MANIFEST, load_bundle, sha256_file, verify_bundle, write_bundle
from editkit.errors import BadInputError, CheckpointError, UsageError
from product_helpers import build_tiny_bundle


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    return build_tiny_bundle(tmp_path_factory.mktemp("b") / "tiny")


def test_manifest_round_trip(bundle_dir):
    b = load_bundle(bundle_dir)
    data = json.loads((bundle_dir / MANIFEST).read_text())
    assert data["format"] == "editkit-bundle" and data["version"] == 1
    assert b.name == "tiny" and b.alignment == "utkface" and b.licence == "test only"
    assert b.navigators == {"free": "navigator-free.safetensors"} and b.default_navigator == "free"
    assert b.generator_path.is_file() and b.encoder_path.is_file() and b.navigator_path().is_file()
    assert b.model_card_path.read_text().startswith("# tiny test model")
    for rel, entry in b.files.items():
        assert entry["sha256"] == sha256_file(bundle_dir / rel)
        assert entry["bytes"] == (bundle_dir / rel).stat().st_size
    assert load_bundle(bundle_dir / MANIFEST).root == bundle_dir  # the manifest path works too
    assert verify_bundle(bundle_dir).name == "tiny"
    with pytest.raises(UsageError, match="no navigator 'nope'"):
        b.navigator_path("nope")


def test_components_load(bundle_dir):
    import editkit
    import inversion
    from navigator.io import load_navigator

    b = load_bundle(bundle_dir)
    G = editkit.load_generator(b.generator_path)
    assert (G.num_ws, G.w_dim, G.resolution) == (6, 16, 16)
    assert inversion.load_encoder(b.encoder_path).num_ws == 6
    assert load_navigator(b.navigator_path()).labels[0] == "smile"


def test_corrupt_and_incomplete_files_are_caught(bundle_dir, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(bundle_dir, copy)
    nav = copy / "navigator-free.safetensors"
    data = bytearray(nav.read_bytes())
    data[-1] ^= 0xFF  # same size, different bytes: only the hash sees it
    nav.write_bytes(bytes(data))
    load_bundle(copy)
    with pytest.raises(CheckpointError, match="SHA-256 mismatch"):
        verify_bundle(copy)
    nav.write_bytes(bytes(data[:-10]))  # an incomplete copy: the size check sees it on every load
    with pytest.raises(CheckpointError, match="incomplete copy"):
        load_bundle(copy)
    nav.unlink()
    with pytest.raises(BadInputError, match="missing"):
        load_bundle(copy)


def test_bad_manifests(tmp_path):
    with pytest.raises(BadInputError, match="not a model bundle"):
        load_bundle(tmp_path)
    (tmp_path / MANIFEST).write_text("{not json")
    with pytest.raises(BadInputError, match="unreadable bundle manifest"):
        load_bundle(tmp_path)
    (tmp_path / MANIFEST).write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(BadInputError, match="not an editkit bundle"):
        load_bundle(tmp_path)
    (tmp_path / MANIFEST).write_text(json.dumps({"format": "editkit-bundle", "version": 1, "name": "x",
                                                 "generator": "g.safetensors", "files": {}}))
    with pytest.raises(BadInputError, match="no hash entry"):
        load_bundle(tmp_path)


def test_write_bundle_refuses_existing_and_leaves_nothing_on_failure(bundle_dir, tmp_path):
    b = load_bundle(bundle_dir)
    with pytest.raises(UsageError, match="output exists"):
        write_bundle(bundle_dir, name="x", generator=b.generator_path)
    out = tmp_path / "new"
    with pytest.raises(BadInputError):
        write_bundle(out, name="x", generator=b.generator_path, navigators={"a": tmp_path / "missing.safetensors"})
    assert list(tmp_path.iterdir()) == []  # the temporary folder is gone
    nb = write_bundle(out, name="copy", generator=b.generator_path, navigators={"a": b.navigator_path()},
                      alignment={"name": "custom", "size": 200, "eye_scale": 1.2})
    assert verify_bundle(out).alignment["eye_scale"] == 1.2 and nb.encoder is None


def test_outputs_get_normal_permissions(bundle_dir):
    import os
    import stat

    umask = os.umask(0)
    os.umask(umask)
    want = 0o666 & ~umask
    assert stat.S_IMODE(bundle_dir.stat().st_mode) == 0o777 & ~umask
    for f in bundle_dir.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == want, (f, oct(f.stat().st_mode))  # not mkstemp's 0600
