"""Features an attacker could use to tell a served tile's source without looking at the tissue, and the
cross-validated AUC of each family. Used by `audit_blinding` and the path-symmetry tests; no Django.

Families (the issue's (a)–(d)):
- (a) headers and size: Content-Length and body length, header names and values (the ETag by shape);
- (b) JPEG structure: marker sequence, quantisation and Huffman tables, sampling factors, progressive
  flag, restart interval, APP payloads, bytes after EOI. The padding segments' lengths are left out: they
  are the complement of the compressed image's size, which is content and goes to (d);
- (c) compression history: re-encoding error at several qualities, 8 × 8 blockiness, and the
  periodicity of DCT-coefficient histograms (double quantisation leaves combs), each as the log ratio of
  the measure on the tile to the same measure on its calibration reference: the tile cropped by 4 px
  (off the 8 × 8 grid) and compressed once more with the file's own quantisation tables, the usual
  JPEG-forensics calibration. The reference has the tile's content and one known compression, so the
  ratio cancels the content's own smoothness (a smooth tile re-encodes with little error whatever its
  history) and keeps what the tile's history adds. (Comparing with the bare crop, as before, did not:
  the crop's own error grows with texture, so smooth generators' tiles stood apart by content alone.);
- (d) pixel statistics (mean colour, spread, sharpness, entropy, compressed size): these measure the
  generators, not the blinding, and are reported apart.

AUC: a standardised logistic regression, 5-fold stratified cross-validation (scikit-learn; grouped by
file when a file was dealt more than once), the AUC of each held-out fold averaged; the 95 % interval is
a percentile bootstrap (1,000 resamples of the tiles within each fold, scores kept) of that mean.
Features that never vary are dropped; a family with none left scores exactly 0.5.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, JpegImagePlugin

HISTORY_QUALITIES = (85, 90, 95)  # around the store's q90: lower ones mostly measure texture
CROP = 4  # px: moves the 8 × 8 grid by half a block
FAMILIES = ("a", "b", "c", "d")
FAMILY_NAMES = {"a": "headers and size", "b": "JPEG structure", "c": "compression history",
                "d": "pixel statistics"}
_EPS = 1e-6


# ----------------------------------------------------------------------------------------- (a), (b)

def header_features(body: bytes, headers: Mapping[str, str]) -> dict[str, object]:
    """(a): what the HTTP response says before a pixel is decoded."""
    features: dict[str, object] = {"body_bytes": float(len(body)), "header_names": ",".join(sorted(headers))}
    for name, value in headers.items():
        if name.lower() == "etag":
            features["etag_shape"] = re.sub(r"[0-9a-f]", "h", re.sub(r"[g-zG-Z]", "a", value))
        else:
            features[f"h:{name.lower()}"] = value
    features["content_length"] = float(headers.get("Content-Length", len(body)) or 0)
    return features


def _digest(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()[:12]


def jpeg_structure(data: bytes) -> dict[str, object]:
    """(b): the file's JPEG structure, everything but the compressed image data itself."""
    markers, features = [], {}
    tables = {"dqt": [], "dht": []}
    i = 2 if data[:2] == b"\xff\xd8" else 0
    end = len(data)
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            break
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        payload = data[i + 4:i + 2 + length]
        markers.append(f"{marker:02X}")
        if marker == 0xDB:
            tables["dqt"].append(payload)
        elif marker == 0xC4:
            tables["dht"].append(payload)
        elif marker in (0xC0, 0xC1, 0xC2):
            features["progressive"] = marker == 0xC2
            components = payload[5]
            features["sampling"] = ",".join(f"{payload[7 + 3 * k]:02X}" for k in range(components))
        elif marker == 0xDD:
            features["restart_interval"] = int.from_bytes(payload[:2], "big")
        elif 0xE0 <= marker <= 0xEF:
            features[f"app{marker - 0xE0}"] = _digest(payload)
        elif marker == 0xFE:
            # A comment's text is metadata; its length (padding) is not structure: see the module doc.
            features.setdefault("comment_digests", set()).add(_digest(payload.rstrip(b"\0")))
        if marker == 0xDA:
            break
        i += 2 + length
    eoi = data.rfind(b"\xff\xd9")
    end = eoi + 2 if eoi >= 0 else end
    features["markers"] = "-".join(markers)
    features["dqt"] = _digest(b"".join(tables["dqt"]))
    features["dht"] = _digest(b"".join(tables["dht"]))
    features["trailing_bytes"] = float(len(data) - end)
    if "comment_digests" in features:
        features["comment_digests"] = ",".join(sorted(features["comment_digests"]))
    return features


