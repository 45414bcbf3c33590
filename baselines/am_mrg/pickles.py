"""Reading the authors' pickled files without running code from them.

Why: ``Stage1ckpt.pth`` stores its yacs ``config`` next to the weights, a stage-2 checkpoint its
Lightning hyper-parameters, ``CAM.pkl`` and ``Report_Memory.pkl`` are plain pickles of numpy
arrays. ``torch.load(weights_only=True)`` refuses the first two (it cannot rebuild foreign classes)
and a plain ``pickle.load`` would execute whatever a file names. Here the unpicklers build tensors,
arrays and containers from an allow-list (PyTorch's own weights-only list, numpy's array
reconstruction, a few inert builtins) and turn every other class into an inert dict-like stand-in,
so no function named by a file is ever called.
"""

from __future__ import annotations

import pickle
import types
from pathlib import Path
from typing import Any

from rrg_bench.errors import DataError

#: numpy's array reconstruction (numpy 1 and 2 module names) and inert containers
_SAFE = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "OrderedDict"), ("copyreg", "_reconstructor"),
    *(("builtins", n) for n in ("object", "dict", "list", "set", "frozenset", "tuple", "slice", "complex",
                                "bytearray", "int", "float", "str", "bytes", "bool")),
}


class Opaque(dict):
    """Stands in for a class the file names but we do not import (a config object): keeps its state."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict):
            state = {**state[0], **(state[1] or {})}
        if isinstance(state, dict):
            self.update(state)
        else:
            self["__state__"] = state


def _torch_allowed() -> set[tuple[str, str]]:
    from torch import _weights_only_unpickler

    return {tuple(name.rsplit(".", 1)) for name in _weights_only_unpickler._get_allowed_globals()}


class RestrictedUnpickler(pickle.Unpickler):
    allowed: set[tuple[str, str]] = _SAFE

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.allowed:
            return super().find_class(module, name)
        return type(name, (Opaque,), {"__module__": f"opaque.{module}"})


def _restricted_module(allowed: set[tuple[str, str]]) -> types.ModuleType:
    """A ``pickle_module`` for ``torch.load`` whose Unpickler allows only ``allowed`` globals."""
    module = types.ModuleType("rrg_bench_restricted_pickle")
    unpickler = type("Unpickler", (RestrictedUnpickler,), {"allowed": allowed})
    module.Unpickler = unpickler  # type: ignore[attr-defined]
    module.load = lambda fh, **kw: unpickler(fh, **kw).load()  # type: ignore[attr-defined]
    module.__dict__.update({k: getattr(pickle, k) for k in ("UnpicklingError", "HIGHEST_PROTOCOL")})
    return module


def load_checkpoint(path: Path) -> Any:
    """A ``torch.save`` file: tensors rebuilt, foreign objects (configs) as ``Opaque`` dicts."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=False,
                          pickle_module=_restricted_module(_SAFE | _torch_allowed()))
    except Exception as exc:  # truncated download, not a torch file
        raise DataError(f"{path}: cannot be read as a PyTorch checkpoint ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''})") from None


def load_pickle(path: Path) -> Any:
    """A plain pickle of numpy arrays in containers (the authors' ``CAM.pkl``, ``Report_Memory.pkl``)."""
    try:
        with open(path, "rb") as fh:
            return RestrictedUnpickler(fh).load()
    except Exception as exc:
        raise DataError(f"{path}: cannot be read as a pickle of arrays ({type(exc).__name__}: {exc})") from None
