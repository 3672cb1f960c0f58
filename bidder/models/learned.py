"""The learned value model behind ``bidder.value.ValueModel``.

Expected value of an impression for a line = P(conversion | context, line's campaign) from the FTRL
model x value of a conversion: the user's predicted LTV when ``ctx.user_id`` is in the user table, the
campaign's ``bid.value_per_conversion`` otherwise. A ``LearnedModel`` is immutable: to swap models,
load a new one (off the request path), ``bind`` it and replace the reference; the old one keeps serving
until then. Scorers are not shared between threads (each holds a scratch buffer).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from bidder.jit import entry
from bidder.models.artefact import load_artefact
from bidder.models.ctr import line_table, pick_best, score
from bidder.models.errors import ArtefactError, ModelError
from bidder.models.features import FEATURES_VERSION, hash_bytes, text
from bidder.models.hyp2f1 import hyp2f1
from bidder.models.ltv import LtvParams, ltv, ltv_many
from bidder.models.users import UserTable, load_users
from bidder.pricing import campaign_arrays
from bidder.value import BestScorer, Context, Lines

Array = NDArray[np.float64]


class _LearnedScorer:
    __slots__ = ("_explain_one", "_key", "_last", "_p", "_pick", "_table", "_users", "_value", "_values", "_weight")

    def __init__(self, weight: Array, users: dict[str, float], lines: Lines) -> None:
        self._weight = weight
        self._users = users
        keys = [np.uint64(hash_bytes(c.id.encode())) for c in lines.campaigns]
        self._key = np.array([keys[c] for c in lines.campaign], dtype=np.uint64)
        self._value = np.array(
            [lines.campaigns[c].bid.value_per_conversion for c in lines.campaign], dtype=np.float64
        )
        self._values: list[float] = self._value.tolist()
        self._p = np.empty(max(lines.n, 1))
        inv_roas, max_cpm = campaign_arrays(lines.campaigns)
        self._table = line_table(self._key, self._value, inv_roas[lines.campaign], max_cpm[lines.campaign], weight)
        # (line, ctx, P, user value) of the last ``best``: explain is asked about its winner right after.
        self._last: tuple[int, Context | None, float, float] = (-1, None, 0.0, -1.0)
        self._explain_one = (np.empty(1, dtype=np.int32), np.empty(1), np.empty(1))
        self._pick = entry(pick_best, b"", 0, 0, 0, 0, 0, b"", self._table, -1.0, weight, 0, True, 0.5,
                           np.zeros(2, dtype=np.int64))

    def _user(self, ctx: Context) -> float:
        return self._users.get(ctx.user_id, -1.0) if ctx.user_id else -1.0

    def values(self, cand: NDArray[np.int32], n: int, ctx: Context, out: Array) -> None:
        score(text(ctx), ctx.fmt, ctx.device_type, ctx.hour_of_week, ctx.w, ctx.h, cand, n,
              self._key, self._value, self._user(ctx), self._weight, out, self._p)

    def best(self, bits: bytes, ctx: Context, floor: int, first_price: bool, shade: float,
             out: NDArray[np.int64]) -> int:
        user = self._users.get(ctx.user_id, -1.0) if ctx.user_id else -1.0  # not _user: a call is ~3% here
        line, p = self._pick(text(ctx), ctx.fmt, ctx.device_type, ctx.hour_of_week, ctx.w, ctx.h, bits,
                             self._table, user, self._weight, floor, first_price, shade, out)
        self._last = (line, ctx, p, user)
        return line  # type: ignore[no-any-return]

    def explain(self, line: int, ctx: Context) -> tuple[float, float]:
        last, last_ctx, p, user = self._last
        if line != last or ctx is not last_ctx:
            user = self._user(ctx)
            cand, out, p_out = self._explain_one
            cand[0] = line
            score(text(ctx), ctx.fmt, ctx.device_type, ctx.hour_of_week, ctx.w, ctx.h, cand, 1,
                  self._key, self._value, user, self._weight, out, p_out)
            p = float(p_out[0])
        return p, user if user >= 0.0 else self._values[line]


class LearnedModel:
    """FTRL conversion model x (user LTV | campaign value per conversion)."""

    def __init__(self, weight: Array, version: str, users: UserTable | None = None) -> None:
        if weight.ndim != 1 or weight.shape[0] < 2 or weight.shape[0] & (weight.shape[0] - 1):
            raise ModelError("ctr model", f"weights must be a power-of-two long vector, got {weight.shape}")
        self.weight = weight
        self.users = users
        self._version = version

    @property
    def version(self) -> str:
        return self._version

    def bind(self, lines: Lines) -> BestScorer:
        return _LearnedScorer(self.weight, self.users.ltv if self.users else {}, lines)

    def user_ltv(self, user_id: str) -> float | None:
        """The known user's predicted LTV in USD, or None."""
        return self.users.ltv.get(user_id) if self.users else None


