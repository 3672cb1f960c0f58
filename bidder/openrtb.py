"""OpenRTB 2.5 / 2.6 as msgspec Structs.

Request side: "view" Structs holding only the fields a bidder reads; unknown fields are ignored, as the
specification requires of a receiver, and ``ext`` objects are kept as raw JSON (decoded only where we
read them, see ``privacy``). 2.5 put several signals under ``ext`` that 2.6 promoted; ``Privacy`` reads
both places. Response side: ``omit_defaults`` so that what we emit validates against the strict schema.
"""

from __future__ import annotations

from typing import TypeVar

import msgspec
from msgspec import Raw

# --- request ---------------------------------------------------------------------------------------

_VIEW = {"gc": False}
# msgspec cannot decode ``Raw | None``; an absent ext is an empty Raw instead, which is falsy.
NO_RAW = Raw(b"")  # request views hold no cycles; skipping GC tracking makes decoding cheaper


class Format(msgspec.Struct, **_VIEW):
    w: int = 0
    h: int = 0


class Banner(msgspec.Struct, **_VIEW):
    w: int | None = None
    h: int | None = None
    format: list[Format] | None = None
    battr: list[int] | None = None
    pos: int | None = None


class Video(msgspec.Struct, **_VIEW):
    mimes: list[str] | None = None
    minduration: int = 0
    maxduration: int | None = None
    w: int | None = None
    h: int | None = None
    battr: list[int] | None = None
    protocols: list[int] | None = None


class Audio(msgspec.Struct, **_VIEW):
    mimes: list[str] | None = None
    minduration: int = 0
    maxduration: int | None = None
    battr: list[int] | None = None


class Native(msgspec.Struct, **_VIEW):
    request: str | None = None
    ver: str | None = None
    battr: list[int] | None = None


class Deal(msgspec.Struct, **_VIEW):
    id: str
    bidfloor: float = 0.0
    # Deliberately not inherited from imp.bidfloorcur: the spec gives deals their own default.
    bidfloorcur: str = "USD"
    at: int | None = None
    wseat: list[str] | None = None
    wadomain: list[str] | None = None


class Pmp(msgspec.Struct, **_VIEW):
    private_auction: int = 0
    deals: list[Deal] | None = None


class Imp(msgspec.Struct, **_VIEW):
    id: str
    banner: Banner | None = None
    video: Video | None = None
    audio: Audio | None = None
    native: Native | None = None
    pmp: Pmp | None = None
    bidfloor: float = 0.0
    bidfloorcur: str = "USD"
    secure: int | None = None
    tagid: str | None = None
    ext: Raw = NO_RAW


class Publisher(msgspec.Struct, **_VIEW):
    id: str | None = None
    domain: str | None = None


class Site(msgspec.Struct, **_VIEW):
    id: str | None = None
    domain: str | None = None
    page: str | None = None
    cat: list[str] | None = None
    sectioncat: list[str] | None = None
    pagecat: list[str] | None = None
    publisher: Publisher | None = None


class App(msgspec.Struct, **_VIEW):
    id: str | None = None
    bundle: str | None = None
    domain: str | None = None
    cat: list[str] | None = None
    sectioncat: list[str] | None = None
    pagecat: list[str] | None = None
    publisher: Publisher | None = None


class Geo(msgspec.Struct, **_VIEW):
    country: str | None = None
    region: str | None = None
    utcoffset: int | None = None


class Device(msgspec.Struct, **_VIEW):
    ua: str | None = None
    ip: str | None = None
    devicetype: int | None = None
    os: str | None = None
    ifa: str | None = None
    lmt: int | None = None
    geo: Geo | None = None


class Eid(msgspec.Struct, **_VIEW):
    source: str = ""
    uids: list[Raw] | None = None


class User(msgspec.Struct, **_VIEW):
    id: str | None = None
    buyeruid: str | None = None
    consent: str | None = None
    eids: list[Eid] | None = None
    geo: Geo | None = None
    ext: Raw = NO_RAW


class Regs(msgspec.Struct, **_VIEW):
    coppa: int | None = None
    gdpr: int | None = None
    us_privacy: str | None = None
    gpp: str | None = None
    gpp_sid: list[int] | None = None
    ext: Raw = NO_RAW


class Source(msgspec.Struct, **_VIEW):
    tid: str | None = None
    schain: Raw = NO_RAW
    ext: Raw = NO_RAW


class BidRequest(msgspec.Struct, **_VIEW):
    id: str
    imp: list[Imp]
    site: Site | None = None
    app: App | None = None
    dooh: Raw = NO_RAW
    device: Device | None = None
    user: User | None = None
    test: int = 0
    at: int = 2  # the spec's default is second price
    tmax: int | None = None
    wseat: list[str] | None = None
    bseat: list[str] | None = None
    cur: list[str] | None = None
    bcat: list[str] | None = None
    badv: list[str] | None = None
    bapp: list[str] | None = None
    source: Source | None = None
    regs: Regs | None = None
    ext: Raw = NO_RAW


