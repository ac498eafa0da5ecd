"""Serving a tile's bytes blinded: the one function every page that shows a catalog tile calls.

What a browser receives for any tile, real or synthetic, has
- the same length: the JPEG is padded to `served_size()` bytes (`RNAGAN_TILE_SERVED_BYTES`) with
  comment (COM) segments placed after the header segments, which every decoder skips. Every file
  carries the same number of padding segments, so the marker sequence is one for all tiles; only
  their length differs, and it is the complement of the compressed image's own size, which is a
  property of the pixels anyone holding the file can measure anyway;
- the same headers, and nothing after the end-of-image marker;
- an ETag made from a caller's key (e.g. game and round) keyed with the site secret, never from the
  file, so the tag cannot tell two tiles apart or follow one tile across games.

Metadata segments (APP1–APP13, APP15: EXIF, XMP, ICC, maker notes; and comments) are dropped before
padding; APP0 (JFIF) and APP14 (Adobe colour transform) stay because they tell a decoder how to decode.

Callers decide *whether* a tile may be seen (a quiz round that is not yet current answers 404 before
this module is reached); this module decides *how* it is sent.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse

log = logging.getLogger(__name__)

MEDIA_TYPE = "image/jpeg"
CACHE_CONTROL = "private, max-age=31536000, immutable"
# A 256² tile at q90 4:2:0 is 15–25 kB for H&E (up to ~35 kB for the busiest fields); 48 KiB leaves room.
DEFAULT_SERVED_BYTES = 48 * 1024
_SEGMENT_MAX = 2 + 65535  # marker + the largest length field a segment can hold
_KEPT_APP_MARKERS = {0xE0, 0xEE}
_SOI, _EOI = b"\xff\xd8", b"\xff\xd9"


class TileTooLarge(ValueError):
    """A tile whose JPEG does not fit in the fixed served size; the message names the tile."""


class NotAJpeg(ValueError):
    """Bytes that are not a well-formed baseline/progressive JPEG; the message names the tile."""


def served_size() -> int:
    """The one Content-Length of every served tile (`RNAGAN_TILE_SERVED_BYTES`)."""
    return int(getattr(settings, "RNAGAN_TILE_SERVED_BYTES", DEFAULT_SERVED_BYTES))


def padding_segments(size: int) -> int:
    """How many COM segments every file of this served size carries (one unless size > 64 KiB)."""
    return max(1, -(-size // _SEGMENT_MAX))


def _split(data: bytes, name: str) -> tuple[list[bytes], bytes]:
    """(header segments before the first scan, the scan(s) up to and including the last EOI)."""
    if data[:2] != _SOI:
        raise NotAJpeg(f"{name}: not a JPEG (no start-of-image marker)")
    segments: list[bytes] = []
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise NotAJpeg(f"{name}: malformed JPEG header at byte {i}")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xDA:
            end = data.rfind(_EOI)
            if end < i:
                raise NotAJpeg(f"{name}: JPEG without an end-of-image marker")
            # Whatever follows EOI ("trailing bytes") is dropped: it would be a per-file feature.
            return segments, data[i:end + 2]
        length = int.from_bytes(data[i + 2:i + 4], "big")
        segments.append(data[i:i + 2 + length])
        i += 2 + length
    raise NotAJpeg(f"{name}: JPEG without a scan")


def jpeg_without_metadata(data: bytes, *, name: str = "tile") -> bytes:
    """The JPEG with metadata segments and trailing bytes removed; the compressed image is untouched."""
    segments, scan = _split(data, name)
    kept = [s for s in segments if not (0xE0 <= s[1] <= 0xEF or s[1] == 0xFE) or s[1] in _KEPT_APP_MARKERS]
    return _SOI + b"".join(kept) + scan


def blinded_jpeg(data: bytes, *, size: int | None = None, name: str = "tile") -> bytes:
    """The bytes served for a tile: metadata stripped, padded to exactly `size` (default `served_size()`).

    Raises TileTooLarge when the stripped JPEG plus its padding segments exceeds `size`.
    """
    size = served_size() if size is None else size
    segments, scan = _split(data, name)
    header = [s for s in segments if s[1] in _KEPT_APP_MARKERS]
    rest = [s for s in segments if not (0xE0 <= s[1] <= 0xEF or s[1] == 0xFE)]
    count = padding_segments(size)
    natural = 2 + sum(map(len, header)) + sum(map(len, rest)) + len(scan)
    pad = size - natural
    if pad < 4 * count:
        raise TileTooLarge(
            f"{name}: {natural + 4 * count:,} bytes with padding, over RNAGAN_TILE_SERVED_BYTES={size:,}; "
            "raise the setting (every tile is served at that size)"
        )
    pieces = [pad // count + (1 if k < pad % count else 0) for k in range(count)]
    padding = b"".join(b"\xff\xfe" + (p - 2).to_bytes(2, "big") + bytes(p - 4) for p in pieces)
    out = _SOI + b"".join(header) + padding + b"".join(rest) + scan
    assert len(out) == size
    return out


def tile_fits(data: bytes, *, size: int | None = None) -> bool:
    """Whether a stored tile can be served at the fixed size (checked when tiles enter the catalog)."""
    try:
        blinded_jpeg(data, size=size)
    except TileTooLarge:
        return False
    return True


def blinded_etag(key: str) -> str:
    """A strong ETag from the caller's key (never the tile), keyed with the site secret."""
    digest = hashlib.blake2b(key.encode(), key=settings.SECRET_KEY.encode()[:64], digest_size=16)
    return f'"{digest.hexdigest()}"'


