"""Bad input, faults and signals, through the CLI (in-process and as a subprocess) and the API.

Every test here asserts the promises the README makes: exit codes, one-line messages naming the right file,
no partial or temporary files, inputs unchanged, batch reports that say what happened.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from unittest.mock import ANY

import numpy as np
import pytest
import torch

from editkit.cli import main
from editkit.errors import CheckpointError, OutputError, UsageError
from product_helpers import (EDITKIT_BIN, FACE_PHOTO, NO_FACE_PHOTO, REPO, build_tiny_bundle, copy_face,
                             mirrored_face, run_editkit, truncated_copy)


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    return build_tiny_bundle(tmp_path_factory.mktemp("rel") / "tiny")


@pytest.fixture(scope="module")
def editor(bundle_dir):
    import editkit

    return editkit.Editor(bundle_dir, method="encoder")


@pytest.fixture
def photo(tmp_path):
    return copy_face(tmp_path / "photo.jpg")


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _one_error_line(err: str, *needles: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("editkit: "), err
    for n in needles:
        assert n in lines[0], (n, err)
    assert "Traceback" not in err
    return lines[0]


def _no_temp_files(folder: Path) -> None:
    left = [p.name for p in folder.rglob("*") if ".part" in p.name or p.name.startswith(".editkit-probe")]
    assert not left, left


# ------------------------------------------------------------------------------------------ 1. corrupt weights
def _poison_safetensors(src: Path, dst: Path, key_part: str) -> str:
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(src), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    key = next(k for k in tensors if key_part in k and tensors[k].is_floating_point())
    tensors[key] = tensors[key].clone()
    tensors[key].view(-1)[0] = float("nan")
    save_file(tensors, str(dst), metadata=meta)
    return key


def test_nan_generator_is_refused_at_load_in_every_format(tmp_path, fixtures_dir, bundle_dir):
    import editkit

    # editkit safetensors
    bad = tmp_path / "gen.safetensors"
    _poison_safetensors(bundle_dir / "generator.safetensors", bad, "synthesis")
    with pytest.raises(CheckpointError, match=r"NaN/inf") as exc:
        editkit.load_generator(bad)
    assert str(bad) in str(exc.value) and "tensor 'synthesis." in str(exc.value)
    # NVIDIA pickle: patch the bytes of one float of synthesis.b4.const inside the pickle
    from editkit.checkpoints.formats import read_raw

    src = fixtures_dir / "golden/nvidia/tiny.pkl"
    t = read_raw(src).g_state["synthesis.b4.const"].contiguous()
    data = src.read_bytes()
    pattern = t.numpy().tobytes()[:64]
    assert data.count(pattern) >= 1  # G and G_ema each hold a copy: poison every copy
    pkl = tmp_path / "nan.pkl"
    pkl.write_bytes(data.replace(pattern, np.float32(np.inf).tobytes() + pattern[4:]))
    with pytest.raises(CheckpointError, match=r"'synthesis.b4.const' holds 1 NaN/inf") as exc:
        editkit.load_generator(pkl)
    assert str(pkl) in str(exc.value)
    # rosinality .pt and e4e .pt
    ck = torch.load(fixtures_dir / "golden/rosinality/tiny.pt", weights_only=True)
    g = {k: v.clone() for k, v in ck["g_ema"].items()}
    g["style.1.weight"].view(-1)[3] = float("nan")
    ros = tmp_path / "nan-rosinality.pt"
    torch.save({"g_ema": g, "latent_avg": ck.get("latent_avg")}, ros)
    with pytest.raises(CheckpointError, match=r"'mapping.fc0.weight' holds 1 NaN/inf"):
        editkit.load_generator(ros)
    e4e = tmp_path / "nan-e4e.pt"
    torch.save({"state_dict": {f"decoder.{k}": v for k, v in g.items()}, "latent_avg": ck.get("latent_avg")}, e4e)
    with pytest.raises(CheckpointError, match=r"NaN/inf") as exc:
        editkit.load_generator(e4e)
    assert str(e4e) in str(exc.value)
    # a wrong dtype (e.g. complex) is refused too
    g2 = {k: v.clone() for k, v in ck["g_ema"].items()}
    g2["style.1.bias"] = g2["style.1.bias"].to(torch.complex64)
    cpx = tmp_path / "complex.pt"
    torch.save({"g_ema": g2}, cpx)
    with pytest.raises(CheckpointError, match="unsupported dtype"):
        editkit.load_generator(cpx)


def test_nan_encoder_and_navigator_are_refused(tmp_path, bundle_dir, photo, capsys):
    enc = tmp_path / "enc.safetensors"
    _poison_safetensors(bundle_dir / "encoder.safetensors", enc, "")
    nav = tmp_path / "nav.safetensors"
    _poison_safetensors(bundle_dir / "navigator-free.safetensors", nav, "")
    out = tmp_path / "out.jpg"
    for flag, path, what in (("--encoder", enc, "encoder"), ("--navigator", nav, "navigator")):
        assert main(["edit", str(photo), "-a", "0", "-s", "1", "-m", str(bundle_dir), flag, str(path), "-M", "encoder",
                     "-o", str(out)]) == 3
        _one_error_line(capsys.readouterr().err, str(path), what, "NaN/inf")
        assert not out.exists()


def test_cli_nan_generator_exit_3_and_nothing_written(tmp_path, bundle_dir, photo, capsys):
    bad = tmp_path / "gen.safetensors"
    key = _poison_safetensors(bundle_dir / "generator.safetensors", bad, "synthesis")
    out = tmp_path / "out.jpg"
    assert main(["edit", str(photo), "-a", "0", "-s", "1", "-m", str(bundle_dir), "--generator", str(bad),
                 "-M", "encoder", "-o", str(out)]) == 3
    _one_error_line(capsys.readouterr().err, str(bad), key[2:] if key.startswith("G.") else key)
    assert not out.exists() and _files(tmp_path) == ["gen.safetensors", "photo.jpg"]


def test_non_finite_render_is_never_written(editor, photo, tmp_path, monkeypatch):
    from editkit.render import RenderError

    real = editor.G.synthesis.forward

    def nan_synthesis(ws, **kw):
        return real(ws, **kw) * float("nan")

    monkeypatch.setattr(editor.G.synthesis, "forward", nan_synthesis)
    with pytest.raises(RenderError, match="NaN/inf") as exc:
        editor.edit(photo, "smile", 1.0)
    assert "generator.safetensors" in str(exc.value)
    with pytest.raises(RenderError):
        editor.traverse(photo, "smile", 1.0, frames=3)
    assert _files(tmp_path) == ["photo.jpg"]


# ------------------------------------------------------------------------------------------ 2. batch settings
def _batch(folder, out, bundle_dir, *extra, strength="1.5"):
    return main(["batch", str(folder), "-o", str(out), "--attr", "smile", "--strength", strength, "-m",
                 str(bundle_dir), "-M", "encoder", *extra])


def test_batch_resumes_only_the_same_edit(tmp_path, bundle_dir, capsys):
    root = tmp_path / "in"
    copy_face(root / "a.jpg")
    mirrored_face(root / "b.png")
    out = tmp_path / "out"
    assert _batch(root, out, bundle_dir) == 0
    first = {n: _sha(out / n) for n in ("a.jpg", "b.png")}
    manifest = json.loads((out / "batch-manifest.json").read_text())
    s = manifest["settings"]
    assert s["edits"] == [{"direction": 0, "label": "smile", "strength": 1.5}] and s["method"] == "encoder"
    assert set(s["weights"]) == {"generator", "encoder", "navigator"} and len(s["weights"]["generator"]["sha256"]) == 64
    assert s["steps"] is None and s["detector"] == "hog" and s["crop_only"] is False  # every edit option, generically
    capsys.readouterr()
    assert _batch(root, out, bundle_dir) == 0  # same edit: everything skipped
    assert "done 0, skipped 2" in capsys.readouterr().out
    # a different edit into the same folder is refused before any work, naming what differs
    assert _batch(root, out, bundle_dir, strength="1.0") == 2
    line = _one_error_line(capsys.readouterr().err, str(out), "different edit", "strength", "--overwrite")
    assert "1.5" in line and "1.0" in line
    assert {n: _sha(out / n) for n in first} == first
    assert _batch(root, out, bundle_dir, "--steps", "7") == 2  # any recorded option counts
    capsys.readouterr()
    # --overwrite redoes it with the new settings, which are then recorded
    assert _batch(root, out, bundle_dir, "--overwrite", strength="1.0") == 0
    assert "done 2, skipped 0" in capsys.readouterr().out
    assert json.loads((out / "batch-manifest.json").read_text())["settings"]["edits"][0]["strength"] == 1.0
    assert {n: _sha(out / n) for n in first} != first


def test_batch_refuses_outputs_it_did_not_record(tmp_path, bundle_dir, capsys):
    root = tmp_path / "in"
    copy_face(root / "a.jpg")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.jpg").write_bytes(b"someone else's file")
    assert _batch(root, out, bundle_dir) == 2
    _one_error_line(capsys.readouterr().err, "not made by this batch", str(out / "a.jpg"))
    assert (out / "a.jpg").read_bytes() == b"someone else's file"


# ------------------------------------------------------------------------------------------ 3. name collisions
def test_crop_only_collisions_give_every_input_its_own_output(tmp_path, bundle_dir, capsys):
    root = tmp_path / "in"
    copy_face(root / "same.jpg")
    mirrored_face(root / "same.png")
    out = tmp_path / "out"
    assert _batch(root, out, bundle_dir, "--crop-only") == 0
    printed = capsys.readouterr().out
    assert "done 2" in printed and "same.jpg.png" in printed
    assert sorted(p.name for p in out.glob("same*")) == ["same.jpg.png", "same.png"]
    items = json.loads((out / "batch-manifest.json").read_text())["items"]
    assert {k: v["output"] for k, v in items.items()} == {"same.jpg": "same.jpg.png", "same.png": "same.png"}
    report = json.loads((out / "batch-report.json").read_text())
    assert report["done"] == 2 and report["renamed"] == {str(root / "same.jpg"): str(out / "same.jpg.png")}


def test_unresolvable_collision_is_refused_before_work(tmp_path, bundle_dir, capsys):
    root = tmp_path / "in"
    copy_face(root / "x.png")
    copy_face(root / "x.PNG")  # both keep their suffix: nothing to tell the outputs apart
    assert _batch(root, tmp_path / "o", bundle_dir, "--crop-only") == 2
    _one_error_line(capsys.readouterr().err, "collision", str(root / "x.png"), str(root / "x.PNG"))
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------------------ 4. environment
def test_output_problems_are_found_before_any_model_work(tmp_path, photo, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    missing_model = str(tmp_path / "no-such-model")  # would fail if any model were loaded first
    cases = [
        (["edit", str(photo), "-a", "0", "-s", "1", "-m", missing_model, "-o", str(blocker / "out.jpg")], 2,
         str(blocker / "out.jpg"), "is a file, not a folder"),
        (["edit", str(photo), "-a", "0", "-s", "1", "-m", missing_model, "-o", str(tmp_path / "out.xyz")], 2,
         str(tmp_path / "out.xyz"), "unsupported output format"),
        (["batch", str(photo.parent), "-o", str(blocker / "o"), "-a", "0", "-s", "1", "-m", missing_model], 2,
         str(blocker / "o"), "is a file"),
        (["batch", str(photo.parent), "-o", str(blocker), "-a", "0", "-s", "1", "-m", missing_model], 2,
         str(blocker), "not a folder"),
        (["traverse", str(photo), "-a", "0", "-m", missing_model, "-o", str(tmp_path / "t.avi")], 2, "t.avi",
         "unsupported output format"),
        (["edit", str(photo), "-a", "0", "-s", "1", "-m", missing_model, "--device", "tpu"], 2, "--device", "tpu"),
    ]
    for argv, code, path, reason in cases:
        assert main(argv) == code, argv
        _one_error_line(capsys.readouterr().err, path, reason)
    assert _files(tmp_path) == ["a-file", "photo.jpg"]


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True, reason="root ignores permissions")
def test_read_only_output_folder(tmp_path, photo, capsys):  # pragma: no cover - CI runs as a user
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert main(["edit", str(photo), "-a", "0", "-s", "1", "-o", str(ro / "x.jpg")]) == 2
        _one_error_line(capsys.readouterr().err, str(ro / "x.jpg"), "cannot write")
    finally:
        ro.chmod(0o700)


def _disk_full(monkeypatch):
    from PIL import Image

    def full(self, fp, *a, **k):
        Path(fp).write_bytes(b"partial")  # a half-written temporary file, as a full disk leaves it
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full)


def test_disk_full_names_the_real_output(tmp_path, photo, bundle_dir, monkeypatch, capsys):
    _disk_full(monkeypatch)
    out = tmp_path / "res" / "edited.jpg"
    assert main(["edit", str(photo), "-a", "0", "-s", "1", "-m", str(bundle_dir), "-M", "encoder", "-o", str(out)]) == 2
    line = _one_error_line(capsys.readouterr().err, str(out), "no space left on device")
    assert ".part" not in line and "internal error" not in line
    assert not out.exists()
    _no_temp_files(tmp_path)


def test_batch_disk_full_stops_and_still_reports(tmp_path, bundle_dir, monkeypatch, capsys):
    root = tmp_path / "in"
    copy_face(root / "a.jpg")
    mirrored_face(root / "b.png")
    out = tmp_path / "out"
    _disk_full(monkeypatch)
    assert _batch(root, out, bundle_dir) == 2
    cap = capsys.readouterr()
    assert "no space left on device" in cap.err and str(out / "a.jpg") in cap.err
    assert "report: " in cap.err  # the summary says where the report is
    report = json.loads((out / "batch-report.json").read_text())
    assert report["done"] == 0 and report["in_progress"] == 0 and report["pending"] == 2
    assert _files(out) == ["batch-manifest.json", "batch-report.csv", "batch-report.json"]


def test_batch_says_where_the_report_could_not_be_written(tmp_path, bundle_dir, monkeypatch, capsys):
    import editkit.batch as batch

    def cannot(*a, **k):
        raise OutputError("cannot write (no space left on device)", tmp_path / "out" / "batch-report.json")

    monkeypatch.setattr(batch, "write_report", cannot)
    root = tmp_path / "in"
    copy_face(root / "a.jpg")
    assert _batch(root, tmp_path / "out", bundle_dir) == 0
    assert "could not write the batch report" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------ 5. signals
def _paused(point: str, flag: Path, *argv) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", EDITKIT_TEST_PAUSE=f"{point}:{flag}")
    # a test run started in the background (nohup, `&` in a script) inherits SIGINT ignored: give the
    # worker the default disposition, as an interactive shell would
    return subprocess.Popen([str(EDITKIT_BIN), *map(str, argv)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=REPO,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _signal_when_paused(proc: subprocess.Popen, flag: Path, sig: int) -> tuple[str, str]:
    deadline = time.monotonic() + 300
    while not flag.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the worker never reached the pause point"
        time.sleep(0.02)
    proc.send_signal(sig)  # the worker is blocked at the pause point: the signal arrives there, every time
    try:
        return proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


@pytest.mark.parametrize("sig,code,word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_signal_during_edit_leaves_no_partial_file(tmp_path, bundle_dir, photo, sig, code, word):
    out = tmp_path / "out.jpg"
    flag = tmp_path / "paused"
    before = _sha(photo)
    proc = _paused("atomic-write", flag, "edit", photo, "-a", "0", "-s", "1", "-m", bundle_dir, "-M", "encoder",
                   "-o", out)
    _, err = _signal_when_paused(proc, flag, sig)
    assert proc.returncode == code, err
    _one_error_line(err, word)
    assert not out.exists() and _sha(photo) == before
    assert _files(tmp_path) == ["paused", "photo.jpg"]  # the .part file is gone


@pytest.mark.parametrize("sig,code,word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_signal_during_batch_keeps_finished_outputs_and_report(tmp_path, bundle_dir, sig, code, word):
    root = tmp_path / "in"
    for i in range(3):
        copy_face(root / f"p{i}.jpg")
    out = tmp_path / "out"
    flag = tmp_path / "paused"
    proc = _paused("batch-item", flag, "batch", root, "-o", out, "-a", "0", "-s", "1", "-m", bundle_dir, "-M",
                   "encoder")
    stdout, err = _signal_when_paused(proc, flag, sig)
    assert proc.returncode == code, err
    assert word in err and "Traceback" not in err
    assert "done 1, skipped 0" in stdout  # the summary is printed, naming the report
    assert _files(out) == ["batch-manifest.json", "batch-report.csv", "batch-report.json", "p0.jpg"]
    from PIL import Image

    Image.open(out / "p0.jpg").load()  # complete
    report = json.loads((out / "batch-report.json").read_text())
    assert (report["done"], report["pending"], report["in_progress"]) == (1, 2, 0)
    if sig == signal.SIGTERM:  # the interrupted run resumes where it stopped
        assert main(["batch", str(root), "-o", str(out), "-a", "0", "-s", "1", "-m", str(bundle_dir), "-M",
                     "encoder"]) == 0
        assert json.loads((out / "batch-report.json").read_text())["run"] == {
            **report["run"], "done": 2, "skipped": 1, "pid": os.getpid(), "faces": 2, "seconds": ANY, "faces_per_s": ANY}


# ------------------------------------------------------------------------------------------ 6. option values
def test_bad_option_values_are_usage_errors_naming_the_option(tmp_path, bundle_dir, photo, capsys):
    m = ["-m", str(bundle_dir), "-M", "encoder"]
    gif = tmp_path / "t.gif"
    cases = [
        (["traverse", str(photo), "-a", "0", "--range", "nan", "-o", str(gif), *m], "range"),
        (["traverse", str(photo), "-a", "0", "--range", "inf", "-o", str(gif), *m], "range"),
        (["traverse", str(photo), "-a", "0", "--range", "0", "-o", str(gif), *m], "--range"),
        (["traverse", str(photo), "-a", "0", "--range", "1e6", "-o", str(gif), *m], "--force"),
        (["edit", str(photo), "-a", "0", "-s", "1e6", *m], "--force"),
        (["edit", str(photo), "-a", "0", "-s", "nan", *m], "--strength"),
        (["edit", str(photo), "-a", "0", "-s", "abc", *m], "'--strength'"),
        (["edit", str(photo), "-a", "0", "-s", "1", "--device", "tpu", *m], "--device"),
        (["edit", str(photo), "-a", "0", "-s", "1", "--face", "first", *m], "--face"),
        (["edit", str(photo), "-a", "0", "-s", "1", "--method", "magic", "-m", str(bundle_dir)], "--method"),
        (["batch", str(photo.parent), "-o", str(tmp_path / "o"), "-a", "0", "-s", "1e6", *m], "--force"),
    ]
    for argv, needle in cases:
        assert main(argv) == 2, argv
        _one_error_line(capsys.readouterr().err, needle)
    assert _files(tmp_path) == ["photo.jpg"]  # nothing written, not even a batch folder


def test_strength_outside_recommended_range_warns_and_force_allows_beyond_limit(tmp_path, bundle_dir, photo, capsys):
    out = tmp_path / "o.jpg"
    # smile's recommended range is -2..+2, its hard limit 8
    assert main(["edit", str(photo), "-a", "smile", "-s", "3", "-m", str(bundle_dir), "-M", "encoder", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "editkit: warning: strength +3 for direction 0 (smile) is outside its recommended range -2..+2" in err
    assert main(["edit", str(photo), "-a", "smile", "-s", "9", "-m", str(bundle_dir), "-M", "encoder", "-o",
                 str(out), "--overwrite"]) == 2
    assert "hard limit +-8" in capsys.readouterr().err
    assert main(["edit", str(photo), "-a", "smile", "-s", "9", "-m", str(bundle_dir), "-M", "encoder", "-o",
                 str(out), "--overwrite", "--force", "--json"]) == 0
    cap = capsys.readouterr()
    assert json.loads(cap.out)["warnings"] and "warning" in cap.err
    assert main(["edit", str(photo), "-a", "smile", "-s", "3", "-m", str(bundle_dir), "-M", "encoder", "-o",
                 str(out), "--overwrite", "-q"]) == 0
    assert capsys.readouterr() == ("", "")  # --quiet: not even the warning


def test_api_errors_are_usage_errors(editor, photo):
    for faces in ("first", 1.5, True, [0, "x"], []):
        with pytest.raises(UsageError, match="faces must be"):
            editor.edit(photo, "smile", 1.0, faces=faces)
    with pytest.raises(UsageError, match="finite"):
        editor.edit(photo, "smile", float("inf"))
    with pytest.raises(UsageError, match="hard limit"):
        editor.edit(photo, "smile", 100.0)
    with pytest.warns(UserWarning, match="recommended range"):
        res = editor.edit(photo, "smile", 3.0)
    assert res.warnings and "recommended" in res.warnings[0]
    assert editor.edit(photo, "smile", 100.0, force=True).faces
    with pytest.raises(UsageError, match="finite"):
        editor.traverse(photo, "smile", float("nan"))
    import editkit

    with pytest.raises(UsageError, match="device"):
        editkit.Editor(device="tpu")


# ------------------------------------------------------------------------------------------ 7. one-line messages
def test_hybrid_edit_progress_and_vgg16_note_in_logs_and_quiet(tmp_path, bundle_dir, photo, monkeypatch):
    """Not a terminal (a log file): plain progress lines with an ETA; the VGG16 note is one line naming an
    option the command has; --quiet prints nothing at all."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no VGG16 file anywhere
    monkeypatch.delenv("EDITKIT_VGG16", raising=False)
    base = ["edit", photo, "-a", "0", "-s", "1", "-m", bundle_dir, "-M", "hybrid", "--steps", "10"]
    r = run_editkit(*base, "-o", tmp_path / "a.jpg")
    assert r.returncode == 0, r.stderr
    notes = [ln for ln in r.stderr.splitlines() if "VGG16" in ln]
    assert len(notes) == 1 and notes[0].startswith("editkit: note: ") and "--vgg16" in notes[0]
    from typer.testing import CliRunner

    from editkit.cli_app import app

    assert "--vgg16" in CliRunner().invoke(app, ["edit", "--help"]).output  # the option the note names exists
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("edit: inverting: ")]
    assert len(lines) == 10 and "ETA" in lines[0] and lines[-1].startswith("edit: inverting: 10/10 (100%)")
    assert set(r.stderr.splitlines()) == set(notes + lines)  # nothing else
    q = run_editkit(*base[:-1], "1", "-o", tmp_path / "b.jpg", "-q")
    assert q.returncode == 0 and q.stdout == "" and q.stderr == "", q.stderr


