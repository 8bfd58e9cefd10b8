"""An allow-listed unpickler for NVIDIA network pickles that never runs code from the file.

NVIDIA's ``torch_utils.persistence`` stores each network as the *source code* of its module plus
the object's state, and rebuilds it by ``exec``-ing that source. Here the rebuild function is
replaced by one that returns the state untouched, tensors are rebuilt through
``torch.load(weights_only=True)``, and every other global is refused by name.
"""
from __future__ import annotations

import collections
import io
import pickle
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import CheckpointError, UnsafeCheckpointError

try:  # numpy >= 2
    from numpy._core import multiarray as _multiarray
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray


@dataclass
class PersistentObject:
    """What a persistent NVIDIA object holds: its class name, its ``__dict__`` and its source (never run)."""

    class_name: str
    state: dict
    module_src_len: int = 0


@dataclass
class PlainObject:
    """A non-persistent object (e.g. a ``dnnlib.EasyDict`` or a stock torch module) kept as data."""

    class_name: str
    args: tuple = ()
    state: Any = field(default=None)

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _reconstruct_persistent(meta: dict) -> PersistentObject:
    if not isinstance(meta, dict) or meta.get("type") != "class" or "state" not in meta:
        raise UnsafeCheckpointError("malformed persistent object record")
    return PersistentObject(str(meta.get("class_name")), meta["state"], len(meta.get("module_src") or ""))


def _load_from_bytes(data: bytes) -> Any:
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UnsafeCheckpointError(f"embedded tensor record refused by the safe loader ({exc})".splitlines()[0]) from None


def _plain_factory(qualname: str):
    class _Stub(PlainObject):
        def __init__(self, *args, **kwargs):  # noqa: D401 - called by NEWOBJ/REDUCE
            super().__init__(qualname, args, kwargs or None)

        def __new__(cls, *args, **kwargs):
            obj = object.__new__(cls)
            PlainObject.__init__(obj, qualname, args, None)
            return obj

    _Stub.__name__ = qualname.rsplit(".", 1)[-1]
    return _Stub


_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_from_bytes,
    ("torch", "Size"): torch.Size,
    ("torch", "device"): torch.device,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent,
    ("numpy", "dtype"): np.dtype,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy.core.multiarray", "scalar"): _multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): _multiarray.scalar,
    ("numpy.core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _multiarray._reconstruct,
}


class EasyDict(dict):
    """Stand-in for ``dnnlib.EasyDict``: a plain dict (attribute state is ignored)."""

    def __setstate__(self, state: Any) -> None:
        pass


_ALLOWED[("dnnlib.util", "EasyDict")] = EasyDict
# Stock torch modules carry only data: rebuilt as inert stubs, walked like persistent objects.
_STUB_PREFIXES = ("torch.nn.modules.",)


class SafeUnpickler(pickle.Unpickler):
    """Unpickler that resolves only allow-listed globals; anything else raises before it can run."""

    def find_class(self, module: str, name: str) -> Any:
        fn = _ALLOWED.get((module, name))
        if fn is not None:
            return fn
        qualname = f"{module}.{name}"
        if qualname.startswith(_STUB_PREFIXES):
            return _plain_factory(qualname)
        if module.startswith("dnnlib.tflib"):
            raise CheckpointError("legacy TensorFlow StyleGAN2 pickle: not supported; use the stylegan2-ada-pytorch "
                                  "pickles (e.g. ffhq.pkl) or a rosinality .pt conversion")
        raise UnsafeCheckpointError(f"refusing to load: the pickle references the forbidden global '{qualname}'")


def safe_load_pickle(fileobj) -> Any:
    """Unpickle the first object of ``fileobj`` with :class:`SafeUnpickler`."""
    return SafeUnpickler(fileobj).load()


def module_state_dict(obj: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    """Flatten a reconstructed module (PersistentObject/PlainObject) into a state dict."""
    state = obj.state if isinstance(obj, (PersistentObject, PlainObject)) else obj
    if not isinstance(state, dict):
        raise CheckpointError(f"unexpected module record for {prefix or 'network'}")
    out: dict[str, torch.Tensor] = {}
    for key, value in (state.get("_parameters") or {}).items():
        if value is not None:
            out[prefix + key] = value.detach() if isinstance(value, torch.Tensor) else torch.as_tensor(value)
    skip = set(state.get("_non_persistent_buffers_set") or ())
    for key, value in (state.get("_buffers") or {}).items():
        if value is not None and key not in skip:
            out[prefix + key] = value
    for key, child in (state.get("_modules") or {}).items():
        if child is not None:
            out.update(module_state_dict(child, f"{prefix}{key}."))
    return out


def init_kwargs(obj: Any) -> dict:
    """The constructor keyword arguments NVIDIA's persistence recorded for a network."""
    state = obj.state if isinstance(obj, (PersistentObject, PlainObject)) else {}
    kwargs = state.get("_init_kwargs") or {}
    return _plain(kwargs)


def _plain(value: Any) -> Any:
    if isinstance(value, PlainObject):
        return _plain(value.state if value.state is not None else dict(value.args[0]) if value.args else {})
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
