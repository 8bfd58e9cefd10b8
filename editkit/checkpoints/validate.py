"""Checks on every tensor loaded from a weights file: a real tensor, a numeric dtype, the expected shape, finite.

Used by every loader (generator/discriminator in all formats, encoders, navigators) so that a damaged
file fails at load time with one line naming the file and the tensor, instead of rendering black faces.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch

from ..errors import CheckpointError

_DTYPES = {torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int8, torch.uint8, torch.int16,
           torch.int32, torch.int64, torch.bool}


def check_tensors(tensors: Mapping[str, object], path: str | Path | None, what: str = "weights",
                  expected: Mapping[str, torch.Tensor | tuple] | None = None) -> None:
    """Raise :class:`CheckpointError` (exit 3) for the first tensor that is not a tensor, has an unsupported
    dtype, a shape different from ``expected[name]`` (a tensor or a shape tuple), or holds NaN/inf."""
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise CheckpointError(f"{what} entry '{name}' is a {type(t).__name__}, not a tensor", path)
        if t.dtype not in _DTYPES:
            raise CheckpointError(f"{what} tensor '{name}' has unsupported dtype {t.dtype}", path)
        if expected is not None and name in expected:
            want = expected[name]
            want_shape = tuple(want.shape) if isinstance(want, torch.Tensor) else tuple(want)
            if tuple(t.shape) != want_shape:
                raise CheckpointError(f"{what} tensor '{name}' has shape {tuple(t.shape)}, expected {want_shape}", path)
        if t.is_floating_point() and t.numel() and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise CheckpointError(f"{what} tensor '{name}' holds {bad} NaN/inf value(s) (damaged file)", path)


def check_module(module: torch.nn.Module, path: str | Path | None, what: str = "weights") -> None:
    """:func:`check_tensors` on a built module's parameters and buffers (after it loaded its weights)."""
    check_tensors(dict(module.state_dict()), path, what)


__all__ = ["check_module", "check_tensors"]
