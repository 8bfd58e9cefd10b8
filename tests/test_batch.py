"""`editkit batch`: a folder with good photos, a photo with no face, a truncated file and a text file."""
from __future__ import annotations

import csv
import json
import shutil

import pytest

from editkit.batch import in_shard, iter_photos, parse_shard, run_batch
from editkit.cli import main
from editkit.errors import UsageError
from product_helpers import NO_FACE_PHOTO, build_tiny_bundle, copy_face, mirrored_face, run_editkit, truncated_copy


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    return build_tiny_bundle(tmp_path_factory.mktemp("batch") / "tiny")


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "in"
    copy_face(root / "a_good.jpg")
    mirrored_face(root / "sub" / "b_good.png")
    shutil.copyfile(NO_FACE_PHOTO, root / "sub" / "c_noface.jpg")
    truncated_copy(root / "d_truncated.jpg")
    (root / "e_text.jpg").write_text("not an image at all\n")
    (root / "notes.txt").write_text("ignored: not a photo suffix\n")
    (root / ".hidden.jpg").write_text("hidden files are skipped\n")
    return root


def _run(folder, out, bundle_dir, *extra):
    return main(["batch", str(folder), "-o", str(out), "--attr", "smile", "--strength", "1.5", "-m", str(bundle_dir),
                 "--method", "encoder", "--face", "all", *extra])


def test_batch_goes_on_past_bad_files_and_reports_them(folder, tmp_path, bundle_dir, capsys):
    out = tmp_path / "out"
    assert _run(folder, out, bundle_dir) == 3  # some photos failed
    printed = capsys.readouterr()
    assert "done 2, skipped 0 (already finished), failed 3" in printed.out
    assert (out / "a_good.jpg").is_file() and (out / "sub" / "b_good.png").is_file()
    report = json.loads((out / "batch-report.json").read_text())
    assert (report["done"], report["failed"], report["run"]["skipped"]) == (2, 3, 0) and report["faces"] >= 2
    assert report["photos"] == 5 and report["pending"] == 0 and report["settings"]["edits"][0]["label"] == "smile"
    by_name = {f["path"].split("/")[-1]: f for f in report["failures"]}
    assert set(by_name) == {"c_noface.jpg", "d_truncated.jpg", "e_text.jpg"}
    assert by_name["c_noface.jpg"]["error"] == "NoFaceError"
    assert "truncated" in by_name["d_truncated.jpg"]["message"] and "not an image" in by_name["e_text.jpg"]["message"]
    rows = list(csv.DictReader((out / "batch-report.csv").open()))
    assert sorted(r["path"].split("/")[-1] for r in rows) == sorted(by_name)
    # only final outputs and reports: no temp files, nothing for the bad inputs
    names = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert names == ["a_good.jpg", "batch-manifest.json", "batch-report.csv", "batch-report.json", "sub/b_good.png"]
    # the inputs are untouched
    assert (folder / "e_text.jpg").read_text() == "not an image at all\n"

    # resumable: a second run skips finished photos; a deleted output is redone
    (out / "a_good.jpg").unlink()
    mtime = (out / "sub" / "b_good.png").stat().st_mtime_ns
    assert _run(folder, out, bundle_dir) == 3
    assert "done 1, skipped 1 (already finished), failed 3" in capsys.readouterr().out
    assert (out / "sub" / "b_good.png").stat().st_mtime_ns == mtime and (out / "a_good.jpg").is_file()


def test_batch_all_good_exit_zero_and_crop_only(tmp_path, bundle_dir, capsys):
    from PIL import Image

    root = tmp_path / "in"
    copy_face(root / "x.jpg")
    out = tmp_path / "crops"
    assert _run(root, out, bundle_dir, "--crop-only", "--render", "generated") == 0
    assert Image.open(out / "x.png").size[1] in (16, 20)  # the generator's crop
    assert _run(root, out, bundle_dir, "--crop-only", "--overwrite") == 0
    assert Image.open(out / "x.png").size[1] > 64  # transfer: the photo's face at its own resolution
    assert json.loads((out / "batch-report.json").read_text())["failures"] == []


def test_shards_partition_the_folder(folder):
    every = sorted(str(p) for p in iter_photos(folder))
    assert [p.split("/")[-1] for p in every] == ["a_good.jpg", "d_truncated.jpg", "e_text.jpg", "b_good.png",
                                                 "c_noface.jpg"]
    for n in (2, 3):
        parts = [sorted(str(p) for p in iter_photos(folder, (i, n))) for i in range(n)]
        assert sorted(sum(parts, [])) == every  # disjoint and complete
        assert sum(len(p) for p in parts) == len(every)
    # an output folder inside the input folder is never read back as input
    assert [p.name for p in iter_photos(folder, exclude=folder / "sub")] == ["a_good.jpg", "d_truncated.jpg",
                                                                           "e_text.jpg"]
    assert in_shard("a/b.jpg", (0, 1))
    assert parse_shard("1/4") == (1, 4) and parse_shard(None) == (0, 1)
    for bad in ("4/4", "x", "1/0", "-1/2"):
        with pytest.raises(UsageError, match="--shard"):
            parse_shard(bad)


def test_sharded_runs_cover_the_folder_once(folder, tmp_path, bundle_dir, capsys):
    out = tmp_path / "out"
    codes = [_run(folder, out, bundle_dir, "--shard", f"{i}/2") for i in range(2)]
    assert set(codes) <= {0, 3}
    reports = [json.loads((out / f"batch-report.{i}-of-2.json").read_text()) for i in range(2)]
    assert sum(r["done"] for r in reports) == 2 and sum(r["failed"] for r in reports) == 3


def test_interrupted_batch_keeps_finished_outputs_and_report(folder, tmp_path, bundle_dir):
    import editkit

    ed = editkit.Editor(bundle_dir, method="encoder")
    real_edit = ed.edit
    seen = []

    def edit_then_interrupt(photo, *a, **k):
        seen.append(photo)
        if len(seen) == 2:
            raise KeyboardInterrupt
        return real_edit(photo, *a, **k)

    ed.edit = edit_then_interrupt
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run_batch(ed, folder, out, "smile", 1.0)
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == ["a_good.jpg", "batch-manifest.json", "batch-report.csv", "batch-report.json"]
    assert json.loads((out / "batch-report.json").read_text())["done"] == 1


def test_batch_usage_errors(folder, tmp_path, bundle_dir, capsys):
    assert main(["batch", str(folder), "-o", str(folder), "-a", "0", "-s", "1", "-m", str(bundle_dir)]) == 2
    assert "must differ from the input folder" in capsys.readouterr().err
    assert main(["batch", str(tmp_path / "nope"), "-o", str(tmp_path / "o"), "-a", "0", "-s", "1"]) == 3
    assert main(["batch", str(folder), "-o", str(tmp_path / "o"), "-a", "0", "-s", "1", "--shard", "2/2"]) == 2
    assert main(["batch", str(folder), "-o", str(tmp_path / "o2"), "-a", "zzz", "-s", "1", "-m", str(bundle_dir)]) == 2
    assert not (tmp_path / "o2").exists()  # bad arguments are found before anything is written


def test_batch_subprocess(folder, tmp_path, bundle_dir):
    out = tmp_path / "out"
    r = run_editkit("batch", folder, "-o", out, "-a", "0", "-s", "1", "-m", bundle_dir, "--method", "encoder")
    assert r.returncode == 3, r.stderr
    assert "done 2, skipped 0 (already finished), failed 3" in r.stdout
    assert "failed: " in r.stderr and "Traceback" not in r.stderr
    assert (out / "batch-report.csv").is_file()
