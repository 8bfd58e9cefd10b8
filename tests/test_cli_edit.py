"""`editkit edit`, `traverse` and `directions` through typer's CliRunner, main() and as a subprocess."""
from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from editkit.cli import main
from editkit.cli_app import app
from editkit.errors import UsageError
from product_helpers import FACE_PHOTO, NO_FACE_PHOTO, build_tiny_bundle, copy_face, run_editkit, truncated_copy

runner = CliRunner()


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    return build_tiny_bundle(tmp_path_factory.mktemp("cli") / "tiny")


@pytest.fixture
def photo(tmp_path):
    return copy_face(tmp_path / "photo.jpg")


def _sha(p):
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_every_command_and_option_is_documented():
    import typer

    group = typer.main.get_command(app)
    missing = []

    def walk(cmd, path):
        if not (cmd.help or "").strip() and path:
            missing.append(" ".join(path))
        for p in cmd.params:
            if p.name != "help" and not (getattr(p, "help", None) or "").strip():
                missing.append(f"{' '.join(path)} {p.name}")
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, path + [name])

    walk(group, [])
    assert not missing, f"undocumented: {missing}"
    for name in ("edit", "batch", "traverse", "directions", "models"):
        assert name in group.commands
    for name in ("list", "add", "info", "verify", "download"):
        assert name in group.commands["models"].commands


def test_edit_default_name_and_no_overwrite(bundle_dir, photo):
    before = _sha(photo)
    r = runner.invoke(app, ["edit", str(photo), "--attr", "3", "--strength", "2", "--model", str(bundle_dir),
                            "--method", "encoder"])
    assert r.exit_code == 0, r.output
    out = photo.with_name("photo.edit-attr3-s2.jpg")
    assert out.is_file() and f"-> {out}" in r.output
    import os
    import stat

    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask  # like any new file, not mkstemp's 0600
    assert _sha(photo) == before  # the input is never modified
    # a second run refuses to replace the output ...
    r = runner.invoke(app, ["edit", str(photo), "--attr", "3", "--strength", "2", "--model", str(bundle_dir)])
    assert isinstance(r.exception, UsageError) and "output exists" in str(r.exception)
    # ... unless --overwrite; -o onto the input is refused even with --overwrite
    mtime = out.stat().st_mtime_ns
    r = runner.invoke(app, ["edit", str(photo), "-a", "3", "-s", "2", "-m", str(bundle_dir), "--method", "encoder",
                            "--overwrite", "-q"])
    assert r.exit_code == 0 and r.output == "" and out.stat().st_mtime_ns >= mtime
    r = runner.invoke(app, ["edit", str(photo), "-a", "3", "-s", "2", "-m", str(bundle_dir), "-o", str(photo),
                            "--overwrite"])
    assert isinstance(r.exception, UsageError) and "input" in str(r.exception)
    assert _sha(photo) == before
    assert sorted(p.name for p in photo.parent.iterdir()) == ["photo.edit-attr3-s2.jpg", "photo.jpg"]


def test_edit_labels_negative_strength_several_edits_crops(bundle_dir, photo):
    from PIL import Image

    r = runner.invoke(app, ["edit", str(photo), "--attr", "smile", "--strength", "-1.5", "--attr", "2",
                            "--strength", "1", "-m", str(bundle_dir), "--method", "encoder", "--crops", "--face", "0"])
    assert r.exit_code == 0, r.output
    out = photo.with_name("photo.edit-smile-s-1.5_attr2-s1.jpg")
    assert out.is_file() and out.with_name(out.stem + ".crops.png").is_file()
    assert "edited 1 face(s) (smile -1.5, age +1)" in r.output
    r = runner.invoke(app, ["edit", str(photo), "-a", "age", "-s", "2", "-m", str(bundle_dir), "--method", "encoder",
                            "--crop-only", "--face", "0", "--render", "generated"])
    assert r.exit_code == 0, r.output
    crop = photo.with_name("photo.edit-age-s2.crop.png")
    assert Image.open(crop).size == (16, 16)  # the generator's crop
    r = runner.invoke(app, ["edit", str(photo), "-a", "age", "-s", "2", "-m", str(bundle_dir), "--method", "encoder",
                            "--crop-only", "--face", "0", "--overwrite"])
    assert r.exit_code == 0, r.output
    assert Image.open(crop).size[0] > 64  # transfer: the photo's own face at its own resolution
    a = np.asarray(Image.open(photo)).astype(int)
    b = np.asarray(Image.open(out)).astype(int)
    assert a.shape == b.shape and np.abs(a - b).max() > 20  # the face changed (more than JPEG noise)


