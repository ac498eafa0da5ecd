"""Checkpoints of a GAN training run: every tensor in safetensors, everything else in JSON.

A run's `checkpoints/` folder holds step-NNNNNNNN.safetensors (models, EMA, optimiser states, torch RNG
states) and step-NNNNNNNN.json (step, epoch, position in the data order, optimiser parameter groups,
Python/NumPy RNG states and the training config); `latest.json`, written last, names the newest, so a
crash mid-save leaves the previous checkpoint current. Loading needs no pickles.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.loops.gan_config import GANTrainConfig
from training.utils.checkpoints import CheckpointError
from training.utils.ema import EMA
from training.utils.io import read_json, write_json
from training.utils.runs import config_to_dict, load_state_checked, load_weights, save_weights

# Free to differ between a checkpoint and the config that resumes it: they change no arithmetic.
RESUMABLE_CHANGES = ("epochs", "log_every", "checkpoint_every", "keep_checkpoints")
CHECKPOINT_FORMAT = 1


def save_checkpoint(
    run: Path, config: GANTrainConfig, step: int, epoch: int, position: int, g, d, ema: EMA, opt_g, opt_d
) -> Path:
    """step-NNNNNNNN.safetensors (every tensor) + .json (the rest); latest.json is written last."""
    folder = run / "checkpoints"
    name = f"step-{step:08d}"
    tensors: dict[str, torch.Tensor] = {}
    for prefix, module in (("generator", g), ("critic", d), ("ema", ema.model)):
        tensors.update({f"{prefix}.{k}": v for k, v in module.state_dict().items()})
    groups = {}
    for prefix, opt in (("opt_g", opt_g), ("opt_d", opt_d)):
        state = opt.state_dict()
        for idx, values in state["state"].items():
            tensors.update({f"{prefix}.{idx}.{k}": v for k, v in values.items()})
        groups[prefix] = state["param_groups"]
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        tensors.update({f"rng.cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    save_weights(folder / f"{name}.safetensors", tensors)
    np_state = np.random.get_state()
    version, py_state, gauss = random.getstate()
    numpy_state = [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])]
    meta = {
        "format": CHECKPOINT_FORMAT, "step": step, "epoch": epoch, "position": position,
        "param_groups": groups, "rng": {"python": [version, list(py_state), gauss], "numpy": numpy_state},
        "config": config_to_dict(config),
    }
    write_json(folder / f"{name}.json", meta)
    write_json(folder / "latest.json", {"checkpoint": name, "step": step})
    return folder / f"{name}.json"


def prune_checkpoints(run: Path, keep: int) -> None:
    folder = run / "checkpoints"
    names = sorted(p.stem for p in folder.glob("step-*.json"))
    for name in names[: max(0, len(names) - max(keep, 1))]:
        for suffix in (".safetensors", ".json"):
            (folder / f"{name}{suffix}").unlink(missing_ok=True)


@dataclass
class Checkpoint:
    path: Path
    meta: dict[str, Any]

    def restore(self, g, d, ema: EMA, opt_g, opt_d, device: torch.device) -> tuple[int, int, int]:
        """Load every state into the given objects; returns (step, epoch, position)."""
        tensors = load_weights(self.path.with_suffix(".safetensors"))
        for prefix, module in (("generator", g), ("critic", d), ("ema", ema.model)):
            state = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
            load_state_checked(module, state, f"{self.path} [{prefix}]")
        for prefix, opt in (("opt_g", opt_g), ("opt_d", opt_d)):
            state: dict[int, dict[str, torch.Tensor]] = {}
            for key, value in tensors.items():
                if key.startswith(prefix + "."):
                    _, idx, name = key.split(".", 2)
                    state.setdefault(int(idx), {})[name] = value
            groups = self.meta["param_groups"][prefix]
            current = opt.state_dict()["param_groups"]
            if len(groups) != len(current) or any(
                len(a["params"]) != len(b["params"]) for a, b in zip(groups, current, strict=True)
            ):
                raise CheckpointError(
                    f"{self.path}: checkpoint/config mismatch: {prefix} parameter groups differ"
                )
            for saved, now in zip(groups, current, strict=True):
                saved["betas"] = tuple(saved["betas"])
                for flag in (
                    "fused",
                    "foreach",
                    "capturable",
                    "differentiable",
                ):  # how to run, from this machine
                    saved[flag] = now.get(flag)
            opt.load_state_dict({"state": state, "param_groups": groups})
        rng = self.meta["rng"]
        random.setstate((rng["python"][0], tuple(rng["python"][1]), rng["python"][2]))
        name, keys, pos, has_gauss, cached = rng["numpy"]
        np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
        torch.set_rng_state(tensors["rng.torch"])
        cuda_states = [
            tensors[k]
            for k in sorted(
                (k for k in tensors if k.startswith("rng.cuda.")), key=lambda k: int(k.rsplit(".", 1)[1])
            )
        ]
        if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
        return int(self.meta["step"]), int(self.meta["epoch"]), int(self.meta["position"])


def load_checkpoint(run: Path, config: GANTrainConfig) -> Checkpoint | None:
    """The newest checkpoint of a run, checked against `config`; None when the run has none yet."""
    latest = run / "checkpoints" / "latest.json"
    if not latest.exists():
        return None
    path = run / "checkpoints" / f"{read_json(latest)['checkpoint']}.json"
    meta = read_json(path)
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path}: checkpoint format {meta.get('format')!r}, this code reads {CHECKPOINT_FORMAT}"
        )
    # A field added to the config since the checkpoint was written resumes at its default: defaults keep
    # the behaviour from before the field existed.
    differences = config_differences(meta["config"], config_to_dict(config), defaults=config_to_dict(type(config)()))
    if differences:
        raise CheckpointError(f"{path}: checkpoint/config mismatch: " + "; ".join(differences[:5]))
    return Checkpoint(path, meta)


def config_differences(
    saved: dict[str, Any], now: dict[str, Any], prefix: str = "", *, where: str = "in the checkpoint",
    defaults: dict[str, Any] | None = None,
) -> list[str]:
    """Fields (dotted) that differ, other than RESUMABLE_CHANGES, as readable sentences."""
    out = []
    for key in sorted(set(saved) | set(now)):
        name = prefix + key
        a, b = saved.get(key, "<absent>"), now.get(key, "<absent>")
        default = (defaults or {}).get(key, "<none>")
        if key not in saved and default == b:
            continue  # absent from the saved config and at its default now
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_differences(a, b, name + ".", where=where,
                                      defaults=default if isinstance(default, dict) else None)
        elif a != b and name not in RESUMABLE_CHANGES:
            out.append(f"{name} is {a!r} {where} but {b!r} now")
    return out
