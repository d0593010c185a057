"""Settings: explicit argument > DOOW_TRACK_* variable > default, and the kill switch."""

from __future__ import annotations

import logging

import pytest

from doow_serverless import DoowConfigError, DoowTracker
from doow_serverless._core.config import is_plain_http_host, key_hint, redact, resolve_config

KEY = "dk_live_0123456789abcdef"


def test_defaults_follow_the_official_sdks() -> None:
    config = resolve_config({})
    assert config.endpoint == "https://api.doow.co"
    assert config.ingest_url == "https://api.doow.co/telemetry/events"
    assert (config.flush_at, config.flush_interval, config.max_queue_size) == (20, 10.0, 10_000)
    assert (config.timeout, config.retry_count, config.compression) == (10.0, 3, True)
    assert config.enabled and not config.debug and not config.strict
    assert config.send_blocker is not None and "no API key" in config.send_blocker


def test_env_values_are_read_with_their_units() -> None:
    config = resolve_config(
        {
            "DOOW_TRACK_API_KEY": KEY,
            "DOOW_TRACK_ENDPOINT": "https://ingest.example.com/",
            "DOOW_TRACK_FLUSH_AT": "5",
            "DOOW_TRACK_FLUSH_INTERVAL": "2500",
            "DOOW_TRACK_TIMEOUT": "1500",
            "DOOW_TRACK_RETRY_COUNT": "0",
            "DOOW_TRACK_MAX_QUEUE_SIZE": "7",
            "DOOW_TRACK_ATTRIBUTION": '{"env": "prod", "shard": 3}',
            "DOOW_TRACK_DEBUG": "true",
            "DOOW_TRACK_STRICT": "1",
            "DOOW_TRACK_COMPRESSION": "none",
        }
    )
    assert config.api_key == KEY
    assert config.endpoint == "https://ingest.example.com"
    assert config.flush_at == 5
    assert config.flush_interval == 2.5
    assert config.timeout == 1.5
    assert config.retry_count == 0
    assert config.max_queue_size == 7
    assert config.attribution == {"env": "prod", "shard": 3}
    assert config.debug and config.strict and not config.compression
    assert config.send_blocker is None and config.warnings == ()


def test_explicit_arguments_beat_the_environment() -> None:
    environ = {
        "DOOW_TRACK_API_KEY": "dk_from_env_0000",
        "DOOW_TRACK_ENDPOINT": "https://env.example.com",
        "DOOW_TRACK_FLUSH_AT": "5",
        "DOOW_TRACK_DEBUG": "true",
    }
    config = resolve_config(
        environ, api_key=KEY, endpoint="https://arg.example.com", flush_at=9, debug=False
    )
    assert config.api_key == KEY
    assert config.endpoint == "https://arg.example.com"
    assert config.flush_at == 9
    assert config.debug is False


@pytest.mark.parametrize("value", ["true", "TRUE", "1", "yes", " on "])
def test_disabled_env_is_a_kill_switch_even_over_enabled_true(value: str) -> None:
    assert resolve_config({"DOOW_TRACK_DISABLED": value}, enabled=True).enabled is False


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DOOW_TRACK_FLUSH_AT", "many"),
        ("DOOW_TRACK_FLUSH_AT", "0"),
        ("DOOW_TRACK_FLUSH_INTERVAL", "-5"),
        ("DOOW_TRACK_TIMEOUT", "0"),
        ("DOOW_TRACK_TIMEOUT", "nan"),
        ("DOOW_TRACK_RETRY_COUNT", "1.5"),
        ("DOOW_TRACK_ATTRIBUTION", "{not json"),
        ("DOOW_TRACK_ATTRIBUTION", '{"nested": {"a": 1}}'),
        ("DOOW_TRACK_DEBUG", "maybe"),
        ("DOOW_TRACK_COMPRESSION", "brotli"),
    ],
)
def test_malformed_env_values_warn_by_name_and_fall_back(variable: str, value: str) -> None:
    config = resolve_config({variable: value, "DOOW_TRACK_API_KEY": KEY})
    assert len(config.warnings) == 1
    assert config.warnings[0].startswith(variable)
    assert resolve_config({"DOOW_TRACK_API_KEY": KEY})._replace(warnings=()) == (
        config._replace(warnings=())
    )