@pytest.mark.parametrize("args, code, message", [
    (["edit", "{missing}", "-a", "0", "-s", "1"], 3, "no such file"),
    (["edit", "{text}", "-a", "0", "-s", "1", "-m", "{bundle}"], 3, "not an image"),
    (["edit", "{trunc}", "-a", "0", "-s", "1", "-m", "{bundle}"], 3, "truncated"),
    (["edit", "{noface}", "-a", "0", "-s", "1", "-m", "{bundle}"], 3, "no face found"),
    (["edit", "{photo}", "-a", "beard", "-s", "1", "-m", "{bundle}"], 2, "unknown direction 'beard'"),
    (["edit", "{photo}", "-a", "0", "-s", "1", "-m", "{bundle}", "--face", "7", "--method", "encoder"], 2, "out of range"),
    (["edit", "{photo}", "-a", "0", "-s", "1", "--face", "x"], 2, "--face must be"),
    (["edit", "{photo}", "-a", "0", "-s", "1", "-m", "{missing}"], 2, "unknown model"),
    (["edit", "{photo}", "-a", "0", "-s", "1", "-m", "{bundle}", "--method", "magic"], 2, "--method must be one of"),
    (["edit", "{photo}", "-a", "0"], 2, "strength"),
    (["edit", "{photo}", "-a", "0", "-s", "1", "-m", "{bundle}", "--detector", "yolo"], 2, "--detector must be"),
    (["edit", "{photo}", "-a", "0", "-s", "1", "-m", "{bundle}", "--render", "paint"], 2, "--render must be"),
    (["edit", "{photo}", "-a", "0", "-s", "1", "-m", "{bundle}", "--precision", "half"], 2, "unknown precision 'half'"),
    (["traverse", "{photo}", "-a", "0", "-o", "{tmp}/x.avi", "-m", "{bundle}"], 2, "unsupported output format"),
])
def test_edit_errors_are_one_line_with_exit_codes(bundle_dir, tmp_path, photo, capsys, args, code, message):
    (tmp_path / "notes.jpg").write_text("this is text, not a JPEG\n")
    subs = {"{missing}": str(tmp_path / "missing.jpg"), "{text}": str(tmp_path / "notes.jpg"),
            "{trunc}": str(truncated_copy(tmp_path / "trunc.jpg")), "{noface}": str(NO_FACE_PHOTO),
            "{photo}": str(photo), "{bundle}": str(bundle_dir)}
    argv = []
    for a in args:
        for k, v in subs.items():
            a = a.replace(k, v)
        argv.append(a.replace("{tmp}", str(tmp_path)))
    before = set(tmp_path.iterdir())
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and err.startswith("editkit: "), err
    assert set(tmp_path.iterdir()) == before  # no output, no temp files


def test_hybrid_with_few_steps_and_cnn_options(bundle_dir, photo):
    r = runner.invoke(app, ["edit", str(photo), "-a", "0", "-s", "1", "-m", str(bundle_dir), "--method", "hybrid",
                            "--steps", "2", "--face", "0", "--upsample", "1", "-o", str(photo.with_name("h.png"))])
    assert r.exit_code == 0, r.output
    assert photo.with_name("h.png").is_file()


