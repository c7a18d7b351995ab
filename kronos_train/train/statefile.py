"""Trainer and rank state as data only: tensors in safetensors, everything else in JSON.

A run folder is copied between machines and people, so nothing read back from
it may run code (a pickle can).  ``save_state(obj, folder, stem)`` splits a
nested state (optimizer and scheduler state dicts, RNG states, the logging
window) into ``<stem>.safetensors`` (every tensor and NumPy array, bit for
bit) and ``<stem>.json`` (the structure and the plain values, with typed
placeholders for tuples, non-text dict keys and the tensors).
``load_state`` rebuilds the very same object; any file that does not decode
into that shape raises ``CheckpointError`` naming the file.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..control.commit import CheckpointError, fsync_file

TENSOR = "__tensor__"       # {"__tensor__": key}: a torch tensor stored under key
ARRAY = "__ndarray__"       # {"__ndarray__": key, "dtype": "uint32", "shape": [624]}: a NumPy array's bytes
TUPLE = "__tuple__"         # {"__tuple__": [...]}
ITEMS = "__items__"         # {"__items__": [[key, value], ...]}: a dict whose keys are not all text
MARKERS = (TENSOR, ARRAY, TUPLE, ITEMS)
ARRAY_DTYPES = ("uint32", "int64", "float64", "float32", "uint8", "int32")
MAX_JSON_BYTES = 64 * 1024 * 1024


def state_files(stem: str) -> tuple[str, str]:
    return f"{stem}.safetensors", f"{stem}.json"


# --------------------------------------------------------------------------- encoding

class _Encoder:
    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}

    def _store(self, tensor: torch.Tensor) -> str:
        key = f"t{len(self.tensors)}"
        # A private contiguous copy: safetensors refuses tensors that share memory.
        self.tensors[key] = tensor.detach().to("cpu", copy=True).contiguous()
        return key

    def encode(self, obj: Any) -> Any:
        if isinstance(obj, torch.Tensor):
            return {TENSOR: self._store(obj)}
        if isinstance(obj, np.ndarray):
            if obj.dtype.name not in ARRAY_DTYPES:
                raise TypeError(f"cannot store a NumPy array of dtype {obj.dtype}")
            raw = torch.frombuffer(bytearray(np.ascontiguousarray(obj).tobytes()), dtype=torch.uint8)
            return {ARRAY: self._store(raw), "dtype": obj.dtype.name, "shape": list(obj.shape)}
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, tuple):
            return {TUPLE: [self.encode(v) for v in obj]}
        if isinstance(obj, list):
            return [self.encode(v) for v in obj]
        if isinstance(obj, dict):
            if all(isinstance(k, str) and k not in MARKERS for k in obj):
                return {k: self.encode(v) for k, v in obj.items()}
            return {ITEMS: [[self.encode(k), self.encode(v)] for k, v in obj.items()]}
        if obj is None or isinstance(obj, (bool, int, float, str)):
            return obj
        raise TypeError(f"cannot store a {type(obj).__name__} in a checkpoint (data only: tensors, numbers, text)")


def save_state(obj: Any, folder: Path, stem: str) -> None:
    """Write ``<stem>.safetensors`` and ``<stem>.json`` into ``folder``, both fsynced."""
    encoder = _Encoder()
    tree = encoder.encode(obj)
    tensor_name, json_name = state_files(stem)
    save_file(encoder.tensors, str(folder / tensor_name))
    (folder / json_name).write_text(json.dumps({"format": 1, "tree": tree}), encoding="utf-8")
    fsync_file(folder / tensor_name)
    fsync_file(folder / json_name)


# --------------------------------------------------------------------------- decoding

class _Decoder:
    def __init__(self, tensors: dict[str, torch.Tensor], where: Path):
        self.tensors, self.where = tensors, where

    def fail(self, what: str) -> CheckpointError:
        return CheckpointError(f"{self.where}: {what}; the checkpoint was not written by this trainer or is "
                               "damaged, so it is not loaded")

    def tensor(self, key: Any) -> torch.Tensor:
        if not isinstance(key, str) or key not in self.tensors:
            raise self.fail(f"refers to a tensor {str(key)[:40]!r} that is not in the .safetensors file")
        return self.tensors[key]

    def array(self, node: dict[str, Any]) -> np.ndarray:
        dtype, shape = node.get("dtype"), node.get("shape")
        if dtype not in ARRAY_DTYPES or not isinstance(shape, list) or not all(
                isinstance(n, int) and not isinstance(n, bool) and 0 <= n < 2**31 for n in shape):
            raise self.fail(f"an array entry has dtype {str(dtype)[:20]!r} and shape {str(shape)[:40]!r}")
        raw = self.tensor(node[ARRAY]).numpy().tobytes()
        if len(raw) != np.dtype(dtype).itemsize * math.prod(shape):
            raise self.fail("an array's bytes do not match its shape")
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()

    def decode(self, node: Any, depth: int = 0) -> Any:
        if depth > 64:
            raise self.fail("nests deeper than any trainer state")
        if isinstance(node, list):
            return [self.decode(v, depth + 1) for v in node]
        if not isinstance(node, dict):
            return node
        if TENSOR in node:
            return self.tensor(node[TENSOR])
        if ARRAY in node:
            return self.array(node)
        if TUPLE in node:
            if not isinstance(node[TUPLE], list):
                raise self.fail("a tuple entry is not a list")
            return tuple(self.decode(v, depth + 1) for v in node[TUPLE])
        if ITEMS in node:
            items = node[ITEMS]
            if not isinstance(items, list) or not all(isinstance(i, list) and len(i) == 2 for i in items):
                raise self.fail("a mapping entry is not a list of [key, value] pairs")
            out = {}
            for k, v in items:
                key = self.decode(k, depth + 1)
                if not isinstance(key, (str, int, float, bool, tuple)) and key is not None:
                    raise self.fail(f"a mapping key is a {type(key).__name__}")
                out[key] = self.decode(v, depth + 1)
            return out
        return {k: self.decode(v, depth + 1) for k, v in node.items()}


def load_state(folder: Path, stem: str) -> Any:
    """The object ``save_state`` wrote; CheckpointError (naming the file) for anything else."""
    tensor_name, json_name = state_files(stem)
    json_path, tensor_path = folder / json_name, folder / tensor_name
    try:
        if json_path.stat().st_size > MAX_JSON_BYTES:
            raise CheckpointError(f"{json_path}: {json_path.stat().st_size} bytes, larger than any trainer state")
        doc = json.loads(json_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{json_path} is missing") from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{json_path} is not readable JSON ({type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(doc, dict) or doc.get("format") != 1 or "tree" not in doc:
        raise CheckpointError(f"{json_path}: not a trainer state file (expected {{\"format\": 1, \"tree\": ...}})")
    try:
        tensors = load_file(str(tensor_path))
    except FileNotFoundError:
        raise CheckpointError(f"{tensor_path} is missing") from None
    except Exception as exc:          # safetensors raises its own error types for damaged headers
        raise CheckpointError(f"{tensor_path} is not a readable safetensors file ({str(exc)[:200]})") from None
    return _Decoder(tensors, json_path).decode(doc["tree"])
