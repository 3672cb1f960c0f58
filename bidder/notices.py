"""Signed win / billing / loss notice URLs, and reading them back.

A notice URL carries everything needed to book it without any state from the bid: bid id, imp id,
campaign id, creative id, our bid price and its currency, the bid's expiry (unix seconds) and the test
flag, signed with HMAC-SHA256 (first 16 bytes, base64url). The exchange substitutes
``${AUCTION_PRICE}`` (and ``${AUCTION_LOSS}`` in the loss URL), which are therefore not signed.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
from binascii import b2a_base64
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qsl, quote

import msgspec

from bidder._native import Hmac

log = logging.getLogger("rtb.bidder")

_SAFE = re.compile(r"[A-Za-z0-9._~-]*\Z").match
_SIGNED = ("b", "i", "c", "r", "bp", "cu", "x", "t")
_URLSAFE = bytes.maketrans(b"+/", b"-_")


def url_safe(value: str) -> str:
    """``value`` percent-encoded for a query string (most ids are already safe: returned as they are)."""
    return value if value.isascii() and (value.isalnum() or _SAFE(value)) else quote(value, safe="")


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
    __slots__ = ("_base", "hmac", "query", "sig")

    def __init__(self, secret: bytes, base_url: str) -> None:
        self._base = base_url.rstrip("/")
        # Methods of the C ``Hmac`` (``bidder/_native.c``), bound here because they run per notice and
        # per seat bid (the engine's own bids are signed by ``bidder._native.Writer``, with ``hmac``);
        # ``sig_py`` and ``query_py`` below are their Python twins, which the tests compare them with.
        #   sig(message): the first 16 bytes of HMAC-SHA256(secret, message), base64url.
        #   query(bid_id, imp_id, imp_quoted, signed_line, quoted_line, price, cur, expiry, test): the
        #   signed query string shared by one bid's nurl, burl and lurl (before ``&l=`` of the lurl);
        #   the lines are ``line``'s pair; bid_id, price, cur, expiry and test ("0"/"1") must be URL-safe.
        self.hmac = Hmac(secret)  # also what ``bidder._native.Writer`` signs bids with
        self.sig: Callable[[str], str] = self.hmac.sig
        self.query: Callable[[str, str, str, str, str, str, str, str, str], str] = self.hmac.query

    @property
    def base(self) -> str:
        return self._base

    @staticmethod
    def line(cid: str, crid: str) -> tuple[str, str]:
        """What ``query`` needs of one (campaign, creative), computed once when campaigns load: the
        ids as signed, and as they appear in the query string."""
        return f"{cid}\x1f{crid}", f"&c={url_safe(cid)}&r={url_safe(crid)}"

    def urls(self, bid_id: str, imp_id: str, cid: str, crid: str, price: str, cur: str, expiry: int,
             test: bool) -> tuple[str, str, str]:
        """(nurl, burl, lurl) for one bid."""
        q = self.query(bid_id, imp_id, url_safe(imp_id), *self.line(cid, crid), price, cur, str(expiry),
                       "1" if test else "0")
        base = self._base
        return (f"{base}/notice/win?{q}", f"{base}/notice/bill?{q}", f"{base}/notice/loss?{q}&l=${{AUCTION_LOSS}}")

    def read(self, kind: str, query: str) -> Notice:
        """Verify and decode a notice's query string; raises ``NoticeError``."""
        params = dict(parse_qsl(query, keep_blank_values=True))
        try:
            fields = tuple(params[k] for k in _SIGNED)
            sig = params["s"]
        except KeyError as exc:
            raise NoticeError("missing_field") from exc
        # compare_digest takes str of ASCII only (ours always is): anything else is simply not it.
        if not (sig.isascii() and hmac.compare_digest(self.sig("\x1f".join(fields)), sig)):
            raise NoticeError("bad_signature")
        b, i, c, r, bp, cu, x, t = fields
        try:
            bid_price, expiry = float(bp), int(x)
        except ValueError as exc:  # signed by us, so only a changed secret or a bug gets here
            raise NoticeError("bad_field") from exc
        return Notice(kind, b, i, c, r, bid_price, cu, expiry, t == "1", params.get("p"), params.get("l"))


def sig_py(secret: bytes, message: str) -> str:
    """``Signer.sig`` in Python: the first 16 bytes of HMAC-SHA256(secret, message), base64url."""
    digest = hmac.digest(secret, message.encode(), hashlib.sha256)[:16]
    return b2a_base64(digest, newline=False)[:22].translate(_URLSAFE).decode()


def query_py(secret: bytes, bid_id: str, imp_id: str, imp_quoted: str, signed_line: str, quoted_line: str,
             price: str, cur: str, expiry: str, test: str) -> str:
    """``Signer.query`` in Python."""
    sig = sig_py(secret, f"{bid_id}\x1f{imp_id}\x1f{signed_line}\x1f{price}\x1f{cur}\x1f{expiry}\x1f{test}")
    return (f"b={bid_id}&i={imp_quoted}{quoted_line}&bp={price}&cu={cur}&x={expiry}&t={test}&s={sig}"
            f"&p=${{AUCTION_PRICE}}")


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
