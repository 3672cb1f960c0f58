"""A synthetic impression log with a known P(conversion | context, campaign), to measure models against.

The generative model (all draws from one ``numpy.random.Generator(seed)``):
- World: 10 campaigns, 60 publishers with Zipf(1.1) traffic, each with 1-3 inventories (sites or
  apps), 12 countries (Zipf traffic, 2-6 regions each, a UTC offset each), device types 2 PC / 4 phone /
  5 tablet / 3 CTV with their OSes, ad sizes per format, 20 user segments.
- Impression: publisher ~ traffic, inventory uniform within it, country ~ traffic, region uniform,
  device ~ (0.35, 0.5, 0.1, 0.05), OS ~ per device, format and size ~ fixed mix, timestamp uniform over
  14 days from Monday 2024-01-01 00:00 UTC, hour of week in the country's local time, Poisson(1.5)
  segments (at most 5) out of 20, a user id for 30% of impressions; campaign uniform.
- Truth: logit P = -3.2 + publisher + inventory + device + OS + country + region + format x size
  + hour-of-day curve 0.3 sin(2 pi (h - 15) / 24) + weekend 0.15
  + campaign + campaign x device + campaign x format x size + sum over segments (segment + campaign x
  segment). Effects are Normal(0, sd) with sd 0.3 publisher, 0.4 inventory, 0.2 device and OS, 0.3
  country, 0.15 region, 0.3 size, 0.5 campaign, 0.3 campaign x device, 0.2 campaign x size; segment
  effects are 0 for half the segments and Normal(0, 0.3) otherwise; each campaign has 3 target segments
  with effect Normal(0.8, 0.2) and 0 elsewhere. converted ~ Bernoulli(P).
Every term is a feature (or cross) of ``bidder.models.features``, so a well-trained model can match the
truth; the mean conversion rate is about 6%.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from bidder.models.events import Event
from bidder.value import FORMATS, Context

Array = NDArray[np.float64]

T0 = 1_704_067_200.0  # Monday 2024-01-01 00:00 UTC
DAYS = 14
DEVICES = np.array([2, 4, 5, 3])
DEVICE_P = np.array([0.35, 0.5, 0.1, 0.05])
OSES = {2: ["windows", "macos", "linux"], 4: ["ios", "android"], 5: ["ios", "android"], 3: ["roku", "tvos"]}
SIZES = [  # (format index, w, h), traffic share
    (0, 300, 250, 0.3), (0, 728, 90, 0.15), (0, 320, 50, 0.2), (0, 160, 600, 0.05), (0, 300, 600, 0.05),
    (1, 640, 360, 0.15), (3, 0, 0, 0.1),
]
COUNTRIES = ["usa", "gbr", "deu", "fra", "can", "aus", "jpn", "bra", "ind", "esp", "ita", "mex"]
UTC_OFFSET = [-5, 0, 1, 1, -5, 10, 9, -3, 5, 1, 1, -6]


class World:
    """The ground truth: every effect of the generative model, drawn once from ``seed``."""

    def __init__(self, seed: int = 1) -> None:
        rng = np.random.default_rng(seed)
        self.seed = seed
        self.campaigns = [f"camp-{i:02d}" for i in range(10)]
        n_pub = 60
        self.pub_p = _zipf(n_pub, 1.1)
        self.pub_fx = rng.normal(0, 0.3, n_pub)
        self.inventories: list[list[str]] = []
        self.inv_fx: list[NDArray[np.float64]] = []
        for i in range(n_pub):
            k = int(rng.integers(1, 4))
            app = rng.random() < 0.4
            self.inventories.append(
                [f"com.pub{i}.app{j}" if app else f"site{j}.pub{i}.example" for j in range(k)]
            )
            self.inv_fx.append(rng.normal(0, 0.4, k))
        self.country_p = _zipf(len(COUNTRIES), 1.0)
        self.country_fx = rng.normal(0, 0.3, len(COUNTRIES))
        self.regions = [[f"r{j}" for j in range(int(rng.integers(2, 7)))] for _ in COUNTRIES]
        self.region_fx = [rng.normal(0, 0.15, len(r)) for r in self.regions]
        self.device_fx = rng.normal(0, 0.2, len(DEVICES))
        self.os_fx = {d: rng.normal(0, 0.2, len(o)) for d, o in OSES.items()}
        self.size_p = np.array([s[3] for s in SIZES])
        self.size_fx = rng.normal(0, 0.3, len(SIZES))
        n_seg, n_camp = 20, len(self.campaigns)
        self.seg_fx = np.where(rng.random(n_seg) < 0.5, 0.0, rng.normal(0, 0.3, n_seg))
        self.camp_fx = rng.normal(0, 0.5, n_camp)
        self.camp_dev_fx = rng.normal(0, 0.3, (n_camp, len(DEVICES)))
        self.camp_size_fx = rng.normal(0, 0.2, (n_camp, len(SIZES)))
        self.camp_seg_fx = np.zeros((n_camp, n_seg))
        for c in range(n_camp):
            self.camp_seg_fx[c, rng.choice(n_seg, 3, replace=False)] = rng.normal(0.8, 0.2, 3)
        self.intercept = -3.2

    def sample(self, n: int, seed: int) -> tuple[list[Event], NDArray[np.float64]]:
        """n impressions in time order and their true P(conversion); ``seed`` picks the draw."""
        rng = np.random.default_rng([self.seed, seed])
        pub = rng.choice(len(self.pub_p), n, p=self.pub_p)
        inv = (rng.random(n) * np.array([len(self.inventories[p]) for p in pub])).astype(int)
        country = rng.choice(len(COUNTRIES), n, p=self.country_p)
        region = (rng.random(n) * np.array([len(self.regions[c]) for c in country])).astype(int)
        dev = rng.choice(len(DEVICES), n, p=DEVICE_P)
        os_i = (rng.random(n) * np.array([len(OSES[int(DEVICES[d])]) for d in dev])).astype(int)
        size = rng.choice(len(SIZES), n, p=self.size_p)
        ts = np.sort(T0 + rng.random(n) * DAYS * 86400)
        how = ((ts - T0) // 3600 + np.array(UTC_OFFSET)[country]).astype(int) % 168
        n_segs = np.minimum(rng.poisson(1.5, n), 5)
        camp = rng.integers(0, len(self.campaigns), n)
        has_user = rng.random(n) < 0.3
        hod = how % 24
        logit = (
            self.intercept + self.pub_fx[pub] + _pick(self.inv_fx, pub, inv)
            + self.device_fx[dev] + _pick([self.os_fx[int(d)] for d in DEVICES], dev, os_i)
            + self.country_fx[country] + _pick(self.region_fx, country, region)
            + self.size_fx[size] + 0.3 * np.sin(2 * np.pi * (hod - 15) / 24) + 0.15 * (how >= 120)
            + self.camp_fx[camp] + self.camp_dev_fx[camp, dev] + self.camp_size_fx[camp, size]
        )
        # The first n_segs[k] of a random permutation of the segments: distinct, uniformly chosen.
        segs = np.argsort(rng.random((n, len(self.seg_fx))), axis=1)[:, :5]
        taken = np.arange(5) < n_segs[:, None]
        logit += ((self.seg_fx[segs] + self.camp_seg_fx[camp[:, None], segs]) * taken).sum(axis=1)
        p = 1.0 / (1.0 + np.exp(-logit))
        converted = rng.random(n) < p
        users = rng.integers(1, 10**7, n)
        events = []
        for k in range(n):
            d, (f, w, h, _) = int(DEVICES[dev[k]]), SIZES[size[k]]
            ctx = Context(
                fmt=f, device_type=d, os=OSES[d][os_i[k]], country=COUNTRIES[country[k]],
                region=self.regions[country[k]][region[k]], inventory=self.inventories[pub[k]][inv[k]],
                publisher=f"pub-{pub[k]}", hour_of_week=int(how[k]), w=w, h=h,
                user_id=f"u{users[k]}" if has_user[k] else "",
                segments=tuple(f"seg-{s}" for s in sorted(segs[k, : n_segs[k]].tolist())),
            )
            c = self.campaigns[camp[k]]
            events.append(Event(campaign=c, converted=bool(converted[k]), ctx=ctx, ts=float(ts[k])))
        return events, p


def _pick(tables: list[NDArray[np.float64]], outer: NDArray[np.int64], inner: NDArray[np.int64]) -> Array:
    return np.array([tables[o][i] for o, i in zip(outer.tolist(), inner.tolist(), strict=True)])


def _zipf(n: int, s: float) -> NDArray[np.float64]:
    w = 1.0 / np.arange(1, n + 1) ** s
    out: NDArray[np.float64] = w / w.sum()
    return out


assert len(FORMATS) == 4  # SIZES uses indices into FORMATS: banner 0, video 1, native 3
