"""The Dockerfile passes hadolint and keeps the properties the README promises."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"


def test_dockerfile_passes_hadolint() -> None:
    out = subprocess.run(["hadolint", str(DOCKERFILE)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_dockerfile_is_multi_stage_non_root_with_healthcheck() -> None:
    text = DOCKERFILE.read_text()
    assert text.count("\nFROM ") + text.startswith("FROM ") >= 2
    assert "\nUSER 10001" in text  # the rtb user, by number so that hosts can resolve it
    assert "HEALTHCHECK" in text and "/healthz" in text
    entry = [line for line in text.splitlines() if line.startswith("ENTRYPOINT")]
    assert entry == ['ENTRYPOINT ["rtb", "bidder"]']  # exec form
