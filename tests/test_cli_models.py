"""`editkit models list|add|info|verify|download|remove` and the registry behind them."""
from __future__ import annotations

import json
import urllib.error

import pytest
from typer.testing import CliRunner

from editkit import registry
from editkit.cli import main
from editkit.cli_app import app
from editkit.errors import CheckpointError, MissingWeightsError, UsageError
from product_helpers import build_tiny_bundle, copy_face, run_editkit

runner = CliRunner()


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    return build_tiny_bundle(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    h = tmp_path / "home"
    monkeypatch.setenv("EDITKIT_HOME", str(h))
    return h


def test_home_follows_the_environment(home, monkeypatch):
    assert registry.editkit_home() == home
    monkeypatch.delenv("EDITKIT_HOME")
    assert str(registry.editkit_home()).endswith(".cache/editkit")


def test_list_shows_bundled_and_official(home):
    r = runner.invoke(app, ["models", "list", "--json"])
    assert r.exit_code == 0, r.output
    rows = {row["name"]: row for row in json.loads(r.output)}
    assert rows["bundled"]["type"] == "bundle"
    assert rows["ffhq-512"]["status"] == "not downloaded" and rows["ffhq-512"]["where"].endswith(
        "ffhq-res512-mirror-stylegan2-noaug.pkl")
    assert rows["e4e-ffhq"]["type"] == "encoder"
    assert not home.exists()  # listing writes nothing


def test_add_bundle_weights_and_use_them(bundle_dir, home, tmp_path, capsys):
    r = runner.invoke(app, ["models", "add", str(bundle_dir)])
    assert r.exit_code == 0 and "registered bundle 'tiny'" in r.output
    r = runner.invoke(app, ["models", "add", str(bundle_dir / "generator.safetensors"), "--name", "g16"])
    assert r.exit_code == 0 and "registered generator 'g16'" in r.output
    r = runner.invoke(app, ["models", "add", str(bundle_dir / "navigator-free.safetensors"), "--name", "nav16"])
    assert r.exit_code == 0 and "registered navigator 'nav16'" in r.output
    reg = json.loads((home / "registry.json").read_text())
    assert reg["bundles"]["tiny"]["path"] == str(bundle_dir)
    assert reg["weights"]["g16"]["sha256"] == registry.sha256_file(bundle_dir / "generator.safetensors")
    # the same name twice needs --overwrite
    assert main(["models", "add", str(bundle_dir), "--name", "g16"]) == 2
    assert "already registered" in capsys.readouterr().err
    # a bundle composed of registered files, then used by name
    r = runner.invoke(app, ["models", "add", "--name", "mix", "--generator", "g16", "--navigator", "nav16",
                            "--alignment", "utkface"])
    assert r.exit_code == 0, r.output
    b = registry.resolve_bundle("mix")
    assert b.root == home / "bundles" / "mix" and b.alignment == "utkface" and b.encoder is None
    photo = copy_face(tmp_path / "p.jpg")
    assert main(["edit", str(photo), "-a", "smile", "-s", "1", "-m", "tiny", "--method", "encoder"]) == 0
    assert (tmp_path / "p.edit-smile-s1.jpg").is_file()
    # a registered generator name works as --model, with the navigator given separately
    r = runner.invoke(app, ["edit", str(photo), "-a", "0", "-s", "1", "-m", "g16", "--navigator", "nav16",
                            "--method", "optimize", "--steps", "2", "--face", "0", "-o", str(tmp_path / "g.png")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["edit", str(photo), "-a", "0", "-s", "1", "-m", "g16", "-o", str(tmp_path / "h.png")])
    assert isinstance(r.exception, UsageError) and "no navigator" in str(r.exception)
    info = json.loads(runner.invoke(app, ["models", "info", "mix"]).output)
    assert info["type"] == "bundle" and info["generator"] == str(bundle_dir / "generator.safetensors")
    assert json.loads(runner.invoke(app, ["models", "info", "g16"]).output)["kind"] == "generator"
    rows = {row["name"]: row for row in json.loads(runner.invoke(app, ["models", "list", "--json"]).output)}
    assert rows["mix"]["status"] == "registered" and rows["g16"]["type"] == "generator"
    # a bundle name stands for its files wherever one file is expected
    assert registry.resolve_weights("tiny", "generator") == bundle_dir / "generator.safetensors"
    assert registry.resolve_weights(str(bundle_dir), "navigator") == bundle_dir / "navigator-free.safetensors"
    with pytest.raises(UsageError, match="has no encoder"):
        registry.resolve_weights("mix", "encoder")
    assert runner.invoke(app, ["models", "remove", "mix"]).exit_code == 0
    assert "mix" not in registry.read_registry()["bundles"]


def test_add_refuses_files_that_do_not_load(tmp_path, capsys):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00not a checkpoint" * 100)
    assert main(["models", "add", str(junk)]) == 3
    err = capsys.readouterr().err
    assert "junk.pt" in err and "does not load" in err and len(err.strip().splitlines()) == 1
    assert main(["models", "add", str(tmp_path / "missing.pkl")]) == 3
    assert main(["models", "add", str(junk), "--kind", "sensor"]) == 2


def test_official_name_checks_the_known_hash(bundle_dir, monkeypatch):
    with pytest.raises(CheckpointError, match="does not start with 7be5be79"):
        registry.add_weights(bundle_dir / "generator.safetensors", name="alexnet", kind="generator")


def test_verify_detects_changed_files(bundle_dir, tmp_path, capsys):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(bundle_dir, copy)
    r = runner.invoke(app, ["models", "verify", str(copy)])
    assert r.exit_code == 0 and "hashes match" in r.output
    data = bytearray((copy / "generator.safetensors").read_bytes())
    data[-5] ^= 0x55
    (copy / "generator.safetensors").write_bytes(bytes(data))
    assert main(["models", "verify", str(copy)]) == 3
    assert "SHA-256 mismatch" in capsys.readouterr().err


def test_download_offline_is_a_clear_one_line_error(monkeypatch, home, capsys):
    def offline(*a, **k):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(registry.urllib.request, "urlopen", offline)
    assert main(["models", "download", "ffhq-512", "--timeout", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "ffhq-res512-mirror-stylegan2-noaug.pkl" in err and "editkit models add PATH --name ffhq-512" in err
    assert not (home / "weights").exists() or not any((home / "weights").iterdir())
    with pytest.raises(MissingWeightsError, match="in a browser"):
        registry.download("e4e-ffhq")  # Google Drive: no scriptable link
    assert main(["models", "download", "nope"]) == 2
    with pytest.raises(MissingWeightsError, match="editkit models add"):
        registry.resolve_weights("ffhq-1024")  # an official name that is not registered yet


def test_download_records_the_hash_and_registers(monkeypatch, home, bundle_dir):
    src = bundle_dir / "generator.safetensors"
    fake = registry.OfficialFile("ffhq-256", "generator", src.as_uri(), "ffhq-256.safetensors", "test", "test")
    monkeypatch.setitem(registry.OFFICIAL, "ffhq-256", fake)
    r = registry.download("ffhq-256")
    assert r["sha256"] == registry.sha256_file(src) and r["sha256_recorded_on_first_download"]
    assert (home / "weights" / "ffhq-256.safetensors").read_bytes() == src.read_bytes()
    assert registry.resolve_weights("ffhq-256", "generator") == home / "weights" / "ffhq-256.safetensors"
    bad = registry.OfficialFile("ffhq-256", "generator", src.as_uri(), "x.safetensors", "t", "t", sha256="0" * 64)
    monkeypatch.setitem(registry.OFFICIAL, "ffhq-256", bad)
    with pytest.raises(CheckpointError, match="differs from the official"):
        registry.download("ffhq-256")
    assert not (home / "weights" / "x.safetensors").exists()  # nothing left behind


def test_models_subprocess(home, bundle_dir):
    r = run_editkit("models", "add", bundle_dir, "--name", "sub", env_home=home)
    assert r.returncode == 0, r.stderr
    assert "sub" in registry.read_registry()["bundles"]
    r = run_editkit("models", "download", "e4e-ffhq", env_home=home)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "e4e_ffhq_encode.pt" in r.stderr
