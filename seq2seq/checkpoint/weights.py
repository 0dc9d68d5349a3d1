"""Model weights as safetensors: what a model saves (one copy of each tensor, on the
CPU), and loading that refuses a file whose tensors do not fit the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_model

from seq2seq.checkpoint.errors import CheckpointError, first_line


def load_into(path: Path, model: torch.nn.Module) -> None:
    """Load ``path`` into ``model`` (or the module inside DDP / torch.compile). Every
    tensor must have the model's dtype and shape: a cast would load garbage silently."""
    target = unwrap(model)
    check_fits(path, target)
    try:
        missing, unexpected = load_model(target, str(path), strict=False, device="cpu")
    except (SafetensorError, OSError, RuntimeError) as err:
        raise CheckpointError(f"{path}: cannot load weights: {first_line(err)}") from None
    if unexpected or any(not is_tied(model, k) for k in missing):
        raise CheckpointError(
            f"{path}: weights do not fit the recipe's model "
            f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})"
        )


def check_fits(path: Path, model: torch.nn.Module) -> None:
    """Each stored tensor has the dtype and shape of the model's tensor of that name."""
    expected = {**dict(model.named_buffers()), **dict(model.named_parameters())}
    try:
        with safe_open(str(path), framework="pt", device="cpu") as stored:
            for key in stored.keys():  # noqa: SIM118 - safe_open is not a mapping
                if key not in expected:
                    continue  # load_model reports unexpected keys
                piece = stored.get_slice(key)
                dtype, shape = _DTYPES.get(piece.get_dtype()), tuple(piece.get_shape())
                mine = expected[key]
                if dtype != mine.dtype or shape != tuple(mine.shape):
                    raise CheckpointError(
                        f"{path}: weights do not fit the model: tensor '{key}' is "
                        f"{piece.get_dtype()} {list(shape)}, the model's is "
                        f"{str(mine.dtype).removeprefix('torch.')} {list(mine.shape)} "
                        "(refusing to cast or reshape)"
                    )
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path}: cannot load weights: {first_line(err)}") from None


_DTYPES = {
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "F64": torch.float64,
    "I64": torch.int64,
    "I32": torch.int32,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module inside DistributedDataParallel (or ``torch.compile``)."""
    inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
    return inner if isinstance(inner, torch.nn.Module) else model


def cpu_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's state as CPU tensors of their own storage, an aliased tensor (tied
    embeddings) once, under the first of its names in sorted order (what safetensors'
    save_model keeps). Copying is what makes a CUDA model savable: cuDNN makes each
    LSTM's weights views of one flat buffer, which safetensors refuses to write."""
    weights: dict[str, torch.Tensor] = {}
    seen: set[tuple[Any, ...]] = set()
    for name, tensor in sorted(model.state_dict().items()):
        where = (
            tensor.device,
            tensor.untyped_storage().data_ptr(),
            tensor.storage_offset(),
            tuple(tensor.shape),
            tensor.stride(),
            tensor.dtype,
        )
        if where in seen:
            continue
        seen.add(where)
        weights[name] = tensor.detach().to("cpu", copy=True).contiguous()
    return weights


def is_tied(model: torch.nn.Module, key: str) -> bool:
    """safetensors stores a shared tensor once; its other names come back as 'missing'."""
    params = dict(unwrap(model).named_parameters(remove_duplicate=False))
    target = params.get(key)
    return target is not None and any(p is target and k != key for k, p in params.items())
