"""Writing the BidResponse: JSON assembled from fragments pre-encoded when campaigns load.

Everything about a bid that depends only on the line (markup, adomain, ids, categories, size, mtype, and
its ids as signed and as quoted in the notice URLs) is encoded once per line (``parts``); per bid we only
splice in the bid id, imp id, price, the signed notice query, deal and the model's explanation. This is
the same document ``bidder.openrtb.BidResponse`` describes (the tests compare the two) at a fraction of
the cost of building and encoding Structs per request.

The bidder writes with ``bidder._native.Writer`` (``_writer.c``), which also signs; ``WriterPy`` is its
Python twin, with the same methods and output to the byte, which the tests compare it with.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import msgspec

from bidder._native import Writer
from bidder.index import Index
from bidder.notices import Signer, query_py, url_safe
from bidder.openrtb import MTYPE

__all__ = ["Parts", "Writer", "WriterPy", "parts"]

_enc = msgspec.json.encode


class Parts(NamedTuple):
    """What a writer is built from, encoded once per campaign load: ``Writer(hmac, *parts)``."""

    lines: tuple[tuple[bytes, bytes, bytes], ...]  # per line: ids as signed, ids as quoted, static members
    seats: tuple[bytes, ...]  # per campaign: its seat as a JSON string
    win: bytes  # '"nurl":"<base>/notice/win?', as it sits in the JSON
    bill: bytes
    loss: bytes
    ext_tail: bytes  # ',"model":"<version>","source":"'


def parts(index: Index, default_seat: str, model_version: str, notice_base: str) -> Parts:
    lines = []
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
        signed, quoted = Signer.line(c.id, cr.id)
        lines.append((signed.encode(), quoted.encode(), b"," + _enc(static)[1:-1]))
    base = _enc(notice_base.rstrip("/"))[1:-1]  # the base URL as it sits inside a JSON string
    return Parts(tuple(lines), tuple(_enc(c.seat or default_seat) for c in index.campaigns),
                 b'"nurl":"' + base + b"/notice/win?", b'"burl":"' + base + b"/notice/bill?",
                 b'"lurl":"' + base + b"/notice/loss?", b',"model":' + _enc(model_version) + b',"source":"')


def _num(x: float) -> str:
    x = float(x)
    return repr(x) if math.isfinite(x) else "0.0"


class WriterPy:
    """``Writer`` in Python, signing with ``secret``."""

    def __init__(self, secret: bytes, p: Parts) -> None:
        self._secret = secret
        self._p = p

    def bid(self, bid_id: str, imp_id: str, line: int, price: float, cur: str, expiry: str, test: str,
            deal: str | None, value_micros: int, p: float, ltv: float, source: str) -> bytes:
        """One Bid object. ``bid_id``, ``cur``, ``expiry``, ``test`` ("0"/"1") and ``source`` must be
        URL- and JSON-safe as they are (ours always are); the model's ``p`` and ``ltv`` may not be finite."""
        if not math.isfinite(price):
            raise ValueError(f"Writer.bid: price must be finite, got {price!r}")
        signed, quoted, static = (b.decode() for b in self._p.lines[line])
        price_text = repr(float(price))
        q = query_py(self._secret, bid_id, imp_id, url_safe(imp_id), signed, quoted, price_text, cur, expiry, test)
        win, bill, loss, ext_tail = (b.decode() for b in self._p[2:])
        deal_part = f',"dealid":{_enc(deal).decode()}' if deal is not None else ""
        return (f'{{"id":"{bid_id}","impid":{_enc(imp_id).decode()},"price":{price_text},{win}{q}",{bill}{q}",'
                f'{loss}{q}&l=${{AUCTION_LOSS}}"{deal_part}{static},"ext":{{"rtb":{{"value_cpm":'
                f'{value_micros / 1e6!r},"p_conversion":{_num(p)},"ltv":{_num(ltv)}{ext_tail}{source}"}}}}}}').encode()

    def response(self, request_id: str, bids: list[tuple[int, bytes]], cur: str) -> bytes:
        """The BidResponse for ``bids``, each (campaign, Bid object), grouped in one seatbid per seat."""
        seats: dict[bytes, list[bytes]] = {}
        for ci, bid in bids:
            seats.setdefault(self._p.seats[ci], []).append(bid)
        seatbids = b",".join(b'{"bid":[' + b",".join(b) + b'],"seat":' + seat + b"}" for seat, b in seats.items())
        return b'{"id":' + _enc(request_id) + b',"seatbid":[' + seatbids + b'],"cur":"' + cur.encode() + b'"}'
