"""The planner: goal, budget and audience to the bidder's campaigns, with a pluggable copy generator."""

from __future__ import annotations

import pytest

from control.planner import AdCopy, CopyBrief, FallbackCopy, PlanError, TemplateCopy, build_plan, to_bidder
from control.schemas import Audience, CampaignCreate, Product

pytestmark = pytest.mark.anyio


def spec(**kw) -> CampaignCreate:
    base = {"business_goal": "drive online sales", "monthly_budget": 1000.0, "advertiser_domain": "b.example"}
    return CampaignCreate(**{**base, **kw})


class LLM:
    name = "llm"

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.briefs: list[CopyBrief] = []

    async def generate(self, brief: CopyBrief, n: int) -> list[AdCopy]:
        self.briefs.append(brief)
        if self.fail:
            raise TimeoutError("model did not answer")
        return [AdCopy(f"{brief.product} #{i}", "Written by a model.", "Buy") for i in range(n)]


async def test_budget_is_split_across_platforms_and_ad_sets_without_losing_a_cent():
    s = spec(platforms=["openrtb", "google_ads", "meta"], monthly_budget=999.99,
             target_audience=Audience(countries=["USA"], interests=["golf"]))
    plan = await build_plan("cmp_1", s, TemplateCopy())
    sets = [a for p in plan.platforms for a in p.ad_sets]
    assert sum(a.monthly_budget for a in sets) == pytest.approx(999.99, abs=1e-5)
    assert {a.id.rpartition(".")[2] for a in sets} == {"core", "broad"}
    # sales weigh google_ads above the open exchange
    by = {p.platform: p.monthly_budget for p in plan.platforms}
    assert by["google_ads"] > by["openrtb"]
    assert all(b.status == "active" for b in to_bidder(plan, "active"))


@pytest.mark.parametrize(("goal", "objective"), [
    ("Increase online sales", "sales"), ("collect leads for demos", "leads"),
    ("more app installs", "app_installs"), ("brand awareness in Q3", "awareness"),
])
async def test_objective_comes_from_the_business_goal(goal, objective):
    assert (await build_plan("c", spec(business_goal=goal), TemplateCopy())).objective == objective


async def test_aggressive_mode_bids_higher_and_target_cpa_sets_the_conversion_value():
    standard = await build_plan("c", spec(target_cpa=40.0), TemplateCopy())
    aggressive = await build_plan("c", spec(target_cpa=40.0, optimization_mode="aggressive"), TemplateCopy())
    bid_s = standard.platforms[0].ad_sets[0].bid
    bid_a = aggressive.platforms[0].ad_sets[0].bid
    assert bid_a.max_cpm > bid_s.max_cpm and bid_s.value_per_conversion == 40.0


async def test_plugged_copy_generator_writes_the_ads():
    llm = LLM()
    plan = await build_plan("c", spec(products=[Product("Kettle", "https://b.example/k")]), FallbackCopy(llm))
    ad = plan.platforms[0].ad_sets[0].ads[0]
    assert ad.headline == "Kettle #0" and plan.copy_source == "llm"
    assert llm.briefs[0].objective == "sales" and ad.landing_url == "https://b.example/k"


async def test_failing_copy_generator_falls_back_to_templates():
    plan = await build_plan("c", spec(products=[Product("Kettle")]), FallbackCopy(LLM(fail=True)))
    ad = plan.platforms[0].ad_sets[0].ads[0]
    assert plan.copy_source == "template" and "Kettle" in ad.headline


async def test_advertiser_comes_from_a_product_url_or_the_plan_fails():
    plan = await build_plan("c", spec(advertiser_domain="", products=[Product("K", "https://www.k.example/p")]),
                            TemplateCopy())
    assert plan.advertiser == "k.example"
    with pytest.raises(PlanError, match="advertiser_domain"):
        await build_plan("c", spec(advertiser_domain=""), TemplateCopy())


async def test_template_markup_escapes_copy():
    plan = await build_plan("c", spec(products=[Product('<script>x</script>')]), TemplateCopy())
    adm = to_bidder(plan, "active")[0].creatives[0].adm
    assert "<script>" not in adm and "&lt;script&gt;" in adm
