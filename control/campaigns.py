"""Campaigns in SQLite: the operator's request, the plan, the status, and the bidder snapshot.

Every change that the bidder can see bumps the snapshot version in the same transaction, so a bidder
polling with ``If-None-Match`` sees each change exactly once and never a half-written one.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from typing import Any

import msgspec

from bidder.campaign import Campaign as BidderCampaign
from control.clock import Clock
from control.db import Database
from control.errors import BadRequest, Conflict, NotFound
from control.planner import to_bidder
from control.schemas import (
    Audience,
    BidderSnapshot,
    Campaign,
    CampaignCreate,
    CampaignPatch,
    CampaignStatus,
    Plan,
)

Notify = Callable[[str, dict[str, Any]], None]


CURSOR = "^c[0-9]{1,18}$"  # opaque to clients; the position after which the next page starts


def _cursor(seq: int) -> str:
    return f"c{seq}"


def _seq(cursor: str) -> int:
    if re.fullmatch(CURSOR, cursor) is None:
        raise BadRequest("cursor is not one this API returned; pass next_cursor as given", field="cursor")
    return int(cursor[1:])


class CampaignStore:
    def __init__(self, db: Database, clock: Clock, notify: Notify | None = None) -> None:
        self.db = db
        self.clock = clock
        self.notify: Notify = notify or (lambda _event, _data: None)
        self._snapshot: tuple[int, bytes] = (-1, b"")

    # -- reading ---------------------------------------------------------------------------------

    def _from_row(self, row: Any) -> Campaign:
        return Campaign(
            campaign_id=row["id"], status=row["status"], reason=row["reason"],
            created_at=row["created_at"], updated_at=row["updated_at"],
            request=msgspec.json.decode(row["spec"], type=CampaignCreate),
            plan=msgspec.json.decode(row["plan"], type=Plan) if row["plan"] else None,
        )

    def get(self, campaign_id: str) -> Campaign:
        row = self.db.one("SELECT * FROM campaigns WHERE id = ?", (campaign_id,))
        if row is None:
            raise NotFound(f"no campaign {campaign_id!r}", campaign_id=campaign_id)
        return self._from_row(row)

    def page(self, status: str | None, limit: int, cursor: str | None) -> tuple[list[Campaign], str | None]:
        after = _seq(cursor) if cursor else 0
        sql, params = "SELECT * FROM campaigns WHERE seq > ?", list[object]([after])
        if status:
            sql += " AND status = ?"
            params.append(status)
        rows = self.db.query(sql + " ORDER BY seq LIMIT ?", (*params, limit + 1))
        more = len(rows) > limit
        rows = rows[:limit]
        return [self._from_row(r) for r in rows], (_cursor(rows[-1]["seq"]) if more else None)

    def all(self) -> list[Campaign]:
        return [self._from_row(r) for r in self.db.query("SELECT * FROM campaigns ORDER BY seq")]

    def version(self) -> int:
        return int(self.db.get_meta("campaigns_version", "0"))

    def snapshot_json(self) -> tuple[int, bytes]:
        """The encoded snapshot; every bidder asks for the same version, so it is built once."""
        version = self.version()
        if self._snapshot[0] != version:
            version, campaigns = self.snapshot()
            self._snapshot = (version, msgspec.json.encode(BidderSnapshot(version, campaigns)))
        return self._snapshot

    def snapshot(self) -> tuple[int, list[BidderCampaign]]:
        with self.db.tx():
            rows = self.db.query(
                "SELECT status, plan FROM campaigns WHERE status IN ('active', 'paused') ORDER BY seq"
            )
            version = self.version()
        out: list[BidderCampaign] = []
        for r in rows:
            out.extend(to_bidder(msgspec.json.decode(r["plan"], type=Plan), r["status"]))
        return version, out

    # -- writing ---------------------------------------------------------------------------------

    def create(self, spec: CampaignCreate) -> Campaign:
        cid = f"cmp_{secrets.token_hex(8)}"
        now = self.clock.now()
        self.db.insert(
            "INSERT INTO campaigns (id, status, spec, created_at, updated_at) VALUES (?, 'draft', ?, ?, ?)",
            (cid, msgspec.json.encode(spec).decode(), now, now),
        )
        return self.get(cid)

    def _save(self, c: Campaign, status: CampaignStatus, reason: str = "", plan: Plan | None = None,
              spec: CampaignCreate | None = None) -> Campaign:
        with self.db.tx():
            self.db.execute(
                "UPDATE campaigns SET status = ?, reason = ?, plan = ?, spec = ?, updated_at = ? "
                "WHERE id = ?",
                (status, reason, msgspec.json.encode(plan).decode() if plan else None,
                 msgspec.json.encode(spec or c.request).decode(), self.clock.now(), c.campaign_id),
            )
            self.db.bump_version()
        if status != c.status:
            self.notify("campaign.status_changed", {
                "campaign_id": c.campaign_id, "from": c.status, "to": status, "reason": reason,
            })
        return self.get(c.campaign_id)

    def update(self, campaign_id: str, patch: CampaignPatch) -> Campaign:
        c = self.get(campaign_id)
        if c.status in ("archived", "failed"):
            raise Conflict(f"campaign {campaign_id!r} is {c.status}; it can no longer change",
                           status=c.status)
        if c.status == "draft" and (patch.status or patch.monthly_budget or patch.target_audience):
            raise Conflict(f"campaign {campaign_id!r} is still being planned; retry when it is active",
                           status=c.status)
        spec, plan = c.request, c.plan
        if patch.name is not None:
            spec = msgspec.structs.replace(spec, name=patch.name)
        if patch.monthly_budget is not None and plan is not None:
            plan = scale_budget(plan, patch.monthly_budget / spec.monthly_budget)
            spec = msgspec.structs.replace(spec, monthly_budget=patch.monthly_budget)
        if patch.target_audience is not None and plan is not None:
            plan = retarget(plan, patch.target_audience)
            spec = msgspec.structs.replace(spec, target_audience=patch.target_audience)
        return self._save(c, patch.status or c.status, c.reason, plan, spec)

    def set_plan(self, campaign_id: str, plan: Plan) -> Campaign:
        c = self.get(campaign_id)
        return self._save(c, c.status, c.reason, plan)

    def archive(self, campaign_id: str) -> Campaign:
        c = self.get(campaign_id)
        return self._save(c, "archived", "deleted by the operator", c.plan)

    # -- PlanSink ----------------------------------------------------------------------------------

    def pending_drafts(self) -> list[str]:
        rows = self.db.query("SELECT id FROM campaigns WHERE status = 'draft' ORDER BY seq")
        return [r["id"] for r in rows]

    def spec_of(self, campaign_id: str) -> CampaignCreate | None:
        row = self.db.one("SELECT spec FROM campaigns WHERE id = ? AND status = 'draft'", (campaign_id,))
        return msgspec.json.decode(row["spec"], type=CampaignCreate) if row else None

    def planned(self, campaign_id: str, plan: Plan) -> None:
        self._save(self.get(campaign_id), "active", "", plan)

    def plan_failed(self, campaign_id: str, reason: str) -> None:
        self._save(self.get(campaign_id), "failed", reason)


def scale_budget(plan: Plan, factor: float) -> Plan:
    r = msgspec.structs.replace
    return r(plan, platforms=[
        r(pp, monthly_budget=round(pp.monthly_budget * factor, 6), ad_sets=[
            r(s, monthly_budget=round(s.monthly_budget * factor, 6),
              daily_budget=round(s.daily_budget * factor, 6))
            for s in pp.ad_sets
        ])
        for pp in plan.platforms
    ])


def retarget(plan: Plan, audience: Audience) -> Plan:
    r = msgspec.structs.replace
    return r(plan, platforms=[
        r(pp, ad_sets=[
            r(s, audience=audience if s.id.endswith(".core") else Audience(countries=audience.countries))
            for s in pp.ad_sets
        ])
        for pp in plan.platforms
    ])