# ----------------------------------------------------------------------------------------- (c)

def _grey(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def _reencode_error(rgb: np.ndarray, quality: int) -> float:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    with Image.open(buffer) as again:
        return float(np.abs(np.asarray(again, dtype=np.float32) - rgb).mean())


def _blockiness(grey: np.ndarray) -> float:
    """Mean jump across 8-px column/row boundaries over the mean jump elsewhere."""
    dx = np.abs(np.diff(grey, axis=1))
    dy = np.abs(np.diff(grey, axis=0))
    at_x = dx[:, 7::8].mean() + dy[7::8, :].mean()
    other = np.delete(dx, np.s_[7::8], axis=1).mean() + np.delete(dy, np.s_[7::8], axis=0).mean()
    return float(at_x / (other + _EPS))


def _dct_periodicity(grey: np.ndarray) -> float:
    """How comb-like the histograms of low-frequency 8 × 8 DCT coefficients are (double quantisation)."""
    from scipy.fft import dctn

    h, w = (grey.shape[0] // 8) * 8, (grey.shape[1] // 8) * 8
    blocks = (grey[:h, :w] - 128).reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3)
    coefficients = dctn(blocks, axes=(2, 3), norm="ortho")
    scores = []
    for u, v in ((0, 1), (1, 0), (1, 1), (0, 2), (2, 0)):
        values = np.rint(coefficients[:, :, u, v].ravel()).astype(np.int64)
        values = values[np.abs(values) <= 40]
        if len(values) < 16:
            continue
        hist = np.bincount(values + 40, minlength=81).astype(np.float64)
        spectrum = np.abs(np.fft.rfft(hist - hist.mean()))
        scores.append(spectrum[2:].max() / (spectrum[1:].sum() + _EPS))
    return float(np.mean(scores)) if scores else 0.0


def _history_measures(rgb: np.ndarray) -> list[float]:
    grey = _grey(rgb)
    return [*(_reencode_error(rgb, q) for q in HISTORY_QUALITIES), _blockiness(grey), _dct_periodicity(grey)]


HISTORY_NAMES = [*(f"reencode_q{q}" for q in HISTORY_QUALITIES), "blockiness", "dct_periodicity"]


def calibration_reference(rgb: np.ndarray, *, qtables=None, subsampling: int | None = None) -> np.ndarray:
    """The tile's content with one known history: cropped by 4 px (off the 8 × 8 grid, which scrambles
    whatever history it had) and compressed once with the served file's own quantisation tables and
    subsampling (Fridrich's calibration). It has the tile's content and texture, so a measure compared
    with it cancels the content's own smoothness and keeps what the tile's history adds."""
    buffer = io.BytesIO()
    options = {"quality": 90} if qtables is None else {"qtables": qtables}
    if subsampling is not None and subsampling >= 0:
        options["subsampling"] = subsampling
    Image.fromarray(np.ascontiguousarray(rgb[CROP:, CROP:])).save(buffer, format="JPEG", **options)
    with Image.open(buffer) as again:
        return np.asarray(again.convert("RGB"))


def history_features(rgb: np.ndarray, *, qtables=None, subsampling: int | None = None) -> dict[str, float]:
    """(c): each history measure as log(measure on the tile / measure on its calibration reference)."""
    on_tile = _history_measures(rgb)
    reference = _history_measures(calibration_reference(rgb, qtables=qtables, subsampling=subsampling))
    return {name: float(np.log((a + _EPS) / (b + _EPS)))
            for name, a, b in zip(HISTORY_NAMES, on_tile, reference, strict=True)}


# ----------------------------------------------------------------------------------------- (d)

def pixel_features(rgb: np.ndarray, *, compressed_bytes: int) -> dict[str, float]:
    grey = _grey(rgb)
    laplacian = grey[1:-1, 1:-1] * 4 - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] - grey[1:-1, 2:]
    hist = np.bincount(np.clip(grey, 0, 255).astype(np.uint8).ravel(), minlength=256) / grey.size
    hist = hist[hist > 0]
    means = rgb.reshape(-1, 3).mean(axis=0)
    return {"mean_r": float(means[0]), "mean_g": float(means[1]), "mean_b": float(means[2]),
            "grey_sd": float(grey.std()), "sharpness": float(laplacian.var()),
            "entropy": float(-(hist * np.log2(hist)).sum()), "compressed_bytes": float(compressed_bytes)}


