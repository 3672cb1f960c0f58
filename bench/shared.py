"""Where the public sample data lives (OpenRTB samples and schemas, the CDNOW customer data).

It is not copied into the repository: ``RTB_SHARED`` names the folder, and by default it is ``shared/``
beside the repository, or beside the repository it was cloned from when that is a folder on this
machine (a clone in a temporary folder). The tests and ``rtb bench`` read it from here, and only from here.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def locate(repo: Path, configured: str | None) -> Path:
    """``configured``, else ``shared/`` beside ``repo``, else beside the local repository it was cloned from."""
    if configured:
        return Path(configured)
    beside = repo.parent / "shared"
    if beside.is_dir():
        return beside
    try:
        origin = subprocess.run(["git", "-C", str(repo), "config", "--get", "remote.origin.url"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        origin = ""
    if origin and Path(origin).is_dir() and (Path(origin).resolve().parent / "shared").is_dir():
        return Path(origin).resolve().parent / "shared"
    return beside


SHARED = locate(REPO, os.environ.get("RTB_SHARED"))
OPENRTB = SHARED / "openrtb"
IAB_SAMPLES = OPENRTB / "samples" / "iab-2.6-spec"
BANNER = IAB_SAMPLES / "request-1-simple-banner.json"
STRICT_RESPONSE_SCHEMA = OPENRTB / "schema" / "openrtb26-BidResponse-strict.schema.json"
LTV = SHARED / "ltv"


def missing() -> str | None:
    """Why the shared data cannot be read, or None when it is in place."""
    if BANNER.is_file() and LTV.is_dir():
        return None
    return (f"the shared sample data is not at {SHARED} (no {BANNER.relative_to(SHARED)} or ltv/ there): put "
            "the project's shared/ folder beside the repository (or the one it was cloned from), or set RTB_SHARED "
            "to where it is")
