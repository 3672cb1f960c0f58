"""Campaign files and settings: bad input is refused with a message that says what and where."""

from __future__ import annotations

import json

import pytest

from bidder.campaign import CampaignError, load_campaigns, parse_campaigns
from bidder.settings import SettingsError, from_env
from bidder.value import rate_table
from control.cli import main
from tests.bidder.conftest import campaign


def parse(*items: dict) -> None:
    parse_campaigns(json.dumps({"campaigns": list(items)}).encode())


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"bid": {"max_cpm": -1}}, "campaign 'c1': bid.max_cpm"),
        ({"bid": {"max_cpm": "x"}}, "campaign 'c1' (campaigns[0]): Expected `float`, got `str` - at `$.bid.max_cpm`"),
        ({"budget": {"total": 0}}, "campaign 'c1': budget.total"),
        ({"advertiser": "nodomain"}, "campaign 'c1': advertiser"),
        ({"creatives": []}, "campaign 'c1': creatives"),
        ({"creatives": [{"id": "a", "format": "banner", "adm": "x"}]}, "campaign 'c1': creatives[0].w/h"),
        ({"creatives": [{"id": "a", "format": "video", "adm": "x"}]}, "campaign 'c1': creatives[0].mimes"),
        ({"targeting": {"hours": [25]}}, "campaign 'c1': targeting.hours"),
        ({"targeting": {"contries": ["USA"]}}, "unknown field `contries`"),
        ({"platform": "myspace"}, "campaign 'c1' (campaigns[0]): Invalid enum value 'myspace' - at `$.platform`"),
        ({"bid": {"max_cpm": 1, "conversion_rate": {"video": 2}}}, "bid.conversion_rate['video']"),
    ],
)
def test_campaign_errors_name_the_campaign_and_field(overrides: dict, message: str) -> None:
    with pytest.raises(CampaignError) as err:
        parse(campaign(**overrides))
    assert message in str(err.value)


def test_duplicate_campaign_ids_are_refused() -> None:
    with pytest.raises(CampaignError, match="campaign 'c1': id is used twice"):
        parse(campaign(), campaign())


def test_missing_or_broken_file_says_so(tmp_path) -> None:
    with pytest.raises(CampaignError, match="cannot read campaign file"):
        load_campaigns(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(CampaignError, match="not valid JSON"):
        load_campaigns(bad)


def test_conversion_rate_resolves_the_most_specific_key() -> None:
    (c,) = parse_campaigns(json.dumps([campaign(bid={
        "max_cpm": 1, "conversion_rate": {"default": 0.1, "video": 0.2, "4": 0.3, "video/4": 0.4}})]).encode())
    t = rate_table(c)
    assert (t[0, 1], t[1, 1], t[0, 4], t[1, 4]) == (0.1, 0.2, 0.3, 0.4)


def test_unknown_rtb_variables_are_refused_by_name() -> None:
    with pytest.raises(SettingsError, match="RTB_NOTCE_SECRET"):
        from_env({"RTB_NOTCE_SECRET": "x"})


def test_the_shared_data_variable_is_not_the_bidders_to_refuse() -> None:
    # RTB_SHARED is read by the tests and rtb bench; a bidder started from that shell must still run.
    assert from_env({"RTB_SHARED": "/somewhere/shared"}).workers == 1


def test_settings_are_typed_from_the_environment() -> None:
    s = from_env({"RTB_WORKERS": "1", "RTB_SHADE": "0.5", "RTB_BIND": "0.0.0.0:9000"})
    assert (s.workers, s.shade, s.host, s.port) == (1, 0.5, "0.0.0.0", 9000)
    with pytest.raises(SettingsError, match="shade"):
        from_env({"RTB_SHADE": "2"})
    with pytest.raises(SettingsError, match="bind"):
        from_env({"RTB_BIND": "nowhere"})


def test_bind_is_an_ip_address_and_a_port() -> None:
    s = from_env({"RTB_BIND": "[::1]:9000"})
    assert (s.host, s.port, s.notice_base) == ("::1", 9000, "http://[::1]:9000")
    for bad in ("localhost:9000", "127.0.0.1:99999", "127.0.0.1:0", "127.0.0.1:", "[::1:9000", "256.1.1.1:80"):
        with pytest.raises(SettingsError, match=r"bind \(--bind, RTB_BIND\) must be IP:PORT, an address and not "
                                                r"a host name, e\.g\. 127\.0\.0\.1:8080 or \[::1\]:8080; got"):
            from_env({"RTB_BIND": bad})


@pytest.mark.parametrize("command", [["bidder", "--bind"], ["control", "--bind"], ["up", "--control-bind"]])
def test_a_host_name_for_an_address_is_refused_in_one_line(command: list[str], tmp_path, monkeypatch,
                                                            capsys) -> None:
    monkeypatch.setenv("RTB_DATA_DIR", str(tmp_path))
    assert main([*command, "localhost:8081"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rtb: error: ") and err.count("\n") == 1
    assert f"{command[1]}" in err and "must be IP:PORT" in err and "'localhost:8081'" in err


def test_more_than_one_worker_refuses_to_start(capsys) -> None:
    assert main(["bidder", "--workers", "2", "--bind", "127.0.0.1:1"]) == 2
    assert "would multiply every budget" in capsys.readouterr().err


def test_bad_campaign_file_refuses_to_start(tmp_path, capsys) -> None:
    bad = tmp_path / "c.json"
    bad.write_text(json.dumps({"campaigns": [campaign(bid={"max_cpm": 0})]}))
    assert main(["bidder", "--campaigns", str(bad)]) == 2
    assert "campaign 'c1': bid.max_cpm" in capsys.readouterr().err
