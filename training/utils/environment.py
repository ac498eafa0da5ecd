"""The environment a run ran in: package versions and compute device (written into every run folder)."""

from __future__ import annotations

import platform
from importlib import metadata

from training import __version__

PACKAGES = ("torch", "torchvision", "numpy", "safetensors", "lmdb", "openslide-python", "openslide-bin", "pillow")


def environment_info() -> dict[str, object]:
    """Versions and compute device, as a plain dict (also written into every run folder)."""
    import torch  # inside: `rnagan info --help` stays free of torch (CLI start-up time)

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
