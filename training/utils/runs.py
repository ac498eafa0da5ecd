"""Run folders, typed configs as JSON and safetensors weights.

Shared by every training command: a run folder always holds the config it was made with
(`config.json`) and the environment it ran in (`environment.json`), so a checkpoint can be rebuilt
and audited without the code that wrote it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import tempfile
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from training.utils.checkpoints import CONFIG_FILE, CheckpointError
from training.utils.environment import environment_info
from training.utils.errors import OutputExistsError, RnaganError
from training.utils.io import atomic_path, read_json, write_json

T = TypeVar("T")


class ConfigError(RnaganError, ValueError):
    """A config file or override that does not match the dataclass it should build."""


def config_to_dict(config: Any) -> dict[str, Any]:
    def convert(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: convert(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, tuple | list):
            return [convert(v) for v in value]
        return value

    return convert(config)


def config_from_dict(cls: type[T], data: Mapping[str, Any], *, source: str = "config") -> T:
    """Build a dataclass from a dict, refusing unknown or missing keys with the field named."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{source}: unknown field(s) for {cls.__name__}: {', '.join(unknown)}")
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        if name not in data:
            has_default = field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING
            if not has_default:
                raise ConfigError(f"{source}: missing field {cls.__name__}.{name}")
            continue
        kwargs[name] = _coerce(hints[name], data[name], f"{source}: {cls.__name__}.{name}")
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
        return config_from_dict(hint, value, source=where)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        for option in typing.get_args(hint):
            if option is type(None):
                continue
            try:
                return _coerce(option, value, where)
            except (ConfigError, TypeError, ValueError):
                continue
        raise ConfigError(f"{where}: {value!r} does not fit {hint}")
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(hint)
        item = args[0] if args else Any
        items = [_coerce(item, v, where) if item is not Any and item is not Ellipsis else v for v in value]
        return tuple(items) if origin is tuple else items
    if hint is Path:
        return Path(value)
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint in (int, str, bool) and not isinstance(value, hint):
        raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


def save_config(path: str | os.PathLike[str], config: Any) -> None:
    write_json(path, config_to_dict(config))


def load_config(cls: type[T], path: str | os.PathLike[str]) -> T:
    return config_from_dict(cls, read_json(path), source=str(path))


def make_run_dir(out: str | os.PathLike[str], config: Any, *, resume: bool = False) -> Path:
    """Create a run folder and save the config and environment; refuse to overwrite another run."""
    run = Path(out)
    if run.exists() and any(run.iterdir()) and not resume:
        raise FileExistsError(f"{run}: run folder exists and is not empty (use --resume or another --out)")
    run.mkdir(parents=True, exist_ok=True)
    save_config(run / CONFIG_FILE, config)
    write_json(run / "environment.json", environment_info())
    return run


STAGING = ".starting-"


def stage_run_dir(out: str | os.PathLike[str], config: Any) -> Path:
    """A run folder that does not exist yet: built under a hidden name beside `out` (config and
    environment saved there), so a start that fails leaves nothing that blocks the next try.
    `publish_run_dir` renames it to `out` once training has really started."""
    run = Path(out)
    if run.exists() and (not run.is_dir() or any(run.iterdir())):
        raise OutputExistsError(f"{run}: run folder exists and is not empty (choose another --out; train-gan continues a run with --resume)")
    run.parent.mkdir(parents=True, exist_ok=True)
    for leftover in run.parent.glob(f".{run.name}{STAGING}*"):  # from a start killed before it published
        shutil.rmtree(leftover, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{run.name}{STAGING}", dir=run.parent))
    save_config(staging / CONFIG_FILE, config)
    write_json(staging / "environment.json", environment_info())
    return staging


def publish_run_dir(staging: Path, out: str | os.PathLike[str]) -> Path:
    run = Path(out)
    if run.is_dir() and not any(run.iterdir()):
        run.rmdir()  # an empty folder the user made beforehand
    os.rename(staging, run)  # fails rather than replace a folder that appeared meanwhile
    return run


def discard_staged(staging: Path | None) -> None:
    if staging is not None and staging.exists():
        shutil.rmtree(staging, ignore_errors=True)


# In every weights file's safetensors metadata: the SHA-256 of its tensors (names, dtypes, shapes, bytes),
# taken when it was saved. safetensors checks the header, not the data: a file whose tensor bytes were
# damaged (header intact) loaded, and drew all-black tiles with exit status 0.
CHECKSUM_KEY = "rnagan.tensors_sha256"


def tensors_sha256(tensors: Mapping[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().contiguous().cpu()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def save_weights(path: str | os.PathLike[str], state: Mapping[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={**(metadata or {}), CHECKSUM_KEY: tensors_sha256(tensors)})


def load_weights(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file, verified against the checksum written when it was saved.

    Files saved before checksums were written carry none and load unverified (the generator loader
    still refuses one whose output is constant)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: weights file not found")
    try:
        with safe_open(str(path), framework="pt") as handle:
            expected = (handle.metadata() or {}).get(CHECKSUM_KEY)
        tensors = load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises its own error types for truncated/corrupt files
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None
    if expected is not None and tensors_sha256(tensors) != expected:
        raise CheckpointError(
            f"{path}: damaged: its tensors do not match the checksum written when it was saved "
            f"(sha256 {expected[:12]}…); copy the file again from where it was trained, or retrain"
        )
    return tensors if str(device) == "cpu" else {k: v.to(device) for k, v in tensors.items()}


def state_mismatches(module: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> list[str]:
    """How a weights file differs from the module its config builds (empty when it loads): the
    missing, unexpected and wrongly shaped tensors, a few of each named."""

    def named(keys: list[str], label: str) -> list[str]:
        more = f", … {len(keys) - 3} more" if len(keys) > 3 else ""
        return [f"{len(keys)} {label} ({', '.join(keys[:3])}{more})"] if keys else []

    expected = module.state_dict()
    shapes = [
        f"{k} is {tuple(state[k].shape)} in the file but {tuple(v.shape)} by the config"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    return (
        named(sorted(set(expected) - set(state)), "missing tensor(s)")
        + named(sorted(set(state) - set(expected)), "unexpected tensor(s)")
        + shapes[:3]
    )


def load_state_checked(module: torch.nn.Module, state: dict[str, torch.Tensor], source: Path | str) -> None:
    """load_state_dict, with a message that names the first differing tensors and says what to check."""
    problems = state_mismatches(module, state)
    if problems:
        raise CheckpointError(f"{source}: checkpoint/config mismatch: " + "; ".join(problems))
    module.load_state_dict(state, strict=True)
