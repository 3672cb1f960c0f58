"""Versioned model artefacts: numpy arrays in ``<name>.npz`` plus JSON metadata in ``<name>.json``.

The metadata records the format version, the model kind, a version string, the creation time, the
SHA-256 of the training data and of the .npz, the training metrics and the model's parameters. The
.npz is written first and the .json last (each through a rename), so a half-written artefact has no
metadata; ``load_artefact`` checks the .npz against its recorded hash before numpy reads it, then the
arrays' names, types, shapes and finiteness, and refuses anything else with an ``ArtefactError``
that names the file and the problem.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import zipfile
from pathlib import Path
from typing import Any, Literal

import msgspec
import numpy as np
from numpy.typing import NDArray

from bidder.models.errors import ArtefactError

FORMAT_VERSION = 1
Kind = Literal["ctr", "ltv"]
# Per kind: array name -> required shape (-1 = any length).
ARRAYS: dict[str, dict[str, tuple[int, ...]]] = {
    "ctr": {"weight": (-1,)},
    "ltv": {"bg": (4,), "gg": (3,)},
}


class Meta(msgspec.Struct, frozen=True):
    format_version: int
    kind: Kind
    version: str
    created: str  # ISO 8601 UTC
    data_sha256: str
    arrays_sha256: str
    metrics: dict[str, float] = {}
    params: dict[str, Any] = {}


class Artefact(msgspec.Struct, frozen=True):
    path: Path  # the .json
    meta: Meta
    arrays: dict[str, NDArray[np.float64]]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_artefact(
    out_dir: str | Path,
    kind: Kind,
    arrays: dict[str, NDArray[np.float64]],
    data_sha256: str,
    metrics: dict[str, float],
    params: dict[str, Any],
    now: dt.datetime | None = None,
) -> Path:
    """Write ``<kind>-<UTC time>-<hash>.npz`` and ``.json`` into ``out_dir``; returns the .json path."""
    created = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]  # numpy's stub misreads **kwds
    blob = buf.getvalue()
    digest = sha256_hex(blob)
    version = f"{kind}-{created.strftime('%Y%m%dT%H%M%SZ')}-{digest[:8]}"
    meta = Meta(
        format_version=FORMAT_VERSION, kind=kind, version=version, created=created.isoformat(),
        data_sha256=data_sha256, arrays_sha256=digest, metrics=metrics, params=params,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_atomic(out / f"{version}.npz", blob)
    _write_atomic(out / f"{version}.json", msgspec.json.format(msgspec.json.encode(meta)) + b"\n")
    return out / f"{version}.json"


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_artefact(path: str | Path, kind: Kind | None = None) -> Artefact:
    """Read and verify an artefact given its .json or .npz path; raises ArtefactError on any problem."""
    p = Path(path)
    meta_path, npz_path = p.with_suffix(".json"), p.with_suffix(".npz")

    def fail(problem: str, where: Path = meta_path) -> ArtefactError:
        return ArtefactError(where, problem)

    try:
        raw = meta_path.read_bytes()
    except OSError as exc:
        raise fail(f"cannot read artefact metadata: {exc.strerror}") from exc
    try:
        version = msgspec.json.decode(raw, type=dict[str, Any]).get("format_version")
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise fail(f"metadata is not a JSON object ({exc}); the file is corrupt or truncated") from exc
    if version != FORMAT_VERSION:
        raise fail(
            f"artefact format version {version!r} is not supported (this build reads {FORMAT_VERSION})"
        )
    try:
        meta = msgspec.json.decode(raw, type=Meta)
    except msgspec.ValidationError as exc:
        raise fail(f"bad metadata: {exc}") from exc
    if kind is not None and meta.kind != kind:
        raise fail(f"is a {meta.kind!r} model, expected a {kind!r} model")
    try:
        blob = npz_path.read_bytes()
    except OSError as exc:
        raise fail(f"cannot read artefact arrays: {exc.strerror}", npz_path) from exc
    if sha256_hex(blob) != meta.arrays_sha256:
        problem = "SHA-256 does not match the metadata: the file is corrupt, truncated or replaced"
        raise fail(problem, npz_path)
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise fail(f"cannot read the arrays: {exc}", npz_path) from exc
    for name, shape in ARRAYS[meta.kind].items():
        a = arrays.get(name)
        if a is None:
            raise fail(f"has no array {name!r}", npz_path)
        fits = a.ndim == len(shape) and all(s in (-1, n) for s, n in zip(shape, a.shape, strict=True))
        if a.dtype != np.float64 or not fits:
            raise fail(f"array {name!r} is {a.dtype}{list(a.shape)}, expected float64{list(shape)}", npz_path)
        if not np.all(np.isfinite(a)):
            raise fail(f"array {name!r} holds NaN or infinite values", npz_path)
    return Artefact(path=meta_path, meta=meta, arrays=arrays)