def blinded_tile_response(*, path_or_bytes: str | os.PathLike[str] | bytes, request: HttpRequest,
                          etag_key: str) -> HttpResponse:
    """The HTTP response for one tile, identical in length and headers whatever the tile.

    `path_or_bytes`: the stored JPEG (a path, or its bytes). `etag_key`: what the tag may depend on,
    e.g. "play:<game token>:<round>"; never pass anything derived from the tile. A request whose
    If-None-Match carries the tag gets 304 without the file being read. Raises TileTooLarge or
    NotAJpeg (both ValueError) for a stored tile that cannot be served blinded.
    """
    etag = blinded_etag(etag_key)
    if request.headers.get("If-None-Match") == etag:
        response = HttpResponse(status=304)
    else:
        if isinstance(path_or_bytes, bytes):
            data, name = path_or_bytes, "tile"
        else:
            data, name = Path(path_or_bytes).read_bytes(), Path(path_or_bytes).name
        response = HttpResponse(blinded_jpeg(data, name=name), content_type=MEDIA_TYPE)
        response["Content-Length"] = str(served_size())
    # No Last-Modified: a file's date could tell a pregenerated tile from a scanned one.
    response["ETag"] = etag
    response["Cache-Control"] = CACHE_CONTROL
    return response


def blinded_tile_view_response(*, read: Callable[[], bytes], request: HttpRequest, etag_key: str,
                               name: str) -> HttpResponse:
    """What a tile view returns once it has decided the tile may be seen: `read` runs only when the
    browser lacks the tile (a matching If-None-Match is answered 304 unread), and a stored tile that
    cannot be served blinded is logged and answers 404 — a catalog or settings error, never the viewer's,
    and the same 404 whatever the tile's source."""
    if request.headers.get("If-None-Match") == blinded_etag(etag_key):
        return blinded_tile_response(path_or_bytes=b"", request=request, etag_key=etag_key)
    try:
        return blinded_tile_response(path_or_bytes=read(), request=request, etag_key=etag_key)
    except ValueError as exc:  # TileTooLarge / NotAJpeg
        log.error("cannot serve tile %s blinded: %s", name, exc)
        raise Http404("No such tile.") from None
