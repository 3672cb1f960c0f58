"""Hashed features of one impression, crossed with the campaign where it matters.

Base features (one 64-bit hash each, in this order):
  0 bias, 1 format x size, 2 device type, 3 OS, 4 country, 5 region (within its country),
  6 inventory (domain or bundle), 7 publisher, 8 hour of week, 9 hour of day, 10.. user segments
  (at most ``MAX_SEGMENTS``; more are ignored).
Every base feature has its own weight; those in ``CROSSED`` (bias, format x size, device type, country
and the segments) also get one weight per campaign, since how well a campaign converts depends most on
them. A weight's index is ``mix(hash) & (2^bits - 1)``, crossed ``mix(hash ^ campaign_key)``.

The string fields travel as one UTF-8 buffer, ``text(ctx)``: os, country, region, inventory, publisher
then the segments, separated by 0x1F; the kernel hashes it with FNV-1a, so the Python side does one
join and one encode per impression. Hashes are stable across processes and machines (the artefact
records ``FEATURES_VERSION``); changing anything here means a new version.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray

from bidder.value import Context

FEATURES_VERSION = 1
MAX_SEGMENTS = 22
N_FIXED = 10
MAX_FEATURES = N_FIXED + MAX_SEGMENTS
CROSSED = (0, 1, 2, 4)  # plus every segment
SEP = "\x1f"

_M64 = 0xFFFFFFFFFFFFFFFF
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_GOLDEN = 0x9E3779B97F4A7C15


def text(ctx: Context) -> bytes:
    return SEP.join((ctx.os, ctx.country, ctx.region, ctx.inventory, ctx.publisher, *ctx.segments)).encode()


@njit(cache=True, nogil=True)
def mix(h: np.uint64) -> np.uint64:
    """splitmix64's finaliser: spreads FNV's weak low bits over the whole word."""
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


@njit(cache=True, nogil=True)
def _field_seed(field: int) -> np.uint64:
    return np.uint64(_FNV_OFFSET) ^ (np.uint64(field + 1) * np.uint64(_GOLDEN))


@njit(cache=True, nogil=True)
def _int_feature(field: int, value: int) -> np.uint64:
    return mix(_field_seed(field) ^ np.uint64(value & 0xFFFFFFFF))


@njit(cache=True, nogil=True)
def hash_bytes(buf: bytes) -> np.uint64:
    """The campaign key: FNV-1a of the campaign id's UTF-8 bytes, mixed."""
    h = _field_seed(-1)
    for i in range(len(buf)):
        h = (h ^ np.uint64(buf[i])) * np.uint64(_FNV_PRIME)
    return mix(h)


@njit(cache=True, nogil=True)
def hash_context(
    buf: bytes, fmt: int, device_type: int, hour_of_week: int, w: int, h: int, feats: NDArray[np.uint64]
) -> int:
    """Write the base feature hashes into ``feats`` (length >= MAX_FEATURES); returns how many."""
    feats[0] = _int_feature(0, 0)
    feats[1] = _int_feature(1, (fmt << 26) ^ (w << 13) ^ h)
    feats[2] = _int_feature(2, device_type)
    how = hour_of_week % 168
    feats[8] = _int_feature(8, how)
    feats[9] = _int_feature(9, how % 24)
    field = 0
    m = N_FIXED
    acc = _field_seed(3)
    country = np.uint64(0)
    n = len(buf)
    for i in range(n + 1):
        if i < n and buf[i] != 0x1F:
            acc = (acc ^ np.uint64(buf[i])) * np.uint64(_FNV_PRIME)
            continue
        if field < 5:
            slot = (3, 4, 5, 6, 7)[field]
            feats[slot] = mix(acc)
            if field == 1:
                country = acc
        elif m < MAX_FEATURES:
            feats[m] = mix(acc)
            m += 1
        field += 1
        # Region names repeat across countries, so the region hash starts from the country's.
        acc = country ^ _field_seed(5) if field == 2 else _field_seed(min(field, 5) + 3)
    for k in range(field, 5):  # missing trailing fields hash as empty strings
        feats[(3, 4, 5, 6, 7)[k]] = mix(_field_seed(k + 3))
    return m


@njit(cache=True, nogil=True)
def indices(
    feats: NDArray[np.uint64], m: int, key: np.uint64, mask: np.uint64, out: NDArray[np.int64]
) -> int:
    """Weight indices of one (impression, campaign): base features then crosses; returns how many."""
    k = 0
    for i in range(m):
        out[k] = np.int64(feats[i] & mask)
        k += 1
    for i in range(m):
        if i < N_FIXED and i != 0 and i != 1 and i != 2 and i != 4:
            continue
        out[k] = np.int64(mix(feats[i] ^ key) & mask)
        k += 1
    return k


# --- pure-Python reference twins -------------------------------------------------------------------


def mix_py(h: int) -> int:
    h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & _M64
    return h ^ (h >> 31)


def _seed_py(field: int) -> int:
    return _FNV_OFFSET ^ (((field + 1) * _GOLDEN) & _M64)


def _fnv_py(data: bytes, h: int) -> int:
    for byte in data:
        h = ((h ^ byte) * _FNV_PRIME) & _M64
    return h


def hash_bytes_py(buf: bytes) -> int:
    return mix_py(_fnv_py(buf, _seed_py(-1)))


def hash_context_py(ctx: Context) -> list[int]:
    """Reference twin of ``hash_context`` (from the Context itself, not the joined buffer)."""

    def num(field: int, value: int) -> int:
        return mix_py(_seed_py(field) ^ (value & 0xFFFFFFFF))

    country = _fnv_py(ctx.country.encode(), _seed_py(4))
    how = ctx.hour_of_week % 168
    return [
        num(0, 0),
        num(1, (ctx.fmt << 26) ^ (ctx.w << 13) ^ ctx.h),
        num(2, ctx.device_type),
        mix_py(_fnv_py(ctx.os.encode(), _seed_py(3))),
        mix_py(country),
        mix_py(_fnv_py(ctx.region.encode(), country ^ _seed_py(5))),
        mix_py(_fnv_py(ctx.inventory.encode(), _seed_py(6))),
        mix_py(_fnv_py(ctx.publisher.encode(), _seed_py(7))),
        num(8, how),
        num(9, how % 24),
        *(mix_py(_fnv_py(s.encode(), _seed_py(8))) for s in ctx.segments[:MAX_SEGMENTS]),
    ]


def indices_py(feats: list[int], key: int, bits: int) -> list[int]:
    mask = (1 << bits) - 1
    crossed = [f for i, f in enumerate(feats) if i in CROSSED or i >= N_FIXED]
    return [f & mask for f in feats] + [mix_py(f ^ key) & mask for f in crossed]
