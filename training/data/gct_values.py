"""Converting a GCT's kept values: rows of text fields → a float32 matrix, bad values named by line.

Split from training.data.gct, which streams the file and cuts the chosen fields out of each row.
"""

from __future__ import annotations

import io
import os
from array import array
from pathlib import Path
from typing import NoReturn

import numpy as np
import pandas as pd

from training.utils.errors import RnaganError

PARSE_ROWS = 256  # kept rows converted together
FLOAT32_MAX = float(np.finfo(np.float32).max)


class GctFormatError(RnaganError, ValueError):
    """The file is not valid GCT 1.2; the message names the file and the line."""

    def __init__(self, path: str | os.PathLike[str], line: int | None, message: str) -> None:
        where = f"{path}, line {line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")
        self.path = Path(path)
        self.line = line



class ValueBlock:
    """Collects kept rows' chosen fields and converts PARSE_ROWS rows at a time into a growing buffer.

    `samples` are in file order (as the fields were cut); `to_asked[j]` is the file-order column that
    goes to column j of the result.
    """

    def __init__(self, path: Path, samples: list[str], to_asked: np.ndarray, nonnegative: bool,
                 capacity: int) -> None:
        self.path, self.samples, self.to_asked, self.nonnegative = path, samples, to_asked, nonnegative
        self.buffer = np.empty((max(capacity, 1), len(samples)), dtype=np.float32)
        self.genes: list[str] = []
        self.descriptions: list[str] = []
        self.lines = array("q")  # 8 bytes a row: the reader's memory bound is tested
        self.pending: list[tuple[int, bytes]] = []  # (line number, b"v1\tv2\t...vk\t")

    def add(self, line_no: int, name: bytes, description: bytes, chosen: bytes) -> None:
        self.genes.append(name.decode("utf-8", "replace").strip())
        self.descriptions.append(description.decode("utf-8", "replace").strip())
        self.lines.append(line_no)
        self.pending.append((line_no, chosen))
        if len(self.pending) == PARSE_ROWS:
            self._convert()

    def finish(self) -> np.ndarray:
        self._convert()
        values = self.buffer[: len(self.genes)]
        return values.copy() if len(values) < 0.75 * len(self.buffer) else values

    def _convert(self) -> None:
        if not self.pending:
            return
        start, end = len(self.genes) - len(self.pending), len(self.genes)
        if end > len(self.buffer):
            grown = np.empty((max(2 * len(self.buffer), end), len(self.samples)), dtype=np.float32)
            grown[:start] = self.buffer[:start]
            self.buffer = grown
        if self.samples:
            parsed = self._parse()
            bad = ~np.isfinite(parsed)
            if self.nonnegative:
                bad |= parsed < 0
            if bad.any():
                row, column = np.argwhere(bad)[0]
                self._refuse(int(row), int(column))
            self.buffer[start:end] = parsed[:, self.to_asked]
        self.pending = []

    def _parse(self) -> np.ndarray:
        # One value a line: pandas' C parser reads a single column much faster than a 17k-wide row.
        text = b"".join(chosen for _, chosen in self.pending).replace(b"\t", b"\n")
        shape = (len(self.pending), len(self.samples))
        try:
            parsed = pd.read_csv(io.BytesIO(text), header=None, names=["v"], dtype=np.float32, engine="c",
                                 na_filter=False, skip_blank_lines=False)["v"].to_numpy()
            if parsed.size == shape[0] * shape[1]:
                return parsed.reshape(shape)
        except (ValueError, pd.errors.ParserError):
            pass
        # Slow path: Python's float() value by value, which names the first value it cannot read.
        rows = []
        for row, (_, chosen) in enumerate(self.pending):
            fields = chosen.split(b"\t")[:-1]
            try:
                rows.append([float(v) for v in fields])
            except ValueError:
                self._refuse(row, next(c for c, v in enumerate(fields) if not _is_number(v)))
        return np.asarray(rows, dtype=np.float32)

    def _refuse(self, row: int, column: int) -> NoReturn:
        line_no, chosen = self.pending[row]
        raw = chosen.split(b"\t")[column]
        gene = self.genes[len(self.genes) - len(self.pending) + row]
        text = raw.decode("utf-8", "replace").strip()
        if not _is_number(raw):
            problem = "not a number"
        elif not np.isfinite(float(raw)):
            problem = "not a finite number"
        elif abs(float(raw)) > FLOAT32_MAX:
            problem = f"too large: values are stored as 32-bit floats, at most {FLOAT32_MAX:.4g}"
        else:
            problem = "negative"
        message = f"gene {gene}, sample {self.samples[column]}: value {text!r} is {problem}"
        raise GctFormatError(self.path, line_no, message)


def _is_number(text: bytes) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
