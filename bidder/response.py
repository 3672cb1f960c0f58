"""Writing the BidResponse: JSON assembled from fragments pre-encoded when campaigns load.

Everything about a bid that depends only on the line (markup, adomain, ids, categories, size, mtype) is
JSON-encoded once per line; per bid we only splice in the bid id, imp id, price, notice URLs, deal and
the model's explanation. This is the same document ``bidder.openrtb.BidResponse`` describes (the tests
compare the two) at a fraction of the cost of building and encoding Structs per request.
"""

from __future__ import annotations

import functools
import math

import msgspec

from bidder.index import Index, remember
from bidder.notices import url_safe
from bidder.openrtb import MTYPE

_enc = msgspec.json.encode


def _s(value: str) -> str:
    """A JSON string literal."""
    return _enc(value).decode()


def _num(x: float) -> str:
    return repr(x) if math.isfinite(x) else "0.0"


class Writer:
    __slots__ = ("_bill", "_ext_tail", "_exts", "_line", "_loss", "_prices", "_seat", "_win")

    def __init__(self, index: Index, default_seat: str, model_version: str, notice_base: str) -> None:
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
        # Formatting floats costs more than finding them again: prices and model outputs repeat.
        self._prices: dict[int, str] = {}
        self._exts: dict[tuple[int, float, float, str], str] = {}
        base = _enc(notice_base).decode()[1:-1]  # the base URL as it sits inside a JSON string
        self._win, self._bill, self._loss = (f'"nurl":"{base}/notice/win?', f'"burl":"{base}/notice/bill?',
                                             f'"lurl":"{base}/notice/loss?')

    @staticmethod
    @functools.lru_cache(maxsize=1024)
    def imp_id(imp_id: str) -> tuple[str, str]:
        """An imp id as a JSON string and as a query-string value (most requests say "1")."""
        return _s(imp_id), url_safe(imp_id)

    def usd(self, micros: int) -> str:
        """A USD amount in micros as the JSON number (and query-string value) we write for it."""
        text = self._prices.get(micros)
        if text is None:
            text = repr(micros / 1e6)
            remember(self._prices, micros, text)
        return text

    def bid(self, bid_id: str, imp_json: str, price: str, query: str, deal: str | None, line: int,
            value_micros: int, p: float, ltv: float, source: str) -> str:
        """One Bid object. ``bid_id`` and ``query`` (``Signer.query``) are made of URL-safe characters
        only; ``price`` is a float's repr; the model's ``p`` and ``ltv`` may not be finite."""
        deal_part = f',"dealid":{_s(deal)}' if deal is not None else ""
        key = (value_micros, p, ltv, source)
        ext = self._exts.get(key)
        if ext is None:
            ext = (f'"ext":{{"rtb":{{"value_cpm":{self.usd(value_micros)},"p_conversion":{_num(p)},'
                   f'"ltv":{_num(ltv)}{self._ext_tail}{source}"}}}}}}')
            remember(self._exts, key, ext)
        return (f'{{"id":"{bid_id}","impid":{imp_json},"price":{price},{self._win}{query}",'
                f'{self._bill}{query}",{self._loss}{query}&l=${{AUCTION_LOSS}}"{deal_part}{self._line[line]},{ext}')

    def response(self, request_id: str, bids: list[tuple[int, str]], cur: str) -> bytes:
        """The BidResponse for ``bids``, each (campaign, Bid object), grouped in one seatbid per seat."""
        if len(bids) == 1:
            ci, bid = bids[0]
            seatbids = f'{{"bid":[{bid}],"seat":{self._seat[ci]}}}'
        else:
            seats: dict[str, list[str]] = {}
            for ci, bid in bids:
                seats.setdefault(self._seat[ci], []).append(bid)
            seatbids = ",".join(f'{{"bid":[{",".join(b)}],"seat":{seat}}}' for seat, b in seats.items())
        return f'{{"id":{_s(request_id)},"seatbid":[{seatbids}],"cur":"{cur}"}}'.encode()
