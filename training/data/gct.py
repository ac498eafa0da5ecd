"""GCT 1.2, the format of GTEx's gene TPM matrices.

Line 1 `#1.2`; line 2 `<rows>\t<cols>`; line 3 `Name\tDescription\t<SAMPID>...`; then one row per gene:
`ENSG00000223972.5\tDDX11L1\t0.0\t...`. Usually gzip-compressed.

training.data.gct_writer writes one; read_gct streams one, keeping only chosen samples and genes; read_gct_header and
iter_gct_names read the header and the first two columns.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.data.gct_values import GctFormatError, ValueBlock

# Reading streams: a GTEx TPM file is 56,200 genes × 17,382 samples (about 3 GB of text), while a
# preparation keeps a few tissues' samples and the protein-coding genes. Only the header is read whole;
# each row's name is looked at first, and only kept rows are split; their chosen fields are converted
# in blocks by pandas' C parser. Memory stays at (kept genes × kept samples) plus a few MiB of input.

GZIP_MAGIC = b"\x1f\x8b"
HEADER_NAMES = ("name", "description")
READ_BYTES = 1 << 18  # plain input per read
INFLATE_BYTES = 1 << 20  # decompressed output per block
QUEUED_BLOCKS = 8


@dataclass(frozen=True)
class GctHeader:
    path: Path
    n_genes: int  # as declared on line 2
    n_samples: int
    samples: tuple[str, ...]


@dataclass(frozen=True)
class GctData:
    """The kept part of a GCT: values is float32, genes × samples, rows in file order."""

    genes: list[str]
    descriptions: list[str]
    samples: list[str]
    values: np.ndarray
    rows_in_file: int
    lines: Sequence[int]  # each kept row's line number in the file, to name it in messages


def _put(blocks: queue.Queue, item: object, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            blocks.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def _inflate(path: Path, blocks: queue.Queue, stop: threading.Event) -> None:
    """Producer thread: gzip members → decompressed blocks, then None (or the exception that stopped it)."""
    try:
        with open(path, "rb") as raw:
            inflater = zlib.decompressobj(wbits=31)
            while not stop.is_set() and (chunk := raw.read(READ_BYTES)):
                while chunk:
                    if inflater.eof:  # pigz and bgzip write several members, one after another
                        chunk = chunk.lstrip(b"\0")  # zero padding after the last one is allowed, as in gzip
                        if not chunk:
                            break
                        inflater = zlib.decompressobj(wbits=31)
                    data = inflater.decompress(chunk, INFLATE_BYTES)  # bounded: a block stays ~1 MiB
                    chunk = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
                    if data:
                        _put(blocks, data, stop)
            if not stop.is_set():
                if not inflater.eof and (rest := inflater.flush()):
                    _put(blocks, rest, stop)
                if not inflater.eof:
                    raise EOFError("compressed file ended before the end-of-stream marker was reached")
                _put(blocks, None, stop)
    except Exception as exc:  # handed to the reading thread, which raises it
        _put(blocks, exc, stop)


def _gzip_blocks(path: Path) -> Iterator[bytes]:
    # zlib releases the GIL, so on two cores decompression runs beside the parsing of earlier blocks.
    blocks: queue.Queue = queue.Queue(maxsize=QUEUED_BLOCKS)
    stop = threading.Event()
    worker = threading.Thread(target=_inflate, args=(path, blocks, stop), name="gct-inflate", daemon=True)
    worker.start()
    try:
        while (block := blocks.get()) is not None:
            if isinstance(block, Exception):
                raise block
            yield block
    finally:
        stop.set()
        worker.join()


def _plain_blocks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as raw:
        while block := raw.read(READ_BYTES):
            yield block


@contextlib.contextmanager
def _open_lines(path: Path) -> Iterator[Iterator[bytes]]:
    """The file's lines without their newline, gzip or plain (told apart by content, not the name)."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: file not found")
    if path.is_dir():
        raise GctFormatError(path, None, "is a folder, not a GCT file")
    with open(path, "rb") as raw:
        compressed = raw.read(2) == GZIP_MAGIC
    blocks = _gzip_blocks(path) if compressed else _plain_blocks(path)

    def lines() -> Iterator[bytes]:
        carry = b""
        for block in blocks:
            parts = (carry + block if carry else block).split(b"\n")
            carry = parts.pop()
            yield from parts
        if carry:
            yield carry

    iterator = lines()
    try:
        yield iterator
    finally:
        iterator.close()
        blocks.close()  # stops the inflating thread when reading ends early


