from __future__ import annotations

import numpy as np

from bidder.models.features import (
    MAX_FEATURES,
    hash_bytes,
    hash_bytes_py,
    hash_context,
    hash_context_py,
    indices,
    indices_py,
    text,
)
from bidder.value import Context


def random_context(rng: np.random.Generator) -> Context:
    def word() -> str:
        return "".join(rng.choice(list("abcdefgh.-é0"), int(rng.integers(0, 8))))

    return Context(
        fmt=int(rng.integers(0, 4)), device_type=int(rng.integers(0, 8)), os=word(), country=word(),
        region=word(), inventory=word(), publisher=word(), hour_of_week=int(rng.integers(0, 168)),
        w=int(rng.integers(0, 1000)), h=int(rng.integers(0, 1000)),
        segments=tuple(word() for _ in range(int(rng.integers(0, 30)))),
    )


def test_hash_kernels_equal_their_reference_twins_on_random_contexts() -> None:
    rng = np.random.default_rng(6)
    feats = np.empty(MAX_FEATURES, dtype=np.uint64)
    out = np.empty(2 * MAX_FEATURES, dtype=np.int64)
    for _ in range(300):
        ctx = random_context(rng)
        m = hash_context(text(ctx), ctx.fmt, ctx.device_type, ctx.hour_of_week, ctx.w, ctx.h, feats)
        assert [int(f) for f in feats[:m]] == hash_context_py(ctx)
        key = hash_bytes(ctx.publisher.encode())
        assert int(key) == hash_bytes_py(ctx.publisher.encode())
        k = indices(feats, m, np.uint64(key), np.uint64((1 << 16) - 1), out)
        assert out[:k].tolist() == indices_py(hash_context_py(ctx), int(key), 16)


def test_region_hash_depends_on_the_country() -> None:
    a = hash_context_py(Context(country="usa", region="r1"))
    b = hash_context_py(Context(country="gbr", region="r1"))
    assert a[5] != b[5] and a[3] == b[3]


def test_segments_beyond_the_limit_are_ignored() -> None:
    feats = np.empty(MAX_FEATURES, dtype=np.uint64)
    ctx = Context(segments=tuple(f"s{i}" for i in range(100)))
    assert hash_context(text(ctx), 0, 0, 0, 0, 0, feats) == MAX_FEATURES
