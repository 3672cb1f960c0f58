import threading

from shield import BudgetManager, Budgets, FakeClock, platform_key

USD = 1_000_000


def run_together(n: int, fn: object) -> None:
    barrier = threading.Barrier(n)

    def go() -> None:
        barrier.wait()
        fn()  # type: ignore[operator]

    threads = [threading.Thread(target=go) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_100_threads_of_15_dollars_against_1000_accept_exactly_66_every_run() -> None:
    for _ in range(20):
        budgets = Budgets(FakeClock())
        b = budgets.ensure(platform_key("openrtb"), 1000 * USD)
        results: list[bool] = []

        def spend(b: BudgetManager = b, results: list[bool] = results) -> None:
            results.append(b.try_spend(15 * USD))

        run_together(100, spend)
        assert (results.count(True), results.count(False)) == (66, 34)
        s = b.stats()
        assert (s.spend, s.accepted, s.rejected) == (990 * USD, 66, 34)


def test_100_threads_reserving_accept_exactly_66() -> None:
    budgets = Budgets(FakeClock())
    b = budgets.ensure(platform_key("openrtb"), 1000 * USD)
    ids = iter(range(100))
    lock = threading.Lock()
    results: list[bool] = []

    def reserve() -> None:
        with lock:
            i = next(ids)
        results.append(b.reserve(f"bid-{i}", 15 * USD))

    run_together(100, reserve)
    assert results.count(True) == 66
    assert b.stats().reserved == 990 * USD


def test_google_ads_500_cap_at_275_refuses_300() -> None:
    b = Budgets(FakeClock()).ensure(platform_key("google_ads"), 500 * USD)
    for spend in (100, 75, 100):
        assert b.try_spend(spend * USD)
    assert b.stats().spend == 275 * USD
    assert not b.try_spend(300 * USD)
    assert b.try_spend(225 * USD)  # what is left still fits exactly


def test_meta_400_cap_at_220_refuses_200() -> None:
    b = Budgets(FakeClock()).ensure(platform_key("meta"), 400 * USD)
    assert b.try_spend(220 * USD)
    assert not b.try_spend(200 * USD)
    assert b.stats().spend == 220 * USD


def test_tradedesk_600_cap_at_450_refuses_200() -> None:
    b = Budgets(FakeClock()).ensure(platform_key("tradedesk"), 600 * USD)
    assert b.try_spend(450 * USD)
    assert not b.try_spend(200 * USD)
    assert b.stats().spend == 450 * USD


def test_three_platforms_spending_at_once_keep_independent_totals() -> None:
    budgets = Budgets(FakeClock())
    caps = {"google_ads": 500, "meta": 400, "tradedesk": 600}
    managers = {p: budgets.ensure(platform_key(p), cap * USD) for p, cap in caps.items()}
    accepted = dict.fromkeys(caps, 0)
    lock = threading.Lock()

    def spend_all() -> None:
        for p, m in managers.items():
            if m.try_spend(7 * USD):
                with lock:
                    accepted[p] += 1

    run_together(90, spend_all)
    assert accepted == {"google_ads": 71, "meta": 57, "tradedesk": 85}
    for p, cap in caps.items():
        s = managers[p].stats()
        assert s.spend == (cap // 7) * 7 * USD
        assert s.rejected == 90 - cap // 7
