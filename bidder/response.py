"""Writing the BidResponse: JSON assembled from fragments pre-encoded when campaigns load.

Everything about a bid that depends only on the line (markup, adomain, ids, categories, size, mtype) is
JSON-encoded once per line; per bid we only splice in the bid id, imp id, price, notice URLs, deal and
the model's explanation. This is the same document ``bidder.openrtb.BidResponse`` describes (the tests
compare the two) at a fraction of the cost of building and encoding Structs per request.
"""

from __future__ import annotations

import math

import msgspec

from bidder.index import Index
from bidder.openrtb import MTYPE

_enc = msgspec.json.encode


def _s(value: str) -> str:
    """A JSON string literal."""
    return _enc(value).decode()


def _num(x: float) -> str:
    return repr(x) if math.isfinite(x) else "0.0"


class Writer:
    def __init__(self, index: Index, default_seat: str, model_version: str) -> None:
        self._line: list[str] = []
        for line, cr in enumerate(index.creatives):
            c = index.campaigns[int(index.lines.campaign[line])]
            static: dict[str, object] = {}
            if not cr.nurl_markup:
                static["adm"] = cr.adm
            static["adomain"] = [c.advertiser]
            if c.bundle:
                static["bundle"] = c.bundle
            static["cid"] = c.id
            static["crid"] = cr.id
            if cr.cat:
                static["cat"] = cr.cat
            if cr.attr:
                static["attr"] = cr.attr
            if cr.w:
                static["w"] = cr.w
            if cr.h:
                static["h"] = cr.h
            static["mtype"] = MTYPE[cr.format]
            self._line.append("," + _enc(static).decode()[1:-1])
        self._seat = [_s(c.seat or default_seat) for c in index.campaigns]
        self._ext_tail = f',"model":{_s(model_version)},"source":"'

    def seat(self, campaign: int) -> str:
        return self._seat[campaign]

    def bid(self, bid_id: str, imp_id: str, price: float, urls: tuple[str, str, str], deal: str | None,
            line: int, value_cpm: float, p: float, ltv: float, source: str) -> str:
        """One Bid object. ``bid_id`` and the URLs are made of URL-safe characters only."""
        nurl, burl, lurl = urls
        deal_part = f',"dealid":{_s(deal)}' if deal is not None else ""
        return (f'{{"id":"{bid_id}","impid":{_s(imp_id)},"price":{_num(price)},'
                f'"nurl":"{nurl}","burl":"{burl}","lurl":"{lurl}"{deal_part}{self._line[line]},'
                f'"ext":{{"rtb":{{"value_cpm":{_num(value_cpm)},"p_conversion":{_num(p)},"ltv":{_num(ltv)}'
                f'{self._ext_tail}{source}"}}}}}}')

    @staticmethod
    def response(request_id: str, seats: dict[str, list[str]], cur: str) -> bytes:
        seatbids = ",".join(f'{{"bid":[{",".join(bids)}],"seat":{seat}}}' for seat, bids in seats.items())
        return f'{{"id":{_s(request_id)},"seatbid":[{seatbids}],"cur":"{cur}"}}'.encode()