def _read_header(lines: Iterator[bytes], path: Path) -> GctHeader:
    try:
        first, dims, names = (next(lines, b"") for _ in range(3))
    except (EOFError, OSError, zlib.error) as exc:
        raise GctFormatError(path, None, f"not a readable gzip file ({exc})") from None
    first = first.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark, as Windows editors write
    if first.strip() != b"#1.2":
        shown = first[:40].decode("utf-8", "replace").strip()
        raise GctFormatError(path, 1, f"not a GCT 1.2 file: the first line should be '#1.2', found {shown!r}")
    try:
        n_genes, n_samples = (int(v) for v in dims.split())
        if n_genes < 0 or n_samples < 0:
            raise ValueError
    except ValueError:
        shown = dims[:60].decode("utf-8", "replace").strip()
        message = f"expected '<genes>\\t<samples>' (two counts), found {shown!r}"
        raise GctFormatError(path, 2, message) from None
    try:
        fields = names.rstrip(b"\r").decode("utf-8").split("\t")
    except UnicodeDecodeError:
        raise GctFormatError(path, 3, "column header is not UTF-8 text") from None
    if len(fields) < 2 or tuple(f.strip().lower() for f in fields[:2]) != HEADER_NAMES:
        found = fields[:2]
        raise GctFormatError(path, 3, f"column header should start 'Name\\tDescription', found {found!r}")
    samples = tuple(f.strip() for f in fields[2:])
    if len(samples) != n_samples:
        message = f"line 2 declares {n_samples} samples but the column header names {len(samples)}"
        raise GctFormatError(path, 3, message)
    seen: dict[str, int] = {}
    for column, sample in enumerate(samples, start=3):
        if not sample:
            raise GctFormatError(path, 3, f"column {column} has an empty sample ID")
        if sample in seen:
            message = f"duplicate sample ID {sample!r} in columns {seen[sample]} and {column}"
            raise GctFormatError(path, 3, message)
        seen[sample] = column
    return GctHeader(path=path, n_genes=n_genes, n_samples=n_samples, samples=samples)


def read_gct_header(path: str | os.PathLike[str]) -> GctHeader:
    """Read and check lines 1–3 only."""
    path = Path(path)
    with _open_lines(path) as lines:
        return _read_header(lines, path)


def _data_lines(lines: Iterator[bytes], header: GctHeader) -> Iterator[tuple[int, bytes]]:
    """Yield (line number, line) for each gene row and check the declared row count at the end.

    The number of fields is checked by the caller (`_check_width`), which may already have split the line.
    """
    path = header.path
    count = 0
    line_no = 3
    try:
        for line_no, line in enumerate(lines, start=4):  # noqa: B007 - line_no is used after the loop
            if not line.strip():
                continue  # blank lines (typically a trailing one) carry no gene
            count += 1
            yield line_no, line
    except (EOFError, OSError, zlib.error) as exc:  # truncated or corrupt gzip stream
        message = f"the file is truncated or corrupt after this line ({exc})"
        raise GctFormatError(path, line_no, message) from None
    if count != header.n_genes:
        raise GctFormatError(path, 2, f"declares {header.n_genes} genes but the file has {count} gene rows")


TAB = 9  # the byte


def _check_width(header: GctHeader, line_no: int, fields: int) -> None:
    if fields != header.n_samples + 2:
        message = f"{fields - 2} values, expected {header.n_samples} (one per sample on line 3)"
        raise GctFormatError(header.path, line_no, message)


