from __future__ import annotations

import numpy as np

from bench import shared
from bidder.campaign import BidSettings, Budget, Campaign, Creative
from bidder.value import Lines

LTV_DATA = shared.LTV


def campaign(cid: str, value: float = 20.0) -> Campaign:
    return Campaign(
        id=cid, advertiser="brand.com", budget=Budget(total=100.0),
        bid=BidSettings(max_cpm=5.0, value_per_conversion=value),
        creatives=[Creative(id=f"{cid}-cr", w=300, h=250, adm="<a/>")],
    )


def lines_of(campaigns: list[Campaign], per_campaign: int = 1) -> Lines:
    idx = np.repeat(np.arange(len(campaigns), dtype=np.int32), per_campaign)
    return Lines(campaigns=campaigns, campaign=idx, fmt=np.zeros(idx.shape[0], dtype=np.int32))

