"""``redis.sentinels`` / ``redis.service_name``: read from the environment or the file, bad
values are one line naming the setting, and the container's one Redis client follows the
Sentinels' master (built without any I/O)."""

from __future__ import annotations

import pytest
from redis.asyncio.sentinel import SentinelConnectionPool

from routing.errors import ConfigurationError
from scripts.container import Container
from scripts.part_config import sentinel_connection
from scripts.settings import load_settings
from scripts.settings_store import host_port


def test_sentinels_from_the_environment_build_a_sentinel_client(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRIVNUM_REDIS__SENTINELS", '["10.0.0.7:26379", "[::1]:26380"]')
    monkeypatch.setenv("PRIVNUM_REDIS__SERVICE_NAME", "pn-main")
    monkeypatch.setenv("PRIVNUM_REDIS__URL", "redis://:s3cret@ignored:1/3")
    settings = load_settings()
    assert settings.redis.configured
    assert settings.redis.sentinel_addresses() == [("10.0.0.7", 26379), ("::1", 26380)]
    index = Container(settings).index
    assert index is not None
    pool = index.client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "pn-main" and pool.is_master
    assert pool.connection_kwargs["db"] == 3
    assert pool.connection_kwargs["password"] == "s3cret"
    assert index.switches == 0 and index.base == "privnum:{privnum}"


def test_without_url_or_sentinels_there_is_no_redis() -> None:
    settings = load_settings()
    assert not settings.redis.configured
    assert Container(settings).index is None


@pytest.mark.parametrize("entry", ["10.0.0.7", "10.0.0.7:port", ":26379", "h:0", "h:70000"])
def test_a_bad_sentinel_address_is_one_line(monkeypatch: pytest.MonkeyPatch,
                                            entry: str) -> None:
    monkeypatch.setenv("PRIVNUM_REDIS__SENTINELS", f'["{entry}"]')
    with pytest.raises(ConfigurationError) as err:
        load_settings()
    message = str(err.value)
    assert message.startswith("invalid setting redis.sentinels")
    assert "not host:port" in message and "PRIVNUM_REDIS__SENTINELS" in message
    assert "\n" not in message


@pytest.mark.parametrize("prefix", ["{privnum}", "pri}vnum", "two words", ""])
def test_a_prefix_that_would_break_the_hash_tag_is_refused(monkeypatch: pytest.MonkeyPatch,
                                                           prefix: str) -> None:
    monkeypatch.setenv("PRIVNUM_REDIS__PREFIX", prefix)
    with pytest.raises(ConfigurationError, match=r"invalid setting redis\.prefix"):
        load_settings()


def test_what_the_url_says_about_the_data_connections() -> None:
    assert sentinel_connection(None) == {}
    assert sentinel_connection("redis://u:p@x:1/2") == {"db": 2, "username": "u",
                                                         "password": "p"}
    assert sentinel_connection("rediss://x/0") == {"db": 0, "ssl": True}
    assert host_port(" 10.1.2.3:26379 ") == ("10.1.2.3", 26379)
