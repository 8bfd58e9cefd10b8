"""Inference precision of the generator: exact float32, or bfloat16 where the hardware runs it natively.

``float32`` is the exact mode (the golden tests hold to 1e-5). ``bf16`` runs every synthesis block's
convolutions and activations in bfloat16 (through oneDNN on the CPU) while the mapping network, the
styles, the demodulation coefficients and the RGB accumulation stay float32; its output is checked
against float32 (PSNR >= 40 dB, ``tests/test_precision.py``). ``auto`` picks bf16 only where it is
native on a CPU with AVX-512 BF16 or AMX (detected from the CPU flags and oneDNN, never assumed);
everywhere else it is float32. On CUDA, ``auto`` is float32 too: there the generator is a small part of
an edit's time, and ``bf16`` can be asked for explicitly (``benchmarks/gpu_suite.py`` times both).
"""
from __future__ import annotations

import functools
from pathlib import Path

import torch

PRECISIONS = ("auto", "float32", "bf16")
#: /proc/cpuinfo flags of CPUs that run bfloat16 dot products natively (x86: AVX-512 BF16, AMX; Arm: BF16)
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none, e.g. macOS/Windows)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key = line.split(":", 1)[0].strip().lower()
        if key in ("flags", "features"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def _onednn_bf16() -> bool:
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cpu_bf16_supported() -> bool:
    """True when this CPU runs bfloat16 convolutions natively through oneDNN.

    Both must agree: oneDNN's own check (which also accepts plain AVX-512, where bf16 is emulated and
    no faster than float32) and a native bf16 flag of the CPU.
    """
    return _onednn_bf16() and bool(BF16_CPU_FLAGS & cpu_flags())


def resolve_precision(precision: str, device: str | torch.device = "cpu") -> str:
    """``auto``/``float32``/``bf16`` -> the mode to use on ``device`` (``float32`` or ``bf16``)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision '{precision}' (choose from {', '.join(PRECISIONS)})")
    if precision != "auto":
        return precision
    dev = torch.device(device)
    if dev.type == "cpu":
        return "bf16" if cpu_bf16_supported() else "float32"
    return "float32"


def apply_precision(G: torch.nn.Module, precision: str = "auto") -> str:
    """Set generator ``G``'s inference precision (``auto`` resolved for G's device); returns the mode used.

    Only synthesis without autograd changes (see ``Generator.set_inference_precision``).
    """
    device = next(G.parameters()).device
    mode = resolve_precision(precision, device)
    G.set_inference_precision(torch.bfloat16 if mode == "bf16" else None)
    return mode
