"""Every edited face carries its identity distance to the input and the predicted attributes before
and after (editkit.facenets); ``editkit edit --report`` writes them, checked writable before work."""
from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

import editkit
from editkit import facenets
import editkit.cli  # noqa: F401 (registers the commands)
from editkit.cli_app import app
from editkit.errors import UsageError
from product_helpers import FACE_PHOTO, build_tiny_bundle, copy_face

runner = CliRunner()


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    return build_tiny_bundle(tmp_path_factory.mktemp("report") / "tiny")


@pytest.fixture(scope="module")
def editor(bundle_dir):
    return editkit.Editor(bundle_dir, method="encoder")


def test_faces_carry_identity_and_attributes(editor):
    res = editor.edit(FACE_PHOTO, attr=0, strength=2.0)
    f = res.faces[0]
    assert set(f.attributes) == {"before", "reconstruction", "after"}
    for part in f.attributes.values():
        assert 0 < part["age"] < 120 and 0 <= part["p_male"] <= 1
        assert set(part["expression"]) == set(facenets.EXPRESSIONS)
    # transfer (default): the numbers are the face networks' on the photo's face before and after,
    # cut from the photo and the output at one size, with the landmark box
    from editkit.render import face_crops

    before, after = face_crops(res.photo, [f.face], 256)[0], face_crops(res.image, [f.face], 256)[0]
    lm = f.face.landmarks_in_crop * before.shape[0] / f.before.shape[0]
    ref = facenets.analyze([before, after], landmarks=[lm, lm])
    assert f.identity["distance"] == pytest.approx(float(facenets.identity_distance(ref.descriptor[0], ref.descriptor[1])), abs=1e-4)
    assert f.attributes["after"]["age"] == pytest.approx(float(ref.age[1]), abs=1e-3)
    assert f.identity["same_person"] == (f.identity["distance"] < 0.6)
    assert -1 <= f.identity["similarity"] <= 1
    # a zero-strength edit changes nothing: the photo comes back, its face unchanged
    f0 = editor.edit(FACE_PHOTO, attr=0, strength=0.0).faces[0]
    assert f0.identity["distance"] == f0.identity["distance_edit"] == 0
    assert f0.attributes["after"] == f0.attributes["before"]
    # generated: the generator's aligned crops, and after == reconstruction at strength 0
    g = editor.edit(FACE_PHOTO, attr=0, strength=2.0, render="generated").faces[0]
    lm = g.face.landmarks_in_crop
    ref = facenets.analyze([g.before, g.after], landmarks=[lm, lm])
    assert g.identity["distance"] == pytest.approx(float(facenets.identity_distance(ref.descriptor[0], ref.descriptor[1])), abs=1e-4)
    g0 = editor.edit(FACE_PHOTO, attr=0, strength=0.0, render="generated").faces[0]
    assert g0.identity["distance_edit"] == 0 and g0.attributes["after"] == g0.attributes["reconstruction"]
    rep = res.report(editor.navigator.labels, FACE_PHOTO)
    assert rep["edits"] == [{"direction": 0, "label": "smile", "strength": 2.0}]
    json.dumps(rep)


def test_analysis_can_be_turned_off(bundle_dir):
    ed = editkit.Editor(bundle_dir, method="encoder", analyze_faces=False)
    f = ed.edit(FACE_PHOTO, attr=0, strength=1.0).faces[0]
    assert f.identity == {} and f.attributes == {}


def test_cli_report_written_atomically(bundle_dir, tmp_path):
    photo = copy_face(tmp_path / "photo.jpg")
    rep = tmp_path / "out" / "report.json"
    r = runner.invoke(app, ["edit", str(photo), "-a", "smile", "-s", "1.5", "-m", str(bundle_dir), "--method",
                            "encoder", "--report", str(rep)])
    assert r.exit_code == 0, r.output
    data = json.loads(rep.read_text())
    assert data["edits"][0]["label"] == "smile" and len(data["faces"]) == 1
    face = data["faces"][0]
    assert {"distance", "similarity", "same_person"} <= set(face["identity"])
    assert set(face["attributes"]) == {"before", "reconstruction", "after"}
    assert str(rep) in r.output and data["outputs"][0].endswith("photo.edit-smile-s1.5.jpg")
    assert not [p for p in rep.parent.iterdir() if p.name.startswith(".")]  # no temporary left behind


def test_cli_report_problems_found_before_any_work(bundle_dir, tmp_path, monkeypatch):
    photo = copy_face(tmp_path / "photo.jpg")
    calls = []
    monkeypatch.setattr("editkit.commands.edit.make_editor", lambda *a, **k: calls.append(1))
    existing = tmp_path / "r.json"
    existing.write_text("{}")
    for target, message in ((existing, "output exists"), (photo, "input"), (tmp_path, "folder")):
        r = runner.invoke(app, ["edit", str(photo), "-a", "0", "-s", "1", "-m", str(bundle_dir),
                                "--report", str(target)])
        assert isinstance(r.exception, UsageError) and message in str(r.exception), (target, r.exception)
    if os.geteuid() != 0:  # root can write anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        r = runner.invoke(app, ["edit", str(photo), "-a", "0", "-s", "1", "-m", str(bundle_dir),
                                "--report", str(ro / "r.json")])
        assert isinstance(r.exception, UsageError) and "writable" in str(r.exception)
    assert calls == []
