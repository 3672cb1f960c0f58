"""The user-value table: predicted LTV of the users an advertiser knows, looked up by id.

Users file (CSV, UTF-8, one row per id) with the header ``user_id,x,t_x,T,monetary``:
- ``user_id``: the id the bid request carries (``user.id``, ``user.buyeruid`` or an ``eids`` uid);
  a customer known under several ids has one row per id;
- ``x``: repeat purchases; ``t_x``: weeks from the first to the last purchase; ``T``: weeks from the
  first purchase to the file's date; ``monetary``: mean spend of the repeat purchases in USD (0 if x = 0).
This is what ``rtb train ltv --users-out`` writes. LTVs are computed once at load (numba, vectorised), so
a lookup in the request path is one dict access.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from bidder.models.errors import DataError
from bidder.models.ltv import LtvParams, ltv_many
from bidder.models.transactions import Summary

HEADER = "user_id,x,t_x,T,monetary"


class UserTable:
    """user id -> predicted LTV in USD over the LTV model's horizon; also P(alive) per user."""

    __slots__ = ("ltv", "p_alive")

    def __init__(self, ids: list[str], ltv: NDArray[np.float64], p_alive: NDArray[np.float64]) -> None:
        self.ltv: dict[str, float] = dict(zip(ids, ltv.tolist(), strict=True))
        self.p_alive: dict[str, float] = dict(zip(ids, p_alive.tolist(), strict=True))

    def __len__(self) -> int:
        return len(self.ltv)

    @classmethod
    def from_summary(cls, s: Summary, params: LtvParams, where: str = "users") -> UserTable:
        n = len(s.ids)
        out_ltv, out_alive = np.empty(n), np.empty(n)
        ltv_many(params.bg, params.gg, params.horizon_weeks, s.x, s.t_x, s.T, s.monetary, out_ltv, out_alive)
        bad = np.flatnonzero(~np.isfinite(out_ltv))
        if bad.size:
            raise DataError(where, f"LTV is not finite for user {s.ids[bad[0]]!r} ({bad.size} users)")
        return cls(s.ids, out_ltv, out_alive)


def read_users(path: str | Path) -> Summary:
    """Parse a users file (format in the module docstring); errors name the file and line."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, f"cannot read users file: {exc}") from exc
    if not lines or lines[0].strip() != HEADER:
        raise DataError(path, f"line 1: header must be {HEADER!r}")
    ids: list[str] = []
    rows: list[tuple[float, float, float, float]] = []
    seen: set[str] = set()
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split(",")
        try:
            uid = fields[0].strip()
            x, t_x, T, m = (float(f) for f in fields[1:])
        except ValueError as exc:
            raise DataError(path, f"line {n}: expected {HEADER}, got {line!r}") from exc
        if not uid or uid in seen:
            raise DataError(path, f"line {n}: user id {uid!r} is empty or repeated")
        if not all(math.isfinite(v) for v in (x, t_x, T, m)) or not (0 <= t_x <= T and x >= 0 and m >= 0):
            raise DataError(path, f"line {n}: needs x >= 0, 0 <= t_x <= T, monetary >= 0, got {line!r}")
        if x > 0 and m == 0:
            raise DataError(path, f"line {n}: a user with repeat purchases needs monetary > 0")
        seen.add(uid)
        ids.append(uid)
        rows.append((x, t_x, T, m))
    a = np.array(rows, dtype=np.float64).reshape(-1, 4)
    return Summary(ids=ids, x=a[:, 0].copy(), t_x=a[:, 1].copy(), T=a[:, 2].copy(), monetary=a[:, 3].copy())


def write_users(path: str | Path, s: Summary) -> None:
    rows = [HEADER] + [
        f"{uid},{x:g},{t:.6g},{T:.6g},{m:.6g}"
        for uid, x, t, T, m in zip(s.ids, s.x, s.t_x, s.T, s.monetary, strict=True)
    ]
    Path(path).write_text("\n".join(rows) + "\n", encoding="utf-8")


def load_users(path: str | Path, params: LtvParams) -> UserTable:
    return UserTable.from_summary(read_users(path), params, where=str(path))
