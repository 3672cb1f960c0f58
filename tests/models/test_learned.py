from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bidder.models import ArtefactError, LearnedModel, ModelError, UserTable, load_model, warm_up
from bidder.models.artefact import save_artefact
from bidder.models.ctr import score_py
from bidder.models.features import MAX_FEATURES, hash_bytes, hash_context, indices, text
from bidder.value import Context, ValueModel

from .support import campaign, lines_of

CTX = Context(fmt=0, device_type=4, os="ios", country="usa", region="ca", inventory="news.example",
              publisher="pub-1", hour_of_week=30, w=300, h=250, user_id="u1", segments=("s1",))


def reference_p(weight: np.ndarray, cid: str, ctx: Context) -> float:
    feats = np.empty(MAX_FEATURES, dtype=np.uint64)
    row = np.empty(2 * MAX_FEATURES, dtype=np.int64)
    m = hash_context(text(ctx), ctx.fmt, ctx.device_type, ctx.hour_of_week, ctx.w, ctx.h, feats)
    k = indices(feats, m, np.uint64(hash_bytes(cid.encode())), np.uint64(weight.shape[0] - 1), row)
    return score_py([row[:k].tolist()], weight)[0]


def model(users: UserTable | None = None) -> LearnedModel:
    return LearnedModel(np.random.default_rng(9).normal(-0.2, 0.3, 1 << 12), "ctr-test", users)


def test_learned_model_is_a_value_model() -> None:
    m: ValueModel = model()
    assert m.version == "ctr-test"


def test_unknown_user_is_valued_at_the_campaigns_value_per_conversion() -> None:
    m = model()
    scorer = m.bind(lines_of([campaign("a", 10.0), campaign("b", 40.0)], per_campaign=2))
    cand = np.array([3, 0, 2], dtype=np.int32)
    out = np.empty(3)
    scorer.values(cand, 3, CTX, out)
    expected = [reference_p(m.weight, c, CTX) * v for c, v in (("b", 40.0), ("a", 10.0), ("b", 40.0))]
    assert out == pytest.approx(expected, rel=1e-12)
    assert scorer.explain(3, CTX) == pytest.approx((reference_p(m.weight, "b", CTX), 40.0))


def test_known_user_is_valued_at_their_predicted_ltv() -> None:
    users = UserTable(["u1"], np.array([250.0]), np.array([0.8]))
    m = model(users)
    scorer = m.bind(lines_of([campaign("a", 10.0)]))
    out = np.empty(1)
    scorer.values(np.array([0], dtype=np.int32), 1, CTX, out)
    assert out[0] == pytest.approx(reference_p(m.weight, "a", CTX) * 250.0)
    assert scorer.explain(0, CTX)[1] == 250.0
    assert m.user_ltv("u1") == 250.0 and m.user_ltv("nobody") is None


def write_models(tmp_path: Path, features_version: int = 1) -> tuple[Path, Path, Path]:
    ctr = save_artefact(tmp_path, "ctr", {"weight": np.zeros(1 << 10)}, "0" * 64, {},
                        {"features_version": features_version, "bits": 10})
    params = {"bg": np.array([0.243, 4.414, 0.793, 2.426]), "gg": np.array([6.25, 3.74, 15.44])}
    ltv = save_artefact(tmp_path, "ltv", params, "0" * 64, {}, {"horizon_weeks": 52})
    users = tmp_path / "users.csv"
    users.write_text("user_id,x,t_x,T,monetary\nu1,2,30.43,38.86,22.35\n")
    return ctr, ltv, users


def test_load_model_serves_the_artefacts_and_the_users_file(tmp_path: Path) -> None:
    ctr, ltv, users = write_models(tmp_path)
    m = load_model(ctr, ltv, users)
    assert m.version == f"{ctr.stem}+{ltv.stem}"
    ltv_u1 = m.user_ltv("u1")
    assert ltv_u1 is not None and 20 < ltv_u1 < 60
    out = np.empty(1)
    m.bind(lines_of([campaign("a")])).values(np.array([0], dtype=np.int32), 1, CTX, out)
    assert out[0] == pytest.approx(0.5 * ltv_u1)  # all-zero weights: P = 0.5


def test_load_model_refuses_a_model_hashed_with_other_features(tmp_path: Path) -> None:
    ctr, _, _ = write_models(tmp_path, features_version=99)
    with pytest.raises(ArtefactError, match="features version 99"):
        load_model(ctr)


def test_load_model_refuses_users_without_an_ltv_model(tmp_path: Path) -> None:
    ctr, _, users = write_models(tmp_path)
    with pytest.raises(ModelError, match="give both or neither"):
        load_model(ctr, users_path=users)


def test_warm_up_compiles_every_serving_kernel() -> None:
    warm_up()
    from bidder.models.ctr import bias_cross, pick_best, score

    assert len(score.signatures) >= 1
    assert len(pick_best.signatures) >= 1 and len(bias_cross.signatures) >= 1
