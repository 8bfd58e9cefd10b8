"""The side-by-side generator benchmark's import of a user's NVIDIA checkout, and the GPU suite's CPU check."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_test_bench_{name}", BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_reference_must_be_a_stylegan2_ada_checkout(tmp_path):
    gen = _load("generator")
    with pytest.raises(SystemExit, match="not a checkout of NVlabs/stylegan2-ada-pytorch"):
        gen._import_official(tmp_path)


def test_reference_import_stubs_optional_modules(tmp_path, monkeypatch):
    """A checkout whose code imports `requests` and `distutils.util` (as dnnlib does) imports without them."""
    (tmp_path / "torch_utils").mkdir()
    (tmp_path / "training").mkdir()
    (tmp_path / "training" / "__init__.py").write_text("")
    (tmp_path / "training" / "networks.py").write_text(
        "import requests\nfrom distutils.util import strtobool\nSTRICT = bool(strtobool('yes'))\n")
    gen = _load("generator")
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    for name in ("training", "training.networks"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    try:
        networks = gen._import_official(tmp_path)
        assert networks.STRICT is True
        assert Path(networks.__file__).resolve() == (tmp_path / "training" / "networks.py").resolve()
    finally:
        for name in set(sys.modules) - before:
            del sys.modules[name]


def test_config_is_the_official_one():
    gen = _load("generator")
    assert gen.config(256)["channel_base"] == 16384 and gen.config(1024)["channel_base"] == 32768
    assert all(gen.config(r)[k] == v for r in (256, 1024)
               for k, v in dict(conv_clamp=256, num_fp16_res=4, mapping_layers=8, channel_max=512).items())


@pytest.mark.slow  # a few minutes on 2 loaded cores: every part of the GPU suite at tiny size
def test_gpu_suite_tiny_runs_end_to_end():
    out = subprocess.run([sys.executable, str(BENCH / "gpu_suite.py"), "--tiny", "--budget-s", "1e9"],
                         capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stderr[-2000:]
    table = out.stdout.split("| part |", 1)[1]
    for part in ("generator", "navigator", "trainer", "edit"):
        assert f"| {part} |" in table
    assert "skipped" not in table and "failed" not in table
