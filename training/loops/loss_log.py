"""losses.csv of a GAN run: step losses averaged over `log_every` steps, with divergence alarms.

A WGAN-GP run that diverges shows it first in the gradient penalty (healthy: well under 1; diverging:
10³–10⁵) and in the critic loss. Each logged row is compared with the median of the rows before it: a
penalty or a loss that is non-finite, or both above an absolute floor and `factor` times its running
median, raises an alarm. The alarm is written in the row's `alarm` column and printed once per row, so a
diverged run is visible in its own record and in `rnagan evaluate`'s summary, not only in its samples.
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from training.loops.wgan import StepLosses
from training.utils.io import append_csv_row, write_csv

LOSSES_FILE = "losses.csv"
LOSS_COLUMNS = ("step", "epoch", *StepLosses.FIELDS, "images_per_s", "elapsed_s", "alarm")


@dataclass
class DivergenceMonitor:
    """Flags logged rows whose penalty or losses spike above their own history."""

    factor: float = 20.0
    penalty_floor: float = 10.0
    loss_floor: float = 10.0
    warmup_rows: int = 3  # the first rows set the scale; nothing is judged against an empty history
    history: dict[str, list[float]] = field(default_factory=lambda: {"penalty": [], "d_loss": [], "g_loss": []})

    def check(self, values: dict[str, float]) -> list[str]:
        alarms = []
        if not all(math.isfinite(v) for v in values.values()):
            alarms.append("nonfinite")
        for name, floor in (("penalty", self.penalty_floor), ("d_loss", self.loss_floor), ("g_loss", self.loss_floor)):
            value, past = abs(values[name]), self.history[name]
            if len(past) >= self.warmup_rows and math.isfinite(value):
                scale = float(np.median(past))
                if value > floor and value > self.factor * max(scale, 1e-3):
                    alarms.append(f"{name}_spike")
            if math.isfinite(value):
                past.append(value)
        return alarms


class LossLog:
    """Means of the step losses over `every` steps, appended to losses.csv; syncs the device only then."""

    def __init__(self, path: Path, *, enabled: bool, monitor: DivergenceMonitor | None = None):
        self.path, self.enabled = path, enabled
        self.monitor = monitor or DivergenceMonitor()
        self.total: torch.Tensor | None = None
        self.count, self.last, self.last_rate = 0, [math.nan] * 4, 0.0
        self.alarms = 0
        self.t0 = self.started = time.perf_counter()

    def add(self, losses: StepLosses, step: int, epoch: int, images_per_step: int, *, every: int) -> bool:
        values = losses.as_tensor()
        self.total = values if self.total is None else self.total + values
        self.count += 1
        if self.count >= every:
            self.flush(step, epoch, images_per_step)
            return True
        return False

    def flush(self, step: int, epoch: int, images_per_step: int) -> None:
        if not self.count:
            return
        now = time.perf_counter()
        self.last = (self.total / self.count).tolist()
        self.last_rate = self.count * images_per_step / max(now - self.t0, 1e-9)
        alarms = self.monitor.check(dict(zip(StepLosses.FIELDS, self.last, strict=True)))
        if alarms:
            self.alarms += 1
            if self.enabled:
                named = dict(zip(StepLosses.FIELDS, self.last, strict=True))
                tqdm.write(f"divergence alarm at step {step}: {', '.join(alarms)} (penalty {named['penalty']:.3g}, "
                           f"critic loss {named['d_loss']:.3g}, generator loss {named['g_loss']:.3g})")
        if self.enabled:
            values = [f"{v:.6g}" for v in self.last]
            append_csv_row(self.path, LOSS_COLUMNS, [step, epoch, *values, f"{self.last_rate:.1f}",
                                                     f"{now - self.started:.1f}", "+".join(alarms)])
        self.total, self.count, self.t0 = None, 0, now


def truncate_losses(path: Path, step: int) -> None:
    """Drop rows logged after the checkpoint being resumed: those steps are about to be redone."""
    if not path.exists():
        return
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    # A row cut short by a crash has fewer fields; drop it with the rows after the checkpoint.
    kept = [r for r in rows[1:] if len(r) == len(LOSS_COLUMNS) and r[0].isdigit() and int(r[0]) <= step]
    write_csv(path, LOSS_COLUMNS, kept)


def count_alarms(path: str | Path) -> dict[str, int]:
    """Rows of a losses.csv and how many raised a divergence alarm (0 for logs written before alarms)."""
    path = Path(path)
    if not path.exists():
        return {"rows": 0, "alarms": 0}
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return {"rows": len(rows), "alarms": sum(1 for r in rows if r.get("alarm"))}
