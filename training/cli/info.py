from __future__ import annotations

import argparse
import json
import platform
from importlib import metadata

from training import __version__

PACKAGES = ("torch", "torchvision", "numpy", "safetensors", "lmdb", "openslide-python", "openslide-bin", "pillow")


def environment_info() -> dict[str, object]:
    """Versions and compute device, as a plain dict (also written into every run folder)."""
    import torch

    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    try:
        import openslide

        versions["libopenslide"] = openslide.__library_version__
    except (ImportError, OSError):
        versions["libopenslide"] = None

    cuda = torch.cuda.is_available()
    devices = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else []
    return {
        "rnagan": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
        "device": "cuda" if cuda else "cpu",
        "cuda_devices": devices,
        "cuda_version": torch.version.cuda,
        "bf16_supported": bool(cuda and torch.cuda.is_bf16_supported()),
        "cpu_threads": torch.get_num_threads(),
    }


def run(args: argparse.Namespace) -> int:
    info = environment_info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"rnagan {info['rnagan']}  (Python {info['python']}, {info['platform']})")
    for name, version in info["packages"].items():  # type: ignore[union-attr]
        print(f"  {name:<18} {version or 'not installed'}")
    if info["device"] == "cuda":
        print(f"device: CUDA {info['cuda_version']} on {', '.join(info['cuda_devices'])}; bf16: {info['bf16_supported']}")
    else:
        print(f"device: CPU ({info['cpu_threads']} threads); no CUDA device visible")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("info", help="print versions and the compute device (CPU/CUDA)")
    parser.add_argument("--json", action="store_true", help="print as JSON")
    parser.set_defaults(func=run)