# ----------------------------------------------------------------------------------------- a tile

def compressed_size(data: bytes) -> int:
    """Bytes of the file without its comment (padding) segments: the compressed image's own size."""
    size, i = len(data), 2
    while i + 4 <= len(data) and data[i] == 0xFF and data[i + 1] != 0xDA:
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if data[i + 1] == 0xFE:
            size -= 2 + length
        i += 2 + length
    return size


def tile_features(body: bytes, headers: Mapping[str, str]) -> dict[str, dict[str, object]]:
    """Every family's features of one served tile, as a browser received it."""
    with Image.open(io.BytesIO(body)) as image:
        rgb = np.asarray(image.convert("RGB"))
        is_jpeg = image.format == "JPEG"
        qtables = image.quantization if is_jpeg else None
        subsampling = JpegImagePlugin.get_sampling(image) if is_jpeg else None
    return {
        "a": header_features(body, headers),
        "b": jpeg_structure(body),
        "c": history_features(rgb, qtables=qtables, subsampling=subsampling),
        "d": pixel_features(rgb, compressed_bytes=compressed_size(body)),
    }


# ----------------------------------------------------------------------------------------- AUC

@dataclass(frozen=True)
class FamilyAuc:
    family: str
    n: int
    auc: float
    low: float
    high: float

    @property
    def name(self) -> str:
        return FAMILY_NAMES[self.family]

    def line(self) -> str:
        return (f"({self.family}) {self.name:<20} N={self.n:<5} AUC {self.auc:.3f} "
                f"[95% CI {self.low:.3f}–{self.high:.3f}]")

    def to_dict(self) -> dict[str, object]:
        return {"family": self.family, "name": self.name, "n": self.n, "auc": self.auc,
                "ci95": [self.low, self.high]}


def cross_validated_auc(rows: Sequence[Mapping[str, object]], synthetic: Sequence[bool], *, family: str,
                        groups: Sequence[str] | None = None, folds: int = 5, seed: int = 0,
                        resamples: int = 1000) -> FamilyAuc:
    """Out-of-fold AUC of real-vs-synthetic from one family's features, with a bootstrap 95 % interval.

    `groups` (e.g. each file's hash): a file dealt several times stays in one fold, so the classifier is
    never scored on a tile it was trained on.
    """
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = np.asarray(synthetic, dtype=int)
    if len(set(y)) < 2 or min(np.bincount(y)) < folds:
        raise ValueError(f"need at least {folds} real and {folds} synthetic tiles, got {np.bincount(y, minlength=2)}")
    vectors = DictVectorizer(sparse=False).fit_transform([dict(r) for r in rows])
    varying = vectors.std(axis=0) > 0
    if not varying.any():  # nothing differs between any two tiles: no classifier can do better than chance
        return FamilyAuc(family=family, n=len(y), auc=0.5, low=0.5, high=0.5)
    vectors = vectors[:, varying]
    if groups is None:
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    else:
        splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    # AUC within each fold, averaged: folds' models differ in intercept, so pooled scores would mix scales.
    tests = []
    for train, test in splitter.split(vectors, y, groups):
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(vectors[train], y[train])
        tests.append((y[test], model.predict_proba(vectors[test])[:, 1]))
    auc = float(np.mean([roc_auc_score(truth, score) for truth, score in tests if len(set(truth)) == 2]))
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(resamples):
        aucs = []
        for truth, score in tests:
            pick = rng.integers(0, len(truth), len(truth))
            if 0 < truth[pick].sum() < len(pick):
                aucs.append(roc_auc_score(truth[pick], score[pick]))
        if aucs:
            boot.append(np.mean(aucs))
    low, high = np.percentile(boot, [2.5, 97.5])
    return FamilyAuc(family=family, n=len(y), auc=auc, low=float(low), high=float(high))


def audit_families(features: Sequence[Mapping[str, Mapping[str, object]]], synthetic: Sequence[bool],
                   *, groups: Sequence[str] | None = None, seed: int = 0) -> dict[str, FamilyAuc]:
    """AUC per family from `tile_features` outputs."""
    return {family: cross_validated_auc([f[family] for f in features], synthetic, family=family, groups=groups,
                                        seed=seed)
            for family in FAMILIES}
