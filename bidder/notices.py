"""Signed win / billing / loss notice URLs, and reading them back.

A notice URL carries everything needed to book it without any state from the bid: bid id, imp id,
campaign id, creative id, our bid price and its currency, the bid's expiry (unix seconds) and the test
flag, signed with HMAC-SHA256 (first 16 bytes, base64url). The exchange substitutes
``${AUCTION_PRICE}`` (and ``${AUCTION_LOSS}`` in the loss URL), which are therefore not signed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import secrets
from pathlib import Path
from urllib.parse import parse_qsl, quote

import msgspec

log = logging.getLogger("rtb.bidder")

_SAFE = re.compile(r"[A-Za-z0-9._~-]*\Z").match
_SIGNED = ("b", "i", "c", "r", "bp", "cu", "x", "t")


def url_safe(value: str) -> str:
    """``value`` percent-encoded for a query string (most ids are already safe: returned as they are)."""
    return value if value.isalnum() or _SAFE(value) else quote(value, safe="")


class Notice(msgspec.Struct, frozen=True):
    kind: str
    bid_id: str
    imp_id: str
    campaign_id: str
    creative_id: str
    bid_price: float  # in ``currency``, CPM
    currency: str
    expiry: int
    test: bool
    price: str | None  # the clearing price as the exchange wrote it, not yet validated
    loss_reason: str | None


class NoticeError(ValueError):
    """A notice that cannot be booked; the message says why (it is also the metric label)."""


class Signer:
    def __init__(self, secret: bytes, base_url: str) -> None:
        self._base = base_url.rstrip("/")
        # HMAC-SHA256 (RFC 2104) with the keyed inner and outer states hashed once: per notice URL we
        # copy them instead of re-deriving them, about 2.5x faster than hmac.digest on this path.
        key = (hashlib.sha256(secret).digest() if len(secret) > 64 else secret).ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def _sig(self, fields: tuple[str, ...]) -> str:
        inner = self._inner.copy()
        inner.update("\x1f".join(fields).encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        return base64.urlsafe_b64encode(outer.digest()[:16]).rstrip(b"=").decode()

    def urls(
        self, bid_id: str, imp_id: str, cid: str, crid: str, price: str, cur: str, expiry: int, test: bool,
        quoted_ids: tuple[str, str] | None = None,
    ) -> tuple[str, str, str]:
        """(nurl, burl, lurl) for one bid. ``bid_id``, ``price`` and ``cur`` must be URL-safe already;
        ``quoted_ids`` are ``cid`` and ``crid`` percent-encoded, when the caller has them precomputed."""
        t = "1" if test else "0"
        x = str(expiry)
        sig = self._sig((bid_id, imp_id, cid, crid, price, cur, x, t))
        qc, qr = quoted_ids or (url_safe(cid), url_safe(crid))
        query = (f"?b={bid_id}&i={url_safe(imp_id)}&c={qc}&r={qr}&bp={price}&cu={cur}"
                 f"&x={x}&t={t}&s={sig}&p=${{AUCTION_PRICE}}")
        base = self._base
        return (f"{base}/notice/win{query}", f"{base}/notice/bill{query}",
                f"{base}/notice/loss{query}&l=${{AUCTION_LOSS}}")

    def read(self, kind: str, query: str) -> Notice:
        """Verify and decode a notice's query string; raises ``NoticeError``."""
        params = dict(parse_qsl(query, keep_blank_values=True))
        try:
            fields = tuple(params[k] for k in _SIGNED)
            sig = params["s"]
        except KeyError as exc:
            raise NoticeError("missing_field") from exc
        if not hmac.compare_digest(self._sig(fields), sig):
            raise NoticeError("bad_signature")
        b, i, c, r, bp, cu, x, t = fields
        try:
            bid_price, expiry = float(bp), int(x)
        except ValueError as exc:  # signed by us, so only a changed secret or a bug gets here
            raise NoticeError("bad_field") from exc
        return Notice(kind, b, i, c, r, bid_price, cu, expiry, t == "1", params.get("p"), params.get("l"))


def load_secret(configured: str, data_dir: Path) -> bytes:
    """The configured secret, or a random one kept in the data directory (so that notices for bids
    made before a restart still verify), with a warning: several bidders behind one exchange seat
    must share ``RTB_NOTICE_SECRET``."""
    if configured:
        return configured.encode()
    path = data_dir / "notice.key"
    if path.exists():
        secret = path.read_bytes().strip()
        if len(secret) >= 32:
            return secret
    log.warning("RTB_NOTICE_SECRET is not set; signing notices with a random secret kept in %s", path)
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(32).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(secret)
    return secret
