from __future__ import annotations

import numpy as np
import pytest

from bidder.models import ctr, metrics
from bidder.models.ctr import Ftrl, ftrl_fit, ftrl_fit_py, score, score_py
from bidder.models.features import MAX_FEATURES, hash_bytes, hash_context, indices, text
from bidder.models.simulate import World

from .test_features import random_context


def test_ftrl_kernel_equals_its_reference_twin_on_random_events() -> None:
    rng = np.random.default_rng(7)
    size, n_events = 64, 300
    rows = [sorted(set(rng.integers(0, size, int(rng.integers(1, 12))).tolist())) for _ in range(n_events)]
    y = (rng.random(n_events) < 0.3).astype(np.float64)
    idx = np.zeros((n_events, ctr.MAX_INDICES), dtype=np.int64)
    count = np.array([len(r) for r in rows], dtype=np.int64)
    for e, r in enumerate(rows):
        idx[e, : len(r)] = r
    f = Ftrl(alpha=0.2, beta=1.0, l1=0.3, l2=0.5)
    z, nsq, p = np.zeros(size), np.zeros(size), np.empty(n_events)
    ftrl_fit(idx, count, y, z, nsq, f.alpha, f.beta, f.l1, f.l2, p)
    z_ref, nsq_ref = np.zeros(size), np.zeros(size)
    p_ref = ftrl_fit_py(rows, y.tolist(), z_ref, nsq_ref, f)
    assert p == pytest.approx(p_ref, rel=1e-12)
    assert z == pytest.approx(z_ref, rel=1e-12, abs=1e-15)
    assert nsq == pytest.approx(nsq_ref, rel=1e-12)


def test_score_kernel_equals_the_reference_for_every_candidate() -> None:
    rng = np.random.default_rng(8)
    bits = 12
    weight = rng.normal(0, 0.3, 1 << bits)
    n_lines = 50
    keys = np.array([hash_bytes(f"c{i}".encode()) for i in range(n_lines)], dtype=np.uint64)
    value = rng.uniform(1, 50, n_lines)
    feats = np.empty(MAX_FEATURES, dtype=np.uint64)
    row = np.empty(2 * MAX_FEATURES, dtype=np.int64)
    for trial in range(50):
        ctx = random_context(rng)
        cand = rng.permutation(n_lines).astype(np.int32)[: int(rng.integers(1, n_lines))]
        n = cand.shape[0]
        user = -1.0 if trial % 2 else 123.0
        out, p = np.empty(n), np.empty(n)
        score(text(ctx), ctx.fmt, ctx.device_type, ctx.hour_of_week, ctx.w, ctx.h, cand, n, keys, value, user,
              weight, out, p)
        m = hash_context(text(ctx), ctx.fmt, ctx.device_type, ctx.hour_of_week, ctx.w, ctx.h, feats)
        rows = []
        for line in cand:
            k = indices(feats, m, keys[line], np.uint64((1 << bits) - 1), row)
            rows.append(row[:k].tolist())
        p_ref = np.array(score_py(rows, weight))
        assert p == pytest.approx(p_ref, rel=1e-12)
        expected = p_ref * (user if user >= 0 else value[cand])
        assert out == pytest.approx(expected, rel=1e-12)


def test_ftrl_on_a_held_out_simulated_log_is_as_good_as_the_ground_truth() -> None:
    world = World(seed=11)
    train, _ = world.sample(200_000, seed=1)
    test, p_true = world.sample(50_000, seed=2)
    weight, _ = ctr.train(train, bits=20)
    p = ctr.predict(test, weight)
    y = np.array([e.converted for e in test], dtype=np.float64)
    assert metrics.auc(y, p) >= metrics.auc(y, p_true) - 0.01
    assert metrics.log_loss(y, p) <= 1.02 * metrics.log_loss(y, p_true)
    assert metrics.ece(y, p) < 0.02


def test_metrics_on_known_cases() -> None:
    y = np.array([0.0, 0.0, 1.0, 1.0])
    assert metrics.auc(y, np.array([0.1, 0.4, 0.35, 0.8])) == 0.75
    assert metrics.log_loss(y, np.full(4, 0.5)) == pytest.approx(np.log(2))
    assert metrics.ece(y, np.full(4, 0.5), bins=1) == 0.0
