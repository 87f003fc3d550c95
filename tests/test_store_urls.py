"""Store URLs of each Redis mode, and the startup check that every script's keys share a slot."""

from __future__ import annotations

import pytest

from edge.settings import SettingsError, load_settings
from edge.store import slots
from edge.store.slots import SlotError, check_slots
from edge.store.urls import StoreURLError, parse_store_url


def test_a_sentinel_url_names_its_sentinels_master_db_and_passwords() -> None:
    url = "redis+sentinel://:data%40pw@s1:26380,s2,[::1]:26381/mymaster/2?sentinel_password=spw"
    target = parse_store_url(url)
    assert target.mode == "sentinel" and not target.tls
    assert target.nodes == (("s1", 26380), ("s2", 26379), ("::1", 26381))
    assert (target.master, target.db) == ("mymaster", 2)
    assert (target.password, target.sentinel_password) == ("data@pw", "spw")


def test_a_cluster_url_names_its_seed_nodes() -> None:
    target = parse_store_url("rediss+cluster://user:pw@n1:7000,n2:7001")
    assert (target.mode, target.tls, target.username, target.password) == (
        "cluster",
        True,
        "user",
        "pw",
    )
    assert target.nodes == (("n1", 7000), ("n2", 7001))


@pytest.mark.parametrize(
    "url",
    ["redis+sentinel://s1:26379", "redis+cluster://n1:7000/3", "redis+cluster://", "mongo://x"],
)
def test_unusable_urls_are_refused(url: str) -> None:
    with pytest.raises(StoreURLError):
        parse_store_url(url)


def test_settings_take_every_mode_and_hide_the_sentinel_password() -> None:
    url = "redis+sentinel://:datapassword-0123@s1/m/0?sentinel_password=sentinelpassword-0123"
    settings = load_settings({"EDGE_STORE_URL": url, "EDGE_HMAC_SECRET": "x" * 32})
    assert {"datapassword-0123", "sentinelpassword-0123"} <= set(settings.secret_values)
    with pytest.raises(SettingsError):
        load_settings({"EDGE_STORE_URL": "redis+shard://x", "EDGE_HMAC_SECRET": "x" * 32})


def test_every_scripts_keys_hash_to_one_slot() -> None:
    assert check_slots() > 50


def test_a_layout_spanning_two_slots_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # As the usage hashes were named before they carried the account's tag.
    def broken() -> object:
        yield "quota_settle.lua", ["edge:q:{a}:res:r1", "edge:usage:account:a:2026-01-01"]

    monkeypatch.setattr(slots, "key_sets", broken)
    with pytest.raises(SlotError, match=r"quota_settle\.lua"):
        check_slots()