def test_foreign_weights_give_exactly_one_line(tmp_path, bundle_dir, photo):
    import pickle

    rnd = tmp_path / "random.pkl"
    rnd.write_bytes(os.urandom(3000))
    r = run_editkit("models", "add", rnd, "--kind", "encoder", env_home=tmp_path / "home")
    assert r.returncode == 3
    _one_error_line(r.stderr, str(rnd), "encoder")

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(Evil()))
    r = run_editkit("models", "add", evil, env_home=tmp_path / "home")
    assert r.returncode == 3 and "pwned" not in r.stdout
    _one_error_line(r.stderr, str(evil), "forbidden global", "system")


# ------------------------------------------------------------------------------------------ 8. --generator
def test_generator_option_replaces_only_the_generator(tmp_path, bundle_dir):
    import editkit
    from conftest import make_tiny_generator
    from editkit.checkpoints import save_network

    other = save_network(tmp_path / "other.safetensors", make_tiny_generator(seed=5))
    ed = editkit.Editor(bundle_dir, generator=other)
    assert Path(ed.paths["generator"]) == other
    assert ed.encoder is not None and ed.navigator is not None
    assert Path(ed.paths["encoder"]).parent == bundle_dir and Path(ed.paths["navigator"]).parent == bundle_dir
    alone = editkit.Editor(generator=other, navigator=bundle_dir / "navigator-free.safetensors")
    assert alone.encoder is None  # without --model the generator is used on its own


