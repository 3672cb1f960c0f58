"""Where the public sample data lives (OpenRTB samples and schemas, the CDNOW customer data).

It is not copied into the repository: ``RTB_SHARED`` names the folder, and by default it is ``shared/``
beside the repository. The tests and ``rtb bench`` read it from here, and only from here.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RTB_SHARED") or REPO.parent / "shared")
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
            "the project's shared/ folder beside the repository, or set RTB_SHARED to where it is")