def _count_fields(line: bytes) -> int:
    # numpy counts a byte several times faster than bytes.count on these ~100 kB lines.
    return int(np.count_nonzero(np.frombuffer(line, dtype=np.uint8) == TAB)) + 1


def _row_name(line: bytes) -> str:
    return line[: line.find(b"\t")].decode("utf-8", "replace").strip()


class _FieldPicker:
    """Cuts chosen fields out of a row without splitting all of it (a GTEx row has 17,384 fields).

    Returns the row's field count, its Name and Description, and the chosen fields in file order, each
    followed by a tab: b"v1\tv2\t...vk\t".
    """

    def __init__(self, fields: np.ndarray) -> None:
        self.fields = fields  # ascending field indices, all ≥ 2

    def __call__(self, line: bytes) -> tuple[int, bytes, bytes, bytes]:
        row = np.frombuffer(line + b"\t", dtype=np.uint8)  # every field now ends with a tab
        tabs = np.flatnonzero(row == TAB)
        if len(tabs) < 2 or (len(self.fields) and self.fields[-1] >= len(tabs)):
            return len(tabs), b"", b"", b""
        name, description = line[: tabs[0]], line[tabs[0] + 1 : tabs[1]]
        starts = tabs[self.fields - 1] + 1
        lengths = tabs[self.fields] - starts + 1  # the value and its tab
        offsets = np.cumsum(lengths) - lengths
        index = np.arange(offsets[-1] + lengths[-1] if len(lengths) else 0) + np.repeat(starts - offsets, lengths)
        return len(tabs), name, description, row[index].tobytes()


def read_gct(
    path: str | os.PathLike[str],
    *,
    samples: Sequence[str] | None = None,
    keep_gene: Callable[[str], bool] | None = None,
    expected_genes: int | None = None,
    nonnegative: bool = False,
) -> GctData:
    """Stream a GCT, keeping the given samples (in that order) and the rows whose Name `keep_gene` accepts.

    Values must be finite numbers (and ≥ 0 with `nonnegative`); an offending value is named by gene,
    sample and line. `expected_genes` sizes the buffer when the caller knows about how many rows it keeps.
    """
    path = Path(path)
    with _open_lines(path) as lines:
        header = _read_header(lines, path)
        column_of = {s: i for i, s in enumerate(header.samples)}
        samples = list(header.samples) if samples is None else list(samples)
        missing = [s for s in samples if s not in column_of]
        if missing:
            raise ValueError(f"{path}: {len(missing)} requested sample(s) not in the GCT, e.g. {missing[:3]}")
        # Fields are cut in file order; `order` maps them back to the order asked for.
        fields = np.array([column_of[s] + 2 for s in samples], dtype=np.int64)  # after Name, Description
        order = np.argsort(fields, kind="stable")
        pick = _FieldPicker(fields[order])
        block = ValueBlock(path, [samples[i] for i in order], np.argsort(order), nonnegative,
                       capacity=expected_genes or 1024)
        rows = 0
        for line_no, line in _data_lines(lines, header):
            rows += 1
            if keep_gene is not None and not keep_gene(_row_name(line)):
                _check_width(header, line_no, _count_fields(line))
                continue
            count, name, description, chosen = pick(line)
            _check_width(header, line_no, count)
            block.add(line_no, name, description, chosen)
        values = block.finish()
    return GctData(genes=block.genes, descriptions=block.descriptions, samples=samples, values=values,
                   rows_in_file=rows, lines=block.lines)


def iter_gct_names(path: str | os.PathLike[str]) -> Iterator[tuple[str, str]]:
    """Yield (Name, Description) of every row (e.g. to map symbols to Ensembl IDs) without parsing values."""
    path = Path(path)
    with _open_lines(path) as lines:
        header = _read_header(lines, path)
        for line_no, line in _data_lines(lines, header):
            _check_width(header, line_no, _count_fields(line))
            name, description = line.split(b"\t", 2)[:2]
            yield name.decode("utf-8", "replace").strip(), description.decode("utf-8", "replace").strip()