def test_interrupt_leaves_no_partial_file(bundle_dir, photo, monkeypatch, capsys):
    from PIL import Image

    real_save = Image.Image.save

    def save_then_interrupt(self, fp, *a, **k):
        real_save(self, fp, *a, **k)  # the temp file is fully written ...
        raise KeyboardInterrupt  # ... and Ctrl-C arrives before the rename

    monkeypatch.setattr(Image.Image, "save", save_then_interrupt)
    code = main(["edit", str(photo), "-a", "0", "-s", "1", "-m", str(bundle_dir), "--method", "encoder"])
    assert code == 130 and "interrupted" in capsys.readouterr().err
    assert [p.name for p in photo.parent.iterdir()] == ["photo.jpg"]


def test_traverse_gif_mp4_grid(bundle_dir, photo):
    import imageio.v3 as iio
    from PIL import Image

    r = runner.invoke(app, ["traverse", str(photo), "--attr", "age", "--range", "3", "--frames", "4", "-m",
                            str(bundle_dir), "--method", "encoder", "--face", "0"])
    assert r.exit_code == 0, r.output
    gif = photo.with_name("photo.traverse-age.gif")
    frames = iio.imread(gif)  # transfer (default): the photo's own face at its own resolution
    assert frames.shape[0] == 6 and frames.shape[1] == frames.shape[2] > 64  # 4 frames forward, 2 back
    mp4 = photo.with_name("t.mp4")
    r = runner.invoke(app, ["traverse", str(photo), "-a", "0", "-n", "3", "-o", str(mp4), "-m", str(bundle_dir),
                            "--method", "encoder", "--face", "0"])
    assert r.exit_code == 0 and mp4.stat().st_size > 0
    grid = photo.with_name("grid.png")
    r = runner.invoke(app, ["traverse", str(photo), "-a", "0", "-a", "1", "-a", "2", "-n", "5", "-o", str(grid),
                            "-m", str(bundle_dir), "--method", "encoder", "--face", "0", "--render", "generated"])
    assert r.exit_code == 0, r.output
    assert Image.open(grid).size[1] == 3 * 18 + 2  # one row per direction
    r = runner.invoke(app, ["traverse", str(photo), "-a", "0", "-n", "3", "-o", str(grid), "-m", str(bundle_dir)])
    assert isinstance(r.exception, UsageError)


def test_directions_table_json_preview(bundle_dir, tmp_path):
    from PIL import Image

    r = runner.invoke(app, ["directions", "-m", str(bundle_dir)])
    assert r.exit_code == 0, r.output
    assert "smile" in r.output and "-3 .. +3" in r.output and "4 directions" in r.output
    r = runner.invoke(app, ["directions", "-m", str(bundle_dir), "--json"])
    rows = json.loads(r.output)
    assert [d["label"] for d in rows] == ["smile", None, "age", "agex"] and rows[2]["strength_range"] == [-3.0, 3.0]
    prev = tmp_path / "prev.png"
    r = runner.invoke(app, ["directions", "-m", str(bundle_dir), "--preview", str(prev), "--samples", "2"])
    assert r.exit_code == 0 and Image.open(prev).size[1] == 4 * 18 + 2


def test_subprocess_edit_and_bad_input(bundle_dir, photo, tmp_path):
    r = run_editkit("edit", photo, "--attr", "smile", "--strength", "2", "-o", tmp_path / "out" / "e.png",
                    "--model", bundle_dir, "--method", "encoder")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "e.png").is_file()
    shutil.copyfile(NO_FACE_PHOTO, tmp_path / "cam.jpg")
    r = run_editkit("edit", tmp_path / "cam.jpg", "--attr", "0", "--strength", "1", "--model", bundle_dir)
    assert r.returncode == 3
    assert r.stderr.strip().startswith("editkit: error: ") and "cam.jpg" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    r = run_editkit("--help")
    assert r.returncode == 0 and all(c in r.stdout for c in ("edit", "batch", "traverse", "directions", "models"))


def test_main_job_on_the_bundled_model(photo):
    """`editkit edit photo.jpg --attr 0 --strength 2` works with nothing but the package."""
    r = run_editkit("edit", photo, "--attr", "0", "--strength", "2", "--method", "encoder")
    assert r.returncode == 0, r.stderr
    assert photo.with_name("photo.edit-attr0-s2.jpg").is_file()
    r = run_editkit("models", "verify")
    assert r.returncode == 0 and "hashes match" in r.stdout
