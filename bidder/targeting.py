"""The request-level mask: the lines a request's own signals allow, and the model context they give.

``RequestMask`` (``bidder/_targeting.c``) computes it over a copy of the index's bitsets as machine words,
in one call per request; ``request_mask_py`` is its Python twin, over the index's ``int`` bitsets, and
the tests compare the two. ``tables`` lays the index out for the C side once per campaign load: every
bitset a request can select becomes one row of ``nwords`` little-endian 64-bit words, and each lookup
table maps a value to its row. A dimension's rows already hold ``X_any | X[v]``, so that a request
costs one dictionary lookup and one pass over the words per dimension.
"""

from __future__ import annotations

from typing import NamedTuple, TypeVar

from bidder._native import RequestMask
from bidder.index import Index, _Dim
from bidder.openrtb import BidRequest, privacy
from bidder.value import Context

__all__ = ["RequestMask", "Rows", "Tables", "request_mask_py", "tables"]

K = TypeVar("K")
Dim = tuple[int, dict[object, int]]  # (row of the lines a value nobody lists gets, value -> its row)


class Tables(NamedTuple):
    """What ``RequestMask`` is built from, after the index it reads (``RequestMask(index, *tables, ...)``)."""

    words: bytes  # every row, one after the other
    nwords: int  # 64-bit words per row
    country: Dim | None  # None: no campaign constrains the dimension
    region: Dim | None
    device_type: Dim | None
    os: Dim | None
    hours: tuple[int, ...] | None  # row per local hour; None when no campaign limits hours
    no_inventory: int  # row: lines for a request with neither site nor app
    categories: bool  # whether any campaign targets site or app categories
    creative_cat: dict[str, int]  # bcat
    advertiser: dict[str, int]  # badv
    advertised_app: dict[str, int]  # bapp
    seat: dict[str, int]  # wseat, bseat


class Rows:
    """Bitsets laid out for the C side: each becomes one row of ``nwords`` little-endian 64-bit words,
    numbered as it is added; ``words()`` joins them all."""

    def __init__(self, lines: int) -> None:
        self.nwords = max(1, (lines + 63) // 64)
        self._rows: list[bytes] = []

    def row(self, bits: int) -> int:
        self._rows.append(bits.to_bytes(self.nwords * 8, "little"))
        return len(self._rows) - 1

    def table(self, t: dict[K, int]) -> dict[K, int]:
        """Value -> the row of its bitset."""
        return {v: self.row(bits) for v, bits in t.items()}

    def words(self) -> bytes:
        return b"".join(self._rows)


def tables(index: Index) -> Tables:
    rows = Rows(index.n)
    row = rows.row

    def dim(d: _Dim) -> Dim | None:
        if not d.by:
            return None
        return row(d.any), {v: row(d.any | bits) for v, bits in d.by.items()}

    fields = (
        dim(index.country), dim(index.region), dim(index.device_type), dim(index.os),
        tuple(row(h) for h in index.hours) if index.hourly else None,
        row(index.inventory_any & index.category.any), bool(index.category.by),
        rows.table(index.creative_cat), rows.table(index.advertiser), rows.table(index.advertised_app),
        rows.table(index.seat),
    )
    return Tables(rows.words(), rows.nwords, *fields)  # the rows, once every field has made its own


def request_mask_py(idx: Index, req: BidRequest, now: float, live: int) -> tuple[int, Context]:
    """Twin of ``RequestMask.__call__``: lines of ``live`` that the request-level signals allow, and
    the model context those signals give."""
    m = live
    dev = req.device
    user = req.user
    geo = dev.geo if dev is not None else None
    if geo is None and user is not None:
        geo = user.geo
    country = region = os_name = ""
    offset = devtype = 0
    if geo is not None:
        if geo.country:
            country = geo.country.upper()
        if geo.region:
            region = geo.region.upper()
        if geo.utcoffset is not None:
            offset = geo.utcoffset  # minutes
    if dev is not None:
        devtype = dev.devicetype or 0
        if dev.os:
            os_name = dev.os.lower()
    for d, value in ((idx.country, country), (idx.region, region), (idx.device_type, devtype), (idx.os, os_name)):
        if d.by:
            m &= d.accept(value)
    local = now + offset * 60
    hour = int(local // 3600) % 24
    if idx.hourly:
        m &= idx.hours[hour]

    inv = req.site or req.app
    inventory = publisher = ""
    if inv is not None:
        app = req.app
        bundle = app.bundle if app is not None else None
        domain = inv.domain or (inv.publisher.domain if inv.publisher else None)
        allowed, inventory = idx.inventory(domain, bundle)
        m &= allowed
        if idx.category.by:
            cats = inv.cat
            if inv.sectioncat or inv.pagecat:
                cats = [*(cats or ()), *(inv.sectioncat or ()), *(inv.pagecat or ())]
            m &= idx.categories(cats)
        if inv.publisher and inv.publisher.id:
            publisher = inv.publisher.id
    else:
        m &= idx.inventory_any & idx.category.any

    if req.bcat:
        m &= ~idx.any_of(idx.creative_cat, (c.upper() for c in req.bcat))
    if req.badv:
        m &= ~idx.any_of(idx.advertiser, (a.lower() for a in req.badv))
    if req.bapp:
        m &= ~idx.any_of(idx.advertised_app, (a.lower() for a in req.bapp))
    if req.wseat:
        m &= idx.any_of(idx.seat, req.wseat)
    if req.bseat:
        m &= ~idx.any_of(idx.seat, req.bseat)

    user_id = ""
    if m and user is not None:
        if req.regs is None and not user.ext:  # no privacy signal at all: nothing restricts use
            user_id = user.buyeruid or user.id or ""
        else:
            p = privacy(req)
            if p.may_use_personal_data:
                user_id = user.buyeruid or user.id or (p.eids[0][1] if p.eids else "")
    weekday = (int(local // 86400) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    return m, Context(0, devtype, os_name, country, region, inventory, publisher, weekday * 24 + hour, 0, 0, user_id)
