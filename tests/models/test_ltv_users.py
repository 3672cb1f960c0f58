from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bidder.models.errors import DataError
from bidder.models.ltv import LtvParams, ltv, ltv_many, ltv_py
from bidder.models.users import load_users

BG = np.array([0.243, 4.414, 0.793, 2.426])
GG = np.array([6.25, 3.74, 15.44])


def test_ltv_kernels_equal_the_reference_on_random_customers() -> None:
    rng = np.random.default_rng(5)
    n = 400
    T = rng.uniform(1, 80, n)
    x = rng.integers(0, 30, n).astype(np.float64)
    t_x = np.where(x > 0, rng.uniform(0, 1, n) * T, 0.0)
    m = np.where(x > 0, rng.uniform(1, 200, n), 0.0)
    out, alive = np.empty(n), np.empty(n)
    ltv_many(BG, GG, 52.0, x, t_x, T, m, out, alive)
    for i in range(n):
        expected = ltv_py(BG, GG, 52.0, x[i], t_x[i], T[i], m[i])
        assert out[i] == pytest.approx(expected, rel=1e-9)
        assert ltv(BG, GG, 52.0, x[i], t_x[i], T[i], m[i]) == out[i]


def test_ltv_grows_with_the_horizon() -> None:
    values = [ltv(BG, GG, h, 3.0, 30.0, 38.0, 25.0) for h in (4.0, 26.0, 52.0, 156.0)]
    assert values == sorted(values) and values[0] > 0


def test_users_file_gives_each_known_user_the_kernels_ltv(tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    path.write_text("user_id,x,t_x,T,monetary\nu1,2,30.43,38.86,22.35\nu2,0,0,38.86,0\n")
    table = load_users(path, LtvParams(bg=BG, gg=GG, horizon_weeks=39.0))
    assert len(table) == 2
    assert table.ltv["u1"] == pytest.approx(ltv(BG, GG, 39.0, 2.0, 30.43, 38.86, 22.35))
    assert 0 < table.p_alive["u1"] <= 1 and table.p_alive["u2"] == 1.0
    assert "u3" not in table.ltv


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("id,x\n", "line 1: header must be"),
        ("user_id,x,t_x,T,monetary\nu1,2,30,20,10\n", "line 2: needs x >= 0, 0 <= t_x <= T"),
        ("user_id,x,t_x,T,monetary\nu1,2,3,20\n", "line 2: expected"),
        ("user_id,x,t_x,T,monetary\nu1,2,3,20,5\nu1,1,3,20,5\n", "line 3: user id 'u1' is empty or repeated"),
        ("user_id,x,t_x,T,monetary\nu1,2,3,20,0\n", "line 2: a user with repeat purchases needs monetary"),
    ],
)
def test_bad_users_file_is_refused_naming_file_and_line(tmp_path: Path, body: str, problem: str) -> None:
    path = tmp_path / "users.csv"
    path.write_text(body)
    with pytest.raises(DataError, match="users.csv: " + problem.replace("(", r"\(")):
        load_users(path, LtvParams(bg=BG, gg=GG))
