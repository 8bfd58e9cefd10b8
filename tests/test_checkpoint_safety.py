"""Checkpoints can never run code; corrupt or wrong files give a one-line error naming the file."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
import zipfile

import pytest
import torch

import editkit
from editkit.errors import BadInputError, CheckpointError, UnsafeCheckpointError


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _raw_global_pickle(module, name, arg):
    return f"c{module}\n{name}\n(S'{arg}'\ntR.".encode()


@pytest.mark.parametrize("module,name", [("os", "system"), ("builtins", "eval"), ("subprocess", "Popen"),
                                         ("posix", "system"), ("torch_utils.persistence", "exec")])
def test_forbidden_globals_are_refused_and_not_run(tmp_path, module, name):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(_raw_global_pickle(module, name, f"touch {marker}" if name != "eval" else
                                        f"open('{marker}','w').close()"))
    with pytest.raises(UnsafeCheckpointError) as exc:
        editkit.load_generator(path)
    assert f"'{module}.{name}'" in str(exc.value) and str(path) in str(exc.value)
    assert not marker.exists()


def test_crafted_network_pickle_with_reduce_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "network-snapshot-000000.pkl"
    path.write_bytes(pickle.dumps({"G_ema": _Evil(marker), "G": None}))
    with pytest.raises(UnsafeCheckpointError, match="forbidden global"):
        editkit.load_network(path)
    assert not marker.exists()


def test_malicious_tensor_record_inside_persistent_object_is_refused(tmp_path):
    """NVIDIA pickles store tensors as nested torch.save bytes: those are loaded with weights_only too."""
    marker = tmp_path / "pwned"
    inner = pickle.dumps(_Evil(marker), protocol=2)
    payload = (b"\x80\x02ctorch.storage\n_load_from_bytes\nq\x00C" + len(inner).to_bytes(1, "little") + inner
               + b"\x85R.") if len(inner) < 256 else None
    assert payload is not None
    path = tmp_path / "evil.pkl"
    path.write_bytes(payload)
    with pytest.raises(UnsafeCheckpointError):
        editkit.load_network(path)
    assert not marker.exists()


def test_malicious_torch_zip_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "stylegan2.pt"
    torch.save({"g_ema": _Evil(marker)}, path)
    with pytest.raises(UnsafeCheckpointError):
        editkit.load_generator(path)
    assert not marker.exists()


@pytest.mark.parametrize("case", ["empty", "random", "truncated-pkl", "truncated-pt", "png", "text", "missing",
                                  "wrong-pickle", "wrong-pt", "folder"])
def test_corrupt_and_wrong_files_give_clear_errors(tmp_path, fixtures_dir, case):
    path = tmp_path / f"{case}.pkl"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "random":
        path.write_bytes(os.urandom(4096))
    elif case == "truncated-pkl":
        data = (fixtures_dir / "golden/nvidia/tiny.pkl").read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif case == "truncated-pt":
        path = tmp_path / "t.pt"
        data = (fixtures_dir / "golden/rosinality/tiny.pt").read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif case == "png":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(100))
    elif case == "text":
        path.write_text("hello, I am not a network\n")
    elif case == "missing":
        path = tmp_path / "nope.pkl"
    elif case == "wrong-pickle":
        path.write_bytes(pickle.dumps({"a": [1, 2, 3]}))
    elif case == "wrong-pt":
        path = tmp_path / "w.pt"
        torch.save({"model": {"w": torch.zeros(2)}}, path)
    elif case == "folder":
        path = tmp_path / "dir"
        path.mkdir()
    with pytest.raises(BadInputError) as exc:
        editkit.load_generator(path)
    msg = str(exc.value)
    assert str(path) in msg and "\n" not in msg
    if case not in ("missing", "folder"):
        assert isinstance(exc.value, CheckpointError) or case == "empty"


def test_cli_convert_and_errors(tmp_path, fixtures_dir):
    exe = [sys.executable, "-m", "editkit.cli"]
    out = tmp_path / "tiny.safetensors"
    r = subprocess.run(exe + ["models", "convert", str(fixtures_dir / "golden/nvidia/tiny.pkl"), str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert editkit.load_generator(out).num_ws == 8
    # no overwrite without --overwrite, and the existing file is untouched
    before = out.read_bytes()
    r = subprocess.run(exe + ["models", "convert", str(fixtures_dir / "golden/nvidia/tiny.pkl"), str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "exists" in r.stderr and out.read_bytes() == before
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(_raw_global_pickle("os", "system", f"touch {tmp_path / 'pwned'}"))
    r = subprocess.run(exe + ["models", "convert", str(bad), str(tmp_path / "x.safetensors")], capture_output=True, text=True)
    assert r.returncode == 3 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "os.system" in r.stderr and not (tmp_path / "pwned").exists() and not (tmp_path / "x.safetensors").exists()


def test_legacy_tensorflow_pickle_message(tmp_path):
    path = tmp_path / "stylegan2-ffhq-config-f.pkl"
    path.write_bytes(b"\x80\x02cdnnlib.tflib.network\nNetwork\nq\x00)\x81q\x01.")
    with pytest.raises(CheckpointError, match="TensorFlow"):
        editkit.load_generator(path)


def test_zip_that_is_not_torch(tmp_path):
    path = tmp_path / "a.pt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(CheckpointError):
        editkit.load_generator(path)
