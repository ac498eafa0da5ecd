from __future__ import annotations

import argparse
import json

from training.utils.environment import environment_info


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
