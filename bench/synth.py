"""Synthetic campaigns for benchmarks: N active campaigns of which a chosen share match a request.

Matching campaigns look like the IAB simple-banner example wants (a 300x250 creative, no geo or device
constraint, a category that covers IAB3-1, no deal); the others miss it for realistic reasons (other
countries, device types, sizes, domains or deals), so the index has real work to do.
"""

from __future__ import annotations

import random
from typing import Any

SIZES = [(728, 90), (320, 50), (160, 600), (300, 600), (970, 250), (320, 100), (468, 60)]
COUNTRIES = ["USA", "GBR", "DEU", "FRA", "CAN", "AUS", "JPN", "BRA", "IND", "ESP"]


def campaigns(n: int, match_share: float = 0.05, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    n_match = round(n * match_share)
    for i in range(n):
        matches = i < n_match
        cid = f"c{i:05d}"
        targeting: dict[str, Any] = {}
        w, h = 300, 250
        if matches:
            if rng.random() < 0.5:
                targeting["categories"] = rng.choice([["IAB3"], ["IAB3", "IAB19"], ["IAB3-1"]])
            if rng.random() < 0.3:
                targeting["blocked_domains"] = ["spam.example"]
        else:
            miss = rng.randrange(5)
            if miss == 0:
                targeting["countries"] = rng.sample(COUNTRIES, 2)
            elif miss == 1:
                targeting["device_types"] = [rng.choice([1, 3, 4, 5, 6, 7])]
            elif miss == 2:
                w, h = rng.choice(SIZES)
            elif miss == 3:
                targeting["domains"] = [f"pub{rng.randrange(500)}.example"]
            else:
                targeting["deal_ids"] = [f"deal-{rng.randrange(100)}"]
        out.append({
            "id": cid,
            "advertiser": f"brand{i % 997}.com",
            "budget": {"total": 1_000_000.0, "daily": 50_000.0},
            "bid": {
                "max_cpm": round(rng.uniform(0.5, 8.0), 2),
                "target_roas": round(rng.uniform(0.8, 3.0), 2),
                "value_per_conversion": round(rng.uniform(5, 200), 2),
                "conversion_rate": {"default": round(rng.uniform(1e-5, 1e-3), 6)},
            },
            "targeting": targeting,
            "creatives": [{"id": f"{cid}-a", "format": "banner", "w": w, "h": h, "cat": ["IAB22"],
                           "adm": f"<a href='https://brand{i}.com'><img src='https://cdn.example/{cid}.png'></a>"}],
        })
    rng.shuffle(out)
    return out