def test_malformed_env_never_raises_at_construction(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="doow_serverless"):
        tracker = DoowTracker(environ={"DOOW_TRACK_FLUSH_AT": "lots", "DOOW_TRACK_API_KEY": KEY})
    assert tracker.config.flush_at == 20
    assert "DOOW_TRACK_FLUSH_AT must be a whole number" in caplog.text


@pytest.mark.parametrize(
    ("argument", "value", "fragment"),
    [
        ("flush_at", 0, "flush_at must be a whole number >= 1"),
        ("flush_at", True, "flush_at must be a whole number"),
        ("timeout", -1.0, "timeout must be a number of seconds > 0"),
        ("flush_interval", float("inf"), "flush_interval must be a number of seconds"),
        ("retry_count", -1, "retry_count must be a whole number >= 0"),
        ("compression", "zstd", "compression must be 'gzip' or None"),
        ("attribution", {"a": [1]}, "attribution value of 'a' must be a str"),
        ("endpoint", "ftp://example.com", "endpoint must be an http(s) URL"),
        ("endpoint", "http://example.com", "plain http://"),
        ("endpoint", "https://user:pw@example.com", "must not carry credentials"),
        ("enabled", "yes", "enabled must be True or False"),
    ],
)
def test_explicit_bad_arguments_raise_a_config_error_naming_them(
    argument: str, value: object, fragment: str
) -> None:
    with pytest.raises(DoowConfigError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        resolve_config({}, **{argument: value})  # type: ignore[arg-type]


def test_an_explicit_key_is_stripped_like_one_from_the_environment() -> None:
    assert resolve_config({}, api_key=f" {KEY}\n").api_key == KEY


def test_an_explicit_key_must_be_a_dk_key_and_is_never_echoed() -> None:
    secret = "sk_live_very_secret_value_1234"
    with pytest.raises(DoowConfigError) as caught:
        DoowTracker(secret)
    assert secret not in str(caught.value)
    assert "dk_" in str(caught.value)


def test_a_bad_env_key_keeps_events_but_blocks_sending() -> None:
    config = resolve_config({"DOOW_TRACK_API_KEY": "sk_wrong_prefix_1234"})
    assert config.api_key is None
    assert config.send_blocker is not None
    assert "sk_wrong_prefix_1234" not in " ".join(config.warnings)


def test_a_plain_http_env_endpoint_blocks_sending_instead_of_redirecting() -> None:
    config = resolve_config({"DOOW_TRACK_API_KEY": KEY, "DOOW_TRACK_ENDPOINT": "http://proxy.corp"})
    assert config.endpoint == "http://proxy.corp"
    assert config.send_blocker is not None and "plain http://" in config.send_blocker
    allowed = resolve_config(
        {
            "DOOW_TRACK_API_KEY": KEY,
            "DOOW_TRACK_ENDPOINT": "http://proxy.corp",
            "DOOW_TRACK_ALLOW_HTTP": "true",
        }
    )
    assert allowed.send_blocker is None


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.10.20.30", True),
        ("localhost", True),
        ("::1", True),
        ("host.docker.internal", True),
        ("128.0.0.1", False),
        ("127.0.0.1.example.com", False),
        ("10.0.0.1", False),
        ("example.com", False),
    ],
)
def test_plain_http_is_only_for_loopback_and_the_docker_host(host: str, expected: bool) -> None:
    assert is_plain_http_host(host) is expected


def test_key_hint_and_redaction_never_reveal_the_key() -> None:
    assert key_hint(KEY) == "dk_…cdef"
    assert key_hint(None) == "<none>"
    assert key_hint("pk_3f9a") == "…"  # not a Doow key: nothing of it is shown
    assert key_hint("dk_1234567") == "…"  # too short to show a tail
    assert KEY not in key_hint(KEY)
    assert redact(f"Bearer {KEY} failed", KEY) == "Bearer dk_…cdef failed"


def test_repr_shows_a_hint_not_the_key() -> None:
    tracker = DoowTracker(KEY, endpoint="http://127.0.0.1:9")
    assert KEY not in repr(tracker)
    assert "dk_…cdef" in repr(tracker)
