from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bidder.models.artefact import load_artefact, save_artefact, sha256_hex
from bidder.models.errors import ArtefactError


def save(tmp_path: Path, weight: np.ndarray | None = None) -> Path:
    w = np.linspace(-1, 1, 16) if weight is None else weight
    return save_artefact(tmp_path, "ctr", {"weight": w}, sha256_hex(b"data"), {"auc": 0.7}, {"bits": 4})


def test_artefact_round_trips_arrays_and_metadata(tmp_path: Path) -> None:
    path = save(tmp_path)
    art = load_artefact(path, "ctr")
    assert np.array_equal(art.arrays["weight"], np.linspace(-1, 1, 16))
    assert art.meta.kind == "ctr" and art.meta.format_version == 1
    assert art.meta.data_sha256 == sha256_hex(b"data") and art.meta.metrics == {"auc": 0.7}
    assert art.meta.version.startswith("ctr-") and path.name == f"{art.meta.version}.json"
    assert load_artefact(path.with_suffix(".npz")).meta == art.meta


def test_corrupt_arrays_are_refused(tmp_path: Path) -> None:
    path = save(tmp_path)
    npz = path.with_suffix(".npz")
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    npz.write_bytes(bytes(data))
    with pytest.raises(ArtefactError, match=r"\.npz: SHA-256 does not match"):
        load_artefact(path)


def test_truncated_arrays_are_refused(tmp_path: Path) -> None:
    path = save(tmp_path)
    npz = path.with_suffix(".npz")
    npz.write_bytes(npz.read_bytes()[:100])
    with pytest.raises(ArtefactError, match="corrupt, truncated"):
        load_artefact(path)


def test_truncated_metadata_is_refused(tmp_path: Path) -> None:
    path = save(tmp_path)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ArtefactError, match=r"\.json: metadata is not a JSON object"):
        load_artefact(path)


def test_other_format_version_is_refused(tmp_path: Path) -> None:
    path = save(tmp_path)
    meta = json.loads(path.read_text())
    meta["format_version"] = 2
    path.write_text(json.dumps(meta))
    with pytest.raises(ArtefactError, match="format version 2 is not supported"):
        load_artefact(path)


def test_wrong_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ArtefactError, match="is a 'ctr' model, expected a 'ltv' model"):
        load_artefact(save(tmp_path), "ltv")


def test_missing_artefact_is_refused_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(ArtefactError, match="nope.json: cannot read artefact metadata"):
        load_artefact(tmp_path / "nope.json")


def test_non_finite_or_mistyped_arrays_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ArtefactError, match="holds NaN or infinite"):
        load_artefact(save(tmp_path / "a", np.array([0.0, np.nan])))
    with pytest.raises(ArtefactError, match="array 'weight' is int64"):
        load_artefact(save(tmp_path / "b", np.arange(4)))
