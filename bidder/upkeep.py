"""A worker's background upkeep: campaign state from the control plane, model artefacts from disk.

Both are pulled, never pushed, so the bidder depends on neither: when the control plane is down the
bidder keeps bidding on its last good snapshot (kept in the data directory, so it survives a
restart too) and says so in ``/status``; a new model artefact that fails to load is refused with its
error in ``/status`` and the old model keeps serving. The new state is built in a worker thread
(``Engine.prepare``: most of a second with 10,000 campaigns, which on the event loop would stall every
request meanwhile) and put in place between two requests (``Engine.install``), so no request is dropped
or sees a half-swapped state.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import msgspec

from bidder.campaign import Campaign, CampaignError, parse_campaigns
from bidder.engine import Prepared
from bidder.service import Bidder
from bidder.value import ValueModel

log = logging.getLogger("rtb.bidder")

POLL_SECONDS = 0.25
SNAPSHOT = "campaigns-snapshot.json"


class _Snapshot(msgspec.Struct):
    version: int
    campaigns: list[msgspec.Raw]


def load_model(settings_model: str, ltv: str, users: str) -> ValueModel:
    from bidder.models import load_model as load

    return load(settings_model, ltv or None, users or None)


def _background_build(build: Callable[..., Prepared], *args: object) -> Prepared:
    """``build(*args)`` as run in a worker thread beside the event loop, 10,000 campaigns here:
    - with the garbage collector off: the build makes hundreds of thousands of objects, which set off
      full collections that hold the GIL, and so the loop, for up to 300 ms; the server freezes them
      once they are in place (``after_load``);
    - with the GIL handed over every 0.5 ms instead of 5: the loop answered about 120 bids during a
      400 ms build, and over 2,000 during a 520 ms one."""
    enabled = gc.isenabled()
    interval = sys.getswitchinterval()
    gc.disable()
    sys.setswitchinterval(0.0005)
    try:
        return build(*args)
    finally:
        sys.setswitchinterval(interval)
        if enabled:
            gc.enable()


class Upkeep:
    def __init__(self, bidder: Bidder, transport: httpx.AsyncBaseTransport | None = None,
                 after_load: Callable[[], None] = lambda: None) -> None:
        """``after_load`` runs after each new campaign set or model is in place (the server freezes
        the heap then, see ``bidder.server``)."""
        self.bidder = bidder
        self._after_load = after_load
        s = bidder.settings
        self._snapshot = Path(s.data_dir) / SNAPSHOT
        self._client = (
            httpx.AsyncClient(base_url=s.control_url, transport=transport, timeout=2.0,
                              headers={"authorization": f"Bearer {s.control_key}"} if s.control_key else {})
            if s.control_url else None
        )
        self._etag = ""
        # An artefact is a .json naming its .npz: watch both, so a copy that lands in two steps is
        # retried when its second half arrives.
        files = [p for p in (s.model, s.ltv_model, s.users) if p]
        self._model_files = files + [str(Path(p).with_suffix(".npz")) for p in files if p.endswith(".json")]
        self._mtimes = self._stat()
        self.status = bidder.upkeep_status
        self.status.update(control=None, model_error=None)
        # Campaigns from the file stay; the control plane's are added to them (its version of a campaign
        # wins when both have the same id). An empty file makes the control plane the only source.
        self._static = list(bidder.engine.campaigns)
        if self._client is not None:
            self.status["control"] = {"url": s.control_url, "reachable": None, "version": None, "error": None}
            self._restore()

    # --- campaigns from the control plane ----------------------------------------------------------

    def _restore(self) -> None:
        """Start from the last snapshot the control plane gave, if any (else the campaign file)."""
        if not self._snapshot.exists():
            return
        try:
            snap = msgspec.json.decode(self._snapshot.read_bytes(), type=_Snapshot)
            campaigns = parse_campaigns(msgspec.json.encode({"campaigns": snap.campaigns}))
        except (msgspec.DecodeError, CampaignError) as exc:
            log.error("ignoring the campaign snapshot %s: %s", self._snapshot, exc)
            return
        self._load(campaigns)
        self._etag = f'"{snap.version}"'
        self._control()["version"] = snap.version

    def _merged(self, managed: list[Campaign]) -> list[Campaign]:
        ids = {c.id for c in managed}
        return [c for c in self._static if c.id not in ids] + managed

    def _load(self, managed: list[Campaign]) -> None:
        self.bidder.engine.load(self._merged(managed))
        self._after_load()

    def _prepare(self, snap: _Snapshot) -> Prepared:
        """Off the event loop: parse a pushed campaign set and build its state."""
        managed = parse_campaigns(msgspec.json.encode({"campaigns": snap.campaigns}))
        return _background_build(self.bidder.engine.prepare, self._merged(managed))

    def _control(self) -> dict[str, object]:
        return self.status["control"]  # type: ignore[return-value]

    async def pull_campaigns(self) -> bool:
        """One conditional GET; True when a new campaign set was loaded."""
        assert self._client is not None
        state = self._control()
        try:
            r = await self._client.get("/api/v1/bidder/campaigns",
                                       headers={"if-none-match": self._etag} if self._etag else {})
        except httpx.HTTPError as exc:
            state.update(reachable=False, error=f"{type(exc).__name__}: {exc}")
            return False
        if r.status_code == 304:
            state.update(reachable=True, error=None)
            return False
        if r.status_code != 200:
            state.update(reachable=False, error=f"HTTP {r.status_code}")
            return False
        try:
            snap = msgspec.json.decode(r.content, type=_Snapshot)
            prepared = await asyncio.to_thread(self._prepare, snap)
            self.bidder.engine.install(prepared)
        except ValueError as exc:  # DecodeError, CampaignError, a budget the shield refuses
            # A bad push is refused whole: the last good campaigns keep bidding.
            state.update(reachable=True, error=f"refused campaign state: {exc}")
            return False
        self._after_load()
        tmp = self._snapshot.with_suffix(".tmp")
        tmp.write_bytes(r.content)
        os.replace(tmp, self._snapshot)
        self._etag = r.headers.get("etag", f'"{snap.version}"')
        state.update(reachable=True, error=None, version=snap.version)
        log.info("campaigns version %d from the control plane", snap.version)
        return True

    # --- the model ---------------------------------------------------------------------------------

    def _stat(self) -> list[float]:
        out = []
        for p in self._model_files:
            try:
                out.append(os.stat(p).st_mtime)
            except OSError:
                out.append(-1.0)
        return out

    async def check_model(self) -> bool:
        """Swap in the model when its files changed; True when a new model serves."""
        mtimes = self._stat()
        if mtimes == self._mtimes:
            return False
        self._mtimes = mtimes
        s = self.bidder.settings
        engine = self.bidder.engine
        try:
            model = await asyncio.to_thread(load_model, s.model, s.ltv_model, s.users)
            prepared = await asyncio.to_thread(_background_build, engine.prepare, engine.campaigns, model)
        except (ValueError, OSError) as exc:  # ModelError is a ValueError
            self.status["model_error"] = str(exc)
            log.error("model not swapped, the old one keeps serving: %s", exc)
            return False
        engine.install(prepared)
        self._after_load()
        self.status["model_error"] = None
        log.info("model %s serving", model.version)
        return True

    async def run(self) -> None:
        while True:
            try:
                if self._client is not None:
                    await self.pull_campaigns()
                if self._model_files:
                    await self.check_model()
            except Exception:  # upkeep must never die: log and try again next tick
                log.exception("bidder upkeep failed")
            await asyncio.sleep(POLL_SECONDS)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
