"""Named presets for training configs, overridden one option at a time from the command line.

A preset is a table of dotted config fields → values (`{"model.latent_dim": 32, "epochs": 30}`). A
command builds its config as: the dataclass defaults (the paper's), then the chosen preset, then each
option the user actually gave (`--epochs 3`), then `--set FIELD=VALUE` for fields without a flag. Every
name is checked against the dataclass, so a misspelt option or preset entry is an error, never ignored.

Generic: the VAE presets live here; the GAN trainer declares its own table and options the same way.
Imports of torch-backed modules are deferred so that `rnagan --help` stays quick.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")
Presets = Mapping[str, Mapping[str, Any]]

# Paper sizes; "small" fits about a GPU hour; "tiny" trains in seconds on two CPU cores (tests, demo).
VAE_PRESETS: Presets = {
    "paper": {
        "model.hidden": (6000, 4096),
        "model.latent_dim": 2048,
        "epochs": 250,
        "batch_size": 128,
        "lr": 5e-5,
        "warmup_epochs": 5.0,
        "patience": 20,
    },
    "small": {
        "model.hidden": (2048, 1024),
        "model.latent_dim": 512,
        "epochs": 100,
        "batch_size": 128,
        "lr": 1e-4,
        "warmup_epochs": 3.0,
        "patience": 15,
    },
    "tiny": {
        "model.hidden": (128, 64),
        "model.latent_dim": 32,
        "epochs": 40,
        "batch_size": 32,
        "lr": 2e-3,
        "warmup_epochs": 1.0,
        "patience": 8,
    },
}

# The RNA-GAN generator reads the VAE's latent: a GAN preset's input size must equal this for the same
# preset name (a trainer should still take the size from the VAE run it is given).
VAE_LATENT_DIM = {name: int(table["model.latent_dim"]) for name, table in VAE_PRESETS.items()}


@dataclass(frozen=True)
class Option:
    """A command-line flag that overrides one config field (`field` is dotted: "model.latent_dim")."""

    field: str
    flag: str
    type: Callable[[str], Any]
    help: str
    metavar: str | None = None
    choices: Sequence[Any] | None = None

    @property
    def dest(self) -> str:
        return "override__" + self.field.replace(".", "__")


def int_tuple(text: str) -> tuple[int, ...]:
    """`6000,4096` → (6000, 4096): a layer-size list as one option value."""
    try:
        sizes = tuple(int(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not sizes or any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError(f"expected one or more sizes of at least 1, got {text!r}")
    return sizes


def apply_overrides(config: T, overrides: Mapping[str, Any], *, source: str = "override") -> T:
    """A copy of `config` with dotted fields replaced; unknown names and ill-typed values are refused."""
    from training.utils.runs import ConfigError, config_from_dict, config_to_dict

    data = config_to_dict(config)
    for dotted, value in overrides.items():
        node: Any = data
        keys = dotted.split(".")
        for depth, key in enumerate(keys):
            if not isinstance(node, dict) or key not in node:
                known = ", ".join(field_names(config))
                raise ConfigError(f"{source}: unknown option {dotted!r}; known: {known}")
            if depth == len(keys) - 1:
                node[key] = list(value) if isinstance(value, tuple) else value
            else:
                node = node[key]
    try:
        return config_from_dict(type(config), data, source=source)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError) and str(exc).startswith(source):
            raise
        raise ConfigError(f"{source}: {exc}") from None


def field_names(config: Any) -> list[str]:
    """Every overridable leaf field of a config, dotted."""
    from training.utils.runs import config_to_dict

    names: list[str] = []

    def walk(node: Any, prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            else:
                names.append(prefix + key)

    walk(config_to_dict(config), "")
    return names


def build_config(base: T, presets: Presets, preset: str, overrides: Mapping[str, Any] | None = None) -> T:
    """`base` (defaults) → the named preset → `overrides` (what the user set)."""
    from training.utils.runs import ConfigError

    if preset not in presets:
        raise ConfigError(f"unknown preset {preset!r}; choose from {', '.join(presets)}")
    config = apply_overrides(base, presets[preset], source=f"preset {preset!r}")
    return apply_overrides(config, overrides or {}, source="command line")


def add_preset_options(
    parser: argparse.ArgumentParser, presets: Presets, options: Sequence[Option], *, default: str = "paper"
) -> None:
    """Add `--preset`, one flag per Option (default None: "not given") and `--set FIELD=VALUE`."""
    parser.add_argument(
        "--preset",
        choices=list(presets),
        default=default,
        help=f"starting sizes and schedule (default {default}); single options below override it",
    )
    for option in options:
        shown = [f"{name} {_show(table[option.field])}" for name, table in presets.items() if option.field in table]
        parser.add_argument(
            option.flag,
            dest=option.dest,
            type=option.type,
            default=None,
            metavar=option.metavar,
            choices=option.choices,
            help=option.help + (f" (presets: {', '.join(shown)})" if shown else ""),
        )
    parser.add_argument(
        "--set",
        dest="override__set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override any config field, dotted (e.g. --set model.negative_slope=0.1); repeatable",
    )


def overrides_from_args(args: argparse.Namespace, options: Sequence[Option]) -> dict[str, Any]:
    """The options the user actually gave, as dotted fields; `--set` entries last."""
    from training.utils.runs import ConfigError

    overrides = {o.field: getattr(args, o.dest) for o in options if getattr(args, o.dest, None) is not None}
    for item in getattr(args, "override__set", []) or []:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--set {item!r}: expected FIELD=VALUE")
        overrides[name.strip()] = _parse_value(text.strip())
    return overrides


def _parse_value(text: str) -> Any:
    """JSON when it parses (numbers, true/false, lists), else the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _show(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)