# ------------------------------------------------------------------------------------------ 9. concurrent batches
def test_two_batch_processes_share_one_output_folder(tmp_path, bundle_dir):
    root = tmp_path / "in"
    for i in range(6):
        copy_face(root / f"p{i}.jpg")
    truncated_copy(root / "q_bad.jpg")
    out = tmp_path / "out"
    cmd = [str(EDITKIT_BIN), "batch", str(root), "-o", str(out), "-a", "0", "-s", "1", "-m", str(bundle_dir),
           "-M", "encoder", "--json", "-q"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [3, 3] or sorted(p.returncode for p in procs) == [0, 3], results
    runs = [json.loads(o)["run"] for o, _ in results]
    assert sum(r["done"] for r in runs) == 6  # every photo edited exactly once between the two
    assert sum(r["failed"] for r in runs) == 1
    final = json.loads((out / "batch-report.json").read_text())  # whoever finished last: the whole folder
    assert (final["done"], final["failed"], final["pending"], final["in_progress"]) == (6, 1, 0, 0)
    assert _files(out) == sorted(["batch-manifest.json", "batch-report.csv", "batch-report.json"] +
                                 [f"p{i}.jpg" for i in range(6)])


def test_batch_respects_a_live_claim_and_takes_over_a_dead_one(tmp_path, editor):
    import socket

    from editkit.batch import run_batch

    root = tmp_path / "in"
    copy_face(root / "a.jpg")
    copy_face(root / "b.jpg")
    out = tmp_path / "out"
    s = run_batch(editor, root, out, "smile", 1.0)
    assert s.done == 2
    m = json.loads((out / "batch-manifest.json").read_text())
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        for rel, pid in (("a.jpg", sleeper.pid), ("b.jpg", 2 ** 22 + 12345)):  # live worker, dead worker
            m["items"][rel].update(status="working", pid=pid, host=socket.gethostname())
            (out / rel).unlink()
        (out / "batch-manifest.json").write_text(json.dumps(m))
        s = run_batch(editor, root, out, "smile", 1.0)
        assert (s.claimed, s.done) == (1, 1)
        assert s.report["in_progress"] == 1 and s.report["done"] == 1
        assert not (out / "a.jpg").exists() and (out / "b.jpg").exists()
    finally:
        sleeper.kill()
        sleeper.wait()


# ------------------------------------------------------------------------------------------ 10. metadata
def _with_metadata(src: Path, dst: Path) -> tuple[bytes, bytes]:
    from PIL import Image

    from editkit.photos import _insert_jpeg_app13

    xmp = (b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
           b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:dc="http://purl.org/'
           b'dc/elements/1.1/" dc:title="editkit test"/></rdf:RDF></x:xmpmeta><?xpacket end="w"?>')
    rec = b"\x1c\x02\x05" + (6).to_bytes(2, "big") + b"Title!"
    irb = b"8BIM\x04\x04\x00\x00" + len(rec).to_bytes(4, "big") + rec
    app13 = b"Photoshop 3.0\x00" + irb
    Image.open(src).save(dst, quality=95, xmp=xmp)
    _insert_jpeg_app13(dst, app13)
    return xmp, rec


def test_xmp_and_iptc_are_kept(tmp_path, editor):
    from PIL import Image, IptcImagePlugin

    src = tmp_path / "meta.jpg"
    xmp, _ = _with_metadata(FACE_PHOTO, src)
    before = _sha(src)
    out = tmp_path / "meta.out.jpg"
    editor.edit(src, "smile", 1.0).save(out)
    im = Image.open(out)
    assert im.info.get("xmp") == xmp
    assert IptcImagePlugin.getiptcinfo(im) == {(2, 5): b"Title!"}
    assert _sha(src) == before
    png = tmp_path / "meta.out.png"
    editor.edit(src, "smile", 1.0).save(png)
    assert Image.open(png).info.get("XML:com.adobe.xmp", "").encode() == xmp


def test_alpha_and_grayscale_are_kept(tmp_path, editor):
    from PIL import Image

    rgb = np.asarray(Image.open(FACE_PHOTO).convert("RGB"))
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    alpha[:40] = 0
    alpha[40:60] = 128
    rgba = tmp_path / "rgba.png"
    Image.fromarray(np.dstack([rgb, alpha])).save(rgba)
    out = tmp_path / "rgba.out.png"
    editor.edit(rgba, "smile", 1.0).save(out)
    im = Image.open(out)
    assert im.mode == "RGBA" and np.array_equal(np.asarray(im)[..., 3], alpha)
    gray = tmp_path / "gray.jpg"
    Image.fromarray(rgb).convert("L").save(gray, quality=95)
    gout = tmp_path / "gray.out.jpg"
    editor.edit(gray, "smile", 1.0).save(gout)
    assert Image.open(gout).mode == "L"


# ------------------------------------------------------------------------------------------ the bad-photo corpus
BAD_PHOTOS = {
    "missing.jpg": (None, "no such file"),
    "empty.jpg": (b"", "empty file"),
    "text.jpg": (b"hello, not an image\n", "not an image"),
    "truncated.jpg": ("truncated", "truncated"),
    "noface.jpg": ("noface", "no face"),
}


def _make_bad(tmp_path: Path, name: str) -> Path:
    content, _ = BAD_PHOTOS[name]
    p = tmp_path / name
    if content == "truncated":
        truncated_copy(p)
    elif content == "noface":
        shutil.copyfile(NO_FACE_PHOTO, p)
    elif content is not None:
        p.write_bytes(content)
    return p


@pytest.mark.parametrize("name", sorted(BAD_PHOTOS))
def test_bad_photos_cli_and_api(tmp_path, bundle_dir, editor, name, capsys):
    p = _make_bad(tmp_path, name)
    before = _sha(p) if p.exists() else None
    for cmd in (["edit", str(p), "-a", "0", "-s", "1"], ["traverse", str(p), "-a", "0", "-n", "2"],
                ["invert", str(p)]):
        assert main([*cmd, "-m", str(bundle_dir), "-M", "encoder"]) == 3, cmd
        _one_error_line(capsys.readouterr().err, str(p), BAD_PHOTOS[name][1])
    from editkit.errors import BadInputError

    with pytest.raises(BadInputError, match=BAD_PHOTOS[name][1]) as exc:
        editor.edit(p, "smile", 1.0)
    assert str(p) in str(exc.value)
    assert (_sha(p) if p.exists() else None) == before
    assert _files(tmp_path) == ([name] if before is not None else [])


def test_bad_photos_in_a_batch_subprocess(tmp_path, bundle_dir):
    root = tmp_path / "in"
    root.mkdir()
    for name in BAD_PHOTOS:
        if name != "missing.jpg":
            _make_bad(root, name)
    copy_face(root / "good.jpg")
    hashes = {p.name: _sha(p) for p in root.iterdir()}
    out = tmp_path / "out"
    r = run_editkit("batch", root, "-o", out, "-a", "smile", "-s", "1", "-m", bundle_dir, "-M", "encoder", "--json")
    assert r.returncode == 3, r.stderr
    report = json.loads(r.stdout)
    assert (report["done"], report["failed"], report["photos"]) == (1, 4, 5)
    by_name = {Path(f["path"]).name: f for f in report["failures"]}
    for name, (_, reason) in BAD_PHOTOS.items():
        if name != "missing.jpg":
            assert reason in by_name[name]["message"] and str(root / name) in by_name[name]["message"]
    assert report == json.loads((out / "batch-report.json").read_text())
    assert "Traceback" not in r.stderr and r.stderr.count("failed: ") == 4
    assert {p.name: _sha(p) for p in root.iterdir()} == hashes
    _no_temp_files(out)


# ------------------------------------------------------------------------------------------ user expectations
def test_version_and_json_outputs(tmp_path, bundle_dir, photo, capsys):
    import editkit

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"editkit {editkit.__version__}"
    assert main(["edit", str(photo), "-a", "smile", "-s", "1", "-m", str(bundle_dir), "-M", "encoder", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["edits"] == [{"direction": 0, "label": "smile", "strength": 1.0}] and Path(doc["outputs"][0]).is_file()
    assert main(["invert", str(photo), "-m", str(bundle_dir), "-M", "encoder", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["faces"][0]["psnr"] > 0 and Path(doc["outputs"]["latents"]).is_file()
    assert main(["models", "list", "--json"]) == 0
    assert any(m["name"] == "bundled" for m in json.loads(capsys.readouterr().out))


def test_quiet_everywhere_and_one_set_of_defaults():
    import typer

    from editkit.cli_app import app
    from editkit.defaults import DEFAULT_MIN_FACE_SCORE

    group = typer.main.get_command(app)

    def leaves(cmd, path):
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                yield from leaves(sub, path + [name])
        else:
            yield " ".join(path), cmd

    seen = 0
    for name, cmd in leaves(group, []):
        opts = {o: p for p in cmd.params for o in getattr(p, "opts", [])}
        assert "--quiet" in opts and "-q" in opts, name
        if "--device" in opts:
            assert opts["--device"].default == "auto", name
        if "--min-score" in opts:
            assert opts["--min-score"].default == DEFAULT_MIN_FACE_SCORE, name
        if "--method" in opts:
            assert "-M" in opts["--method"].opts, name
        seen += 1
    assert seen >= 15


def test_progress_plain_lines_with_eta():
    import io

    from editkit.console import Progress

    clock = iter(float(t) for t in range(0, 1000))
    buf = io.StringIO()
    with Progress("invert", stream=buf, clock=lambda: next(clock)) as bar:
        for step in range(1, 21):
            bar.update(step, 20, f"loss {1 / step:.2f}")
    lines = buf.getvalue().splitlines()
    assert len(lines) == 11  # the start, then one line per tenth of the work, however many steps
    assert lines[0].startswith("invert: 1/20 (5%), ") and ", ETA " in lines[0]
    assert lines[1].startswith("invert: 2/20 (10%), 2 s, ETA 18 s, loss 0.50")
    assert lines[-1].startswith("invert: 20/20 (100%)") and "ETA" not in lines[-1]


def test_align_and_edit_number_faces_the_same(tmp_path, editor):
    from PIL import Image

    a = np.asarray(Image.open(FACE_PHOTO).convert("RGB"))
    two = tmp_path / "two.png"
    Image.fromarray(np.concatenate([a, a[:, ::-1]], axis=1)).save(two)
    assert main(["align", str(two), "-o", str(tmp_path / "al"), "-t", "utkface"]) == 0
    aligned = json.loads((tmp_path / "al" / "alignment.json").read_text())["photos"][0]["faces"]
    faces = editor.align(two)
    assert len(aligned) == len(faces) == 2
    for f, d in zip(faces, aligned):
        assert f.index == d["index"] and np.allclose(f.box, d["box"])
    assert faces[0].box[0] < faces[1].box[0]  # left to right


def test_readme_examples_use_directions_that_exist():
    import re

    import editkit

    labels = {lab for lab in editkit.Editor().navigator.labels if lab}
    text = (REPO / "README.md").read_text()
    lines = [ln for ln in text.splitlines() if "editkit edit" in ln or "editkit traverse" in ln or "editkit batch" in ln]
    assert lines
    for ln in lines:
        if "--model" in ln:
            continue  # examples for other models
        for name in re.findall(r"--attr (\S+)", ln):
            if not name.lstrip("-").isdigit():
                assert name in labels, (name, ln)
        out = re.search(r"-o (\S+)\.(gif|png|jpg|mp4)", ln)
        if out:
            named = [lab for lab in labels if lab in Path(out.group(1)).name]
            attrs = re.findall(r"--attr (\S+)", ln)
            assert all(n in attrs for n in named), ("the file name promises a direction not used", ln)


def test_official_weights_example_missing_file_is_one_line(tmp_path, photo):
    import sys

    r = subprocess.run([sys.executable, str(REPO / "examples/official_weights.py"), str(photo), "--generator",
                        str(tmp_path / "ffhq.pkl"), "--navigator", str(tmp_path / "nav.safetensors")],
                       capture_output=True, text=True, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert r.returncode in (2, 3)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(tmp_path / "ffhq.pkl") in lines[0] and "Traceback" not in r.stderr


def test_readme_promises_each_name_a_test():
    import re

    text = (REPO / "README.md").read_text()
    section = text.split("## Reliability promises", 1)[1].split("\n## ", 1)[0]
    names = set(re.findall(r"`(test_[a-z0-9_]+)`", section))
    assert len(names) >= 10
    defined = set()
    for f in (REPO / "tests").glob("test_*.py"):
        defined |= set(re.findall(r"^def (test_[a-z0-9_]+)", f.read_text(), flags=re.M))
    assert names <= defined, names - defined
    from editkit import cli

    for code in (0, 1, 2, 3, 130, cli.EXIT_TERMINATED):
        assert f"| {code} |" in section, code