def load_ltv(path: str | Path) -> tuple[LtvParams, str]:
    """LTV parameters and version from an ``ltv`` artefact."""
    art = load_artefact(path, "ltv")
    bg, gg = art.arrays["bg"], art.arrays["gg"]
    horizon = art.meta.params.get("horizon_weeks")
    if not (np.all(bg > 0) and np.all(gg > 0) and gg[1] > 1 and bg[2] != 1):
        raise ArtefactError(art.path, f"parameters out of range: bg={bg.tolist()} gg={gg.tolist()}")
    if not isinstance(horizon, int | float) or not horizon > 0:
        raise ArtefactError(art.path, f"params.horizon_weeks must be a number > 0, got {horizon!r}")
    return LtvParams(bg=bg, gg=gg, horizon_weeks=float(horizon)), art.meta.version


def load_model(
    ctr_artefact_path: str | Path,
    ltv_artefact_path: str | Path | None = None,
    users_path: str | Path | None = None,
) -> LearnedModel:
    """Load and verify a model for serving; raises ModelError (naming the file) and loads nothing then."""
    art = load_artefact(ctr_artefact_path, "ctr")
    features = art.meta.params.get("features_version")
    if features != FEATURES_VERSION:
        problem = f"features version {features!r}, this build hashes version {FEATURES_VERSION}"
        raise ArtefactError(art.path, problem)
    weight = art.arrays["weight"]
    if weight.shape[0] & (weight.shape[0] - 1):
        raise ArtefactError(art.path, f"weight vector of length {weight.shape[0]} is not a power of two")
    if (users_path is None) != (ltv_artefact_path is None):
        raise ModelError("load_model", "a users file and an LTV artefact go together: give both or neither")
    version = art.meta.version
    users = None
    if ltv_artefact_path is not None and users_path is not None:
        params, ltv_version = load_ltv(ltv_artefact_path)
        users = load_users(users_path, params)
        version = f"{version}+{ltv_version}"
    return LearnedModel(weight, version, users)


def warm_up() -> None:
    """Compile (or load from cache) every kernel the serving path and model loading use."""
    ctx = Context()
    # The request path passes int32 candidates; int64 is compiled too in case a caller does not.
    for cand in (np.zeros(1, dtype=np.int32), np.zeros(1, dtype=np.int64)):
        out = np.zeros(1)
        score(text(ctx), 0, 0, 0, 0, 0, cand, 1, np.zeros(1, np.uint64), out, -1.0, np.zeros(2), out, out)  # type: ignore[arg-type]
    weight = np.zeros(2)
    table = line_table(np.zeros(1, np.uint64), np.ones(1), np.ones(1), np.ones(1, np.int64), weight)
    pick_best(text(ctx), 0, 0, 0, 0, 0, b"\x01", table, -1.0, weight, 0, True, 0.8, np.zeros(2, np.int64))
    hash_bytes(b"")
    one = np.ones(1)
    bg, gg = np.array([0.25, 4.0, 0.8, 2.4]), np.array([6.0, 3.7, 15.0])
    ltv_many(bg, gg, 52.0, one, one, one, one, one.copy(), one.copy())
    ltv(bg, gg, 52.0, 1.0, 1.0, 1.0, 1.0)
    hyp2f1(1.0, 1.0, 2.0, 0.5)