# --- the 2.5 ``ext`` homes of signals that 2.6 promoted -----------------------------------------------


class _RegsExt(msgspec.Struct, **_VIEW):
    gdpr: int | None = None
    us_privacy: str | None = None
    gpp: str | None = None


class _UserExt(msgspec.Struct, **_VIEW):
    consent: str | None = None
    eids: list[Eid] | None = None


class _SourceExt(msgspec.Struct, **_VIEW):
    schain: Raw = NO_RAW


class _Uid(msgspec.Struct, **_VIEW):
    id: str = ""


T = TypeVar("T")

_regs_ext = msgspec.json.Decoder(_RegsExt)
_user_ext = msgspec.json.Decoder(_UserExt)
_source_ext = msgspec.json.Decoder(_SourceExt)
_uid = msgspec.json.Decoder(_Uid)


class Privacy(msgspec.Struct, frozen=True):
    gdpr: int | None
    consent: str | None
    us_privacy: str | None
    gpp: str | None
    coppa: int
    eids: tuple[tuple[str, str], ...]  # (source, id)
    schain: Raw

    @property
    def may_use_personal_data(self) -> bool:
        """Whether user identifiers may drive pricing. Conservative: under COPPA, or GDPR without a
        consent string, or a CCPA opt-out ("1YY-"), we price as if the user were unknown."""
        if self.coppa == 1:
            return False
        if self.gdpr == 1 and not self.consent:
            return False
        return not (self.us_privacy and len(self.us_privacy) >= 3 and self.us_privacy[2] in "Yy")


def _ext(decoder: msgspec.json.Decoder[T], raw: Raw) -> T | None:
    if not raw:
        return None
    try:
        return decoder.decode(raw)
    except msgspec.DecodeError:  # a malformed ext is the sender's business: ignore it, as spec says
        return None


def privacy(req: BidRequest) -> Privacy:
    """Privacy and supply-chain signals from their 2.6 places, falling back to the 2.5 ``ext`` ones."""
    regs, user, source = req.regs, req.user, req.source
    rx = _ext(_regs_ext, regs.ext) if regs else None
    ux = _ext(_user_ext, user.ext) if user else None
    sx = _ext(_source_ext, source.ext) if source else None
    gdpr = regs.gdpr if regs and regs.gdpr is not None else (rx.gdpr if rx else None)
    usp = regs.us_privacy if regs and regs.us_privacy else (rx.us_privacy if rx else None)
    gpp = regs.gpp if regs and regs.gpp else (rx.gpp if rx else None)
    consent = user.consent if user and user.consent else (ux.consent if ux else None)
    eid_list = (user.eids if user and user.eids else None) or (ux.eids if ux else None) or []
    eids = []
    for e in eid_list:
        for raw in e.uids or ():
            try:
                uid = _uid.decode(raw).id
            except msgspec.DecodeError:
                continue
            if uid:
                eids.append((e.source, uid))
    schain = source.schain if source and source.schain else (sx.schain if sx else NO_RAW)
    return Privacy(
        gdpr=gdpr,
        consent=consent,
        us_privacy=usp,
        gpp=gpp,
        coppa=(regs.coppa or 0) if regs else 0,
        eids=tuple(eids),
        schain=schain,
    )


# --- response --------------------------------------------------------------------------------------


class Bid(msgspec.Struct, omit_defaults=True):
    id: str
    impid: str
    price: float
    adm: str | None = None
    nurl: str | None = None
    burl: str | None = None
    lurl: str | None = None
    adomain: list[str] | None = None
    bundle: str | None = None
    cid: str | None = None
    crid: str | None = None
    cat: list[str] | None = None
    attr: list[int] | None = None
    dealid: str | None = None
    w: int | None = None
    h: int | None = None
    mtype: int | None = None
    ext: dict[str, object] | None = None


class SeatBid(msgspec.Struct, omit_defaults=True):
    bid: list[Bid]
    seat: str | None = None


class BidResponse(msgspec.Struct, omit_defaults=True):
    id: str
    seatbid: list[SeatBid] | None = None
    bidid: str | None = None
    cur: str | None = None
    nbr: int | None = None
    ext: dict[str, object] | None = None


# OpenRTB 2.6 ``mtype`` (markup type) by our creative format.
MTYPE = {"banner": 1, "video": 2, "audio": 3, "native": 4}

# No-bid reason codes (OpenRTB 2.6 list 5.24 and its later additions).
NBR_TECHNICAL_ERROR = 1
NBR_INVALID_REQUEST = 2
NBR_INSUFFICIENT_TIME = 15
