"""Finding the shared sample data: configured, beside the repository, or beside the one it was cloned from."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bench.shared import locate


def _git(*args: str) -> None:
    subprocess.run(["git", *args], check=True, capture_output=True)


def test_a_clone_elsewhere_finds_the_data_beside_the_repository_it_was_cloned_from(tmp_path: Path) -> None:
    origin = tmp_path / "work" / "main"
    (tmp_path / "work" / "shared").mkdir(parents=True)
    _git("init", "-q", str(origin))
    _git("-C", str(origin), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "x")
    clone = tmp_path / "tmp" / "clone"
    _git("clone", "-q", str(origin), str(clone))
    assert locate(clone, None) == tmp_path / "work" / "shared"
    assert locate(origin, None) == tmp_path / "work" / "shared"
    assert locate(clone, "/elsewhere") == Path("/elsewhere")


def test_without_data_anywhere_it_names_the_place_beside_the_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _git("init", "-q", str(repo))
    assert locate(repo, None) == tmp_path / "shared"
