"""Campaigns compiled into bitsets over *lines* (one line per campaign x creative).

Every targeting value maps to the set of lines that accept it, held as a Python ``int`` used as a
bitset (bit i = line i). A decision is then a handful of ``&``/``|`` over those ints, each one C loop
over n/64 machine words, followed by a numba kernel that visits only the set bits. The cost of a
decision thus grows with the lines that match, plus a tiny n/64 term for the word-wise ANDs; nothing
iterates over all campaigns in Python.

For a dimension X, ``X_any`` holds the lines whose campaign does not constrain X, and ``X[v]`` the
lines that list value v; the lines accepting a request's value v are ``X_any | X.get(v, 0)``.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from bidder.campaign import Campaign, Creative
from bidder.value import FORMATS, Lines


@functools.lru_cache(maxsize=4096)
def category_keys(cat: str) -> tuple[str, ...]:
    """An IAB category and its parent: "IAB3-1" -> ("IAB3-1", "IAB3"); targeting or blocking the
    parent covers every child."""
    cat = cat.upper()
    parent, dash, _ = cat.partition("-")
    return (cat, parent) if dash else (cat,)


@functools.lru_cache(maxsize=65536)
def domain_keys(domain: str) -> tuple[str, ...]:
    """The domain and its parents down to two labels: "a.www.foo.com" -> (..., "www.foo.com", "foo.com"),
    so that listing "foo.com" covers its subdomains. Cached: the same publishers come back all day."""
    labels = domain.lower().strip(".").split(".")
    return tuple(".".join(labels[i:]) for i in range(max(1, len(labels) - 1)))


class _Dim:
    """One targeting dimension: value -> lines listing it, plus the lines that do not constrain it."""

    __slots__ = ("any", "by")

    def __init__(self) -> None:
        self.any = 0
        self.by: dict[object, int] = defaultdict(int)

    def add(self, bit: int, values: Iterable[object]) -> None:
        listed = False
        for v in values:
            self.by[v] |= bit
            listed = True
        if not listed:
            self.any |= bit

    def accept(self, value: object) -> int:
        return self.any | self.by.get(value, 0)

    def freeze(self) -> None:
        self.by = dict(self.by)


_MEMO_SIZE = 65536


def remember(memo: dict[Any, Any], key: Any, value: Any) -> None:
    """Store in a memo of the hot path, which is cleared when full: bounded memory, and what matters
    comes back within a few requests."""
    if len(memo) >= _MEMO_SIZE:
        memo.clear()
    memo[key] = value


class Index:
    """Bitsets and per-line arrays for one set of campaigns. Immutable after build, except ``live`` and
    the memos."""

    __slots__ = (
        "_categories", "_inventory", "advertised_app", "advertiser", "all", "attr", "banner_size", "blocked",
        "bundle", "campaign_lines", "campaigns", "category", "country", "creative_cat", "creatives", "deal",
        "device_type", "domain", "duration", "hourly", "hours", "inventory_any", "lines", "live", "media", "mime",
        "n", "nbytes", "open", "os", "region", "seat",
    )

    def __init__(self, campaigns: list[Campaign], default_seat: str) -> None:
        active = [c for c in campaigns if c.status == "active"]
        self.campaigns = active
        line_campaign: list[int] = []
        line_creative: list[Creative] = []
        for ci, c in enumerate(active):
            for cr in c.creatives:
                line_campaign.append(ci)
                line_creative.append(cr)
        self.n = n = len(line_campaign)
        self.nbytes = max(1, (n + 7) // 8)
        self.creatives = line_creative
        self.lines = Lines(
            campaigns=active,
            campaign=np.array(line_campaign, dtype=np.int32),
            fmt=np.array([FORMATS.index(cr.format) for cr in line_creative], dtype=np.int32),
        )
        self.all = (1 << n) - 1
        # Lines whose campaign may bid now (budget, pacing); the budget gate clears and sets bits.
        self.live = self.all

        self.country, self.region, self.device_type, self.os = _Dim(), _Dim(), _Dim(), _Dim()
        self.category = _Dim()
        self.hours = [0] * 24
        # Inventory: a line accepts a site/app when its campaign has no allow-list at all, or lists it.
        self.inventory_any = 0
        self.domain: dict[str, int] = defaultdict(int)  # site.domain / app.domain allow-list
        self.bundle: dict[str, int] = defaultdict(int)  # app.bundle allow-list
        self.blocked: dict[str, int] = defaultdict(int)  # domains and bundles a campaign blocks
        self.open = 0  # lines of campaigns without deal_ids: the open auction
        self.deal: dict[str, int] = defaultdict(int)
        self.seat: dict[str, int] = defaultdict(int)
        self.advertiser: dict[str, int] = defaultdict(int)
        self.advertised_app: dict[str, int] = defaultdict(int)
        # Creative side: what an impression offers and what a request blocks.
        self.banner_size: dict[tuple[int, int], int] = defaultdict(int)
        self.media: dict[str, int] = defaultdict(int)  # format -> lines
        self.mime: dict[str, int] = defaultdict(int)
        self.duration: dict[int, int] = defaultdict(int)
        self.creative_cat: dict[str, int] = defaultdict(int)
        self.attr: dict[int, int] = defaultdict(int)
        self.campaign_lines = [0] * len(active)  # campaign -> its lines

        for line in range(n):
            bit = 1 << line
            self.campaign_lines[line_campaign[line]] |= bit
            c = active[line_campaign[line]]
            cr = line_creative[line]
            t = c.targeting
            self.country.add(bit, (v.upper() for v in t.countries))
            self.region.add(bit, (v.upper() for v in t.regions))
            self.device_type.add(bit, t.device_types)
            self.os.add(bit, (v.lower() for v in t.os))
            self.category.add(bit, (v.upper() for v in t.categories))
            for h in t.hours or range(24):
                self.hours[h] |= bit
            if not t.domains and not t.bundles:
                self.inventory_any |= bit
            for d in t.domains:
                self.domain[d.lower()] |= bit
            for b in t.bundles:
                self.bundle[b.lower()] |= bit
            for d in t.blocked_domains:
                self.blocked[d.lower()] |= bit
            if t.deal_ids:
                for d in t.deal_ids:
                    self.deal[d] |= bit
            else:
                self.open |= bit
            self.seat[c.seat or default_seat] |= bit
            self.advertiser[c.advertiser.lower()] |= bit
            if c.bundle:
                self.advertised_app[c.bundle.lower()] |= bit
            self.media[cr.format] |= bit
            if cr.format == "banner":
                self.banner_size[(cr.w, cr.h)] |= bit
            for m in cr.mimes:
                self.mime[m.lower()] |= bit
            if cr.format in ("video", "audio"):
                self.duration[cr.duration] |= bit
            for cat in cr.cat:
                for key in category_keys(cat):
                    self.creative_cat[key] |= bit
            for a in cr.attr:
                self.attr[a] |= bit

        self.hourly = any(h != self.all for h in self.hours)  # else the hour never narrows anything
        # Memos of what a request's inventory and categories allow: the same publishers and
        # categories come back all day. Bounded: cleared when full.
        self._inventory: dict[tuple[str | None, str | None], tuple[int, str]] = {}
        self._categories: dict[tuple[str, ...], int] = {}
        for dim in (self.country, self.region, self.device_type, self.os, self.category):
            dim.freeze()
        for name in ("domain", "bundle", "blocked", "deal", "seat", "advertiser", "advertised_app",
                     "banner_size", "media", "mime", "duration", "creative_cat", "attr"):
            setattr(self, name, dict(getattr(self, name)))

    def inventory(self, domain: str | None, bundle: str | None) -> tuple[int, str]:
        """Lines that accept this site or app (allow-lists of domains and their parents, or bundles,
        less block-lists), and the inventory key the models see: the bundle, else the domain."""
        key = (domain, bundle)
        got = self._inventory.get(key)
        if got is None:
            keys = domain_keys(domain) if domain else ()
            allow, block = self.inventory_any, 0
            for k in keys:
                allow |= self.domain.get(k, 0)
                block |= self.blocked.get(k, 0)
            inventory = keys[0] if keys else ""
            if bundle:
                inventory = b = bundle.lower()
                allow |= self.bundle.get(b, 0)
                block |= self.blocked.get(b, 0)
            got = (allow & ~block, inventory)
            remember(self._inventory, key, got)
        return got

    def categories(self, cats: list[str] | None) -> int:
        """Lines whose campaign targets none of the categories, or one of these (or their parents)."""
        key = tuple(cats) if cats else ()
        got = self._categories.get(key)
        if got is None:
            got = self.category.any
            for c in key:
                for k in category_keys(c):
                    got |= self.category.by.get(k, 0)
            remember(self._categories, key, got)
        return got

    def any_of(self, table: Mapping[Any, int], keys: Iterable[object]) -> int:
        mask = 0
        for k in keys:
            mask |= table.get(k, 0)
        return mask

    def durations(self, lo: int, hi: int | None) -> int:
        mask = 0
        for d, bits in self.duration.items():
            if d >= lo and (hi is None or hi <= 0 or d <= hi):
                mask |= bits
        return mask
