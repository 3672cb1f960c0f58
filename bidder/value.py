"""The value-model seam: what one impression is worth to each candidate line.

A *line* is one (campaign, creative) pair; the index numbers them 0..n-1 when campaigns load. A
``ValueModel`` is bound to the lines once (``bind``), which precomputes whatever per-line arrays it
needs; the bound ``Scorer`` then fills, for the candidate lines of one impression, the expected value
of that impression in USD: P(conversion | context) x value of a conversion. Pricing (ROAS, caps,
shading, floors) happens after, in ``bidder.pricing``, the same for every model.

Kernels are numba ``@njit(cache=True)`` with a pure-Python reference twin that the tests compare.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import msgspec
import numpy as np
from numba import njit
from numpy.typing import NDArray

from bidder.campaign import Campaign
from bidder.jit import entry
from bidder.pricing import campaign_arrays, price

FORMATS = ("banner", "video", "audio", "native")
N_DEVICE_TYPES = 9  # OpenRTB device types 1..8 (8 = DOOH, 2.6); 0 = unknown


class Context(msgspec.Struct, gc=False):
    """One impression's context, as the models see it. Strings are lower-cased; "" = unknown."""

    fmt: int = 0  # index into FORMATS
    device_type: int = 0  # OpenRTB device type (0 unknown)
    os: str = ""
    country: str = ""
    region: str = ""
    inventory: str = ""  # site domain or app bundle
    publisher: str = ""
    hour_of_week: int = 0  # 0..167, Monday 00h = 0, in the user's local time when known
    w: int = 0
    h: int = 0
    user_id: str = ""  # empty when consent does not allow using it
    segments: tuple[str, ...] = ()


class Lines(msgspec.Struct, frozen=True):
    """The per-line view of the loaded campaigns that models bind to."""

    campaigns: list[Campaign]
    campaign: NDArray[np.int32]  # line -> index into campaigns
    fmt: NDArray[np.int32]  # line -> index into FORMATS

    @property
    def n(self) -> int:
        return int(self.campaign.shape[0])


class Scorer(Protocol):
    def values(self, cand: NDArray[np.int32], n: int, ctx: Context, out: NDArray[np.float64]) -> None:
        """Write into ``out[:n]`` the expected value in USD of this impression for lines ``cand[:n]``."""

    def explain(self, line: int, ctx: Context) -> tuple[float, float]:
        """(P(conversion), value of a conversion in USD) behind the winning line's value, for bid.ext."""


class BestScorer(Scorer, Protocol):
    """A scorer with one fused kernel for the common path: candidates from the bitset, their values and
    the auction price (``pricing.price``) in one call. It must pick what ``pricing.extract``,
    ``values`` and ``pricing.pick`` pick together (the tests compare them); the engine uses ``best``
    when a scorer has it, since each numba call costs about as much as the work it does here. A scorer
    whose values depend only on the format and device type may also offer a ``price_table``
    (``PriceTable``), from which the engine's C step prices exactly as ``prior_best`` does, with no call
    at all."""

    def best(self, bits: bytes, ctx: Context, floor: int, first_price: bool, shade: float,
             out: NDArray[np.int64]) -> int:
        """The winning line among the set bits of little-endian ``bits`` (ties: the lowest), with
        ``out`` = [bid, value] in micros of USD CPM; -1 when no line can bid."""


class ValueModel(Protocol):
    @property
    def version(self) -> str: ...

    def bind(self, lines: Lines) -> Scorer: ...


def rate_table(c: Campaign) -> NDArray[np.float64]:
    """Conversion rate by (format, device type), resolved from the campaign's most specific keys."""
    rates = c.bid.conversion_rate
    table = np.empty((len(FORMATS), N_DEVICE_TYPES), dtype=np.float64)
    if not isinstance(rates, dict):
        table.fill(rates)
        return table
    default = rates.get("default", 0.0)
    for f, fmt in enumerate(FORMATS):
        for d in range(N_DEVICE_TYPES):
            dev = str(d)
            table[f, d] = rates.get(f"{fmt}/{dev}", rates.get(fmt, rates.get(dev, default)))
    return table


@njit(cache=True, nogil=True)
def prior_values(
    cand: NDArray[np.int32],
    n: int,
    line_campaign: NDArray[np.int32],
    rates: NDArray[np.float64],  # (campaigns, formats, device types): P(conversion)
    value: NDArray[np.float64],  # (campaigns,): USD per conversion
    fmt: int,
    device_type: int,
    out: NDArray[np.float64],
) -> None:
    d = device_type if 0 <= device_type < rates.shape[2] else 0
    for k in range(n):
        c = line_campaign[cand[k]]
        out[k] = rates[c, fmt, d] * value[c]


def prior_values_py(
    cand: NDArray[np.int32],
    n: int,
    line_campaign: NDArray[np.int32],
    rates: NDArray[np.float64],
    value: NDArray[np.float64],
    fmt: int,
    device_type: int,
    out: NDArray[np.float64],
) -> None:
    """Reference twin of ``prior_values``."""
    d = device_type if 0 <= device_type < rates.shape[2] else 0
    for k in range(n):
        c = int(line_campaign[cand[k]])
        out[k] = float(rates[c, fmt, d]) * float(value[c])


def prior_line_values(line_campaign: NDArray[np.int32], rates: NDArray[np.float64], value: NDArray[np.float64],
                      inv_roas: NDArray[np.float64]) -> NDArray[np.float64]:
    """Per (format, device type), in row ``fmt * N_DEVICE_TYPES + device type``: each line's value in micros
    of CPM before its cap, the product ``prior_values`` and ``pick`` compute, in the same order (so the
    same bits). Contiguous per context, so that a decision reads one array of lines, not four arrays by
    campaign: what a decision touches is what it misses in a cache the server's other work has cooled."""
    c = line_campaign
    v = rates[c] * value[c, None, None] * 1e9 * inv_roas[c, None, None]  # (lines, formats, device types)
    return np.ascontiguousarray(v.reshape(len(c), len(FORMATS) * N_DEVICE_TYPES).T)


class PriceTable(NamedTuple):
    """What a scorer offers when a line's value depends only on the format and device type: the C imp step
    (``bidder/_imp.c``) then prices from it as ``prior_best`` does, without a call into the kernel."""

    value: NDArray[np.float64]  # (formats x device types, lines): ``prior_line_values``
    cap: NDArray[np.int64]  # (lines,): each line's campaign's max_cpm, micros


@njit(cache=True, nogil=True)
def prior_best(
    bits: bytes,
    line_value: NDArray[np.float64],  # one context's row of ``prior_line_values``
    line_cap: NDArray[np.int64],  # each line's campaign's max_cpm, micros
    floor: int,
    first_price: bool,
    shade: float,
    out: NDArray[np.int64],
) -> int:
    """``extract``, ``prior_values`` and ``pick`` in one call (see ``BestScorer``)."""
    best = best_bid = -1
    for i in range(len(bits)):
        b = bits[i]
        if b == 0:
            continue
        for j in range(8):
            if (b >> j) & 1:
                line = i * 8 + j
                bid, v = price(line_value[line], line_cap[line], floor, first_price, shade)
                if bid > best_bid:
                    best_bid = bid
                    best = line
                    out[1] = v
    out[0] = best_bid
    return best


class _PriorScorer:
    __slots__ = ("_line_campaign", "_rates", "_value", "_explained", "_campaign_of", "_rows", "_line_cap", "_best",
                 "price_table")

    def __init__(self, lines: Lines) -> None:
        self._line_campaign = lines.campaign
        self._rates = (
            np.stack([rate_table(c) for c in lines.campaigns])
            if lines.campaigns
            else np.zeros((0, len(FORMATS), N_DEVICE_TYPES))
        )
        self._value = np.array([c.bid.value_per_conversion for c in lines.campaigns], dtype=np.float64)
        # Python floats for the winner's explanation: numpy scalar indexing costs more than the lookup.
        rates, value = self._rates.tolist(), self._value.tolist()
        self._explained = [[[(r, value[c]) for r in by_fmt] for by_fmt in rates[c]] for c in range(len(value))]
        self._campaign_of = lines.campaign.tolist()
        inv_roas, max_cpm = campaign_arrays(lines.campaigns)
        table = prior_line_values(self._line_campaign, self._rates, self._value, inv_roas)
        self._rows = list(table)
        self._line_cap = max_cpm[self._line_campaign]
        self.price_table: PriceTable | None = PriceTable(table, self._line_cap)
        self._best = entry(prior_best, b"", self._rows[0], self._line_cap, 0, True, 0.5, np.zeros(2, dtype=np.int64))

    def values(self, cand: NDArray[np.int32], n: int, ctx: Context, out: NDArray[np.float64]) -> None:
        prior_values(cand, n, self._line_campaign, self._rates, self._value, ctx.fmt, ctx.device_type, out)

    def best(self, bits: bytes, ctx: Context, floor: int, first_price: bool, shade: float,
             out: NDArray[np.int64]) -> int:
        d = ctx.device_type
        row = self._rows[ctx.fmt * N_DEVICE_TYPES + (d if 0 <= d < N_DEVICE_TYPES else 0)]
        return self._best(bits, row, self._line_cap, floor, first_price, shade, out)  # type: ignore[no-any-return]

    def explain(self, line: int, ctx: Context) -> tuple[float, float]:
        d = ctx.device_type if 0 <= ctx.device_type < N_DEVICE_TYPES else 0
        return self._explained[self._campaign_of[line]][ctx.fmt][d]  # type: ignore[no-any-return]


class PriorModel:
    """Baseline model: the campaign's configured conversion rate by context x value per conversion."""

    version = "prior-1"

    def bind(self, lines: Lines) -> BestScorer:
        return _PriorScorer(lines)


def warm_up() -> None:
    """Compile the kernels now so that the first request does not pay for it."""
    cand = np.zeros(1, dtype=np.int32)
    out = np.zeros(1, dtype=np.float64)
    rates = np.zeros((1, len(FORMATS), N_DEVICE_TYPES))
    prior_values(cand, 1, cand, rates, np.zeros(1), 0, 0, out)
    prior_best(b"\x01", np.ones(1), np.ones(1, dtype=np.int64), 0, True, 0.8, np.zeros(2, dtype=np.int64))
