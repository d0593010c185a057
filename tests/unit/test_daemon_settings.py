"""The daemon's settings (flags > config file > environment, both spellings of each key, the
Node CLI's ``input``), the pidfile's lock, and a line as an event document: in-process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from doow_serverless._core.settings_file import parse_settings_file
from doow_serverless._core.wire import read_event
from doow_serverless.daemon._lines import line_document
from doow_serverless.daemon._pidfile import Pidfile, PidfileError
from doow_serverless.daemon._settings import Flags, SettingsError, load

KEY = "dk_settings_test_000000001"
ENV = {"DOOW_TRACK_API_KEY": "dk_from_the_environment_02", "XDG_STATE_HOME": "/state"}


def settings_from(tmp_path: Path, file: dict[str, Any] | None = None, **flags: Any) -> Any:
    if file is not None:
        config = tmp_path / "doow-track.json"
        config.write_text(json.dumps(file))
        flags["config"] = config
    return load(Flags(**flags), ENV)


def test_both_spellings_of_each_key_are_read(tmp_path: Path) -> None:
    camel = settings_from(
        tmp_path,
        {
            "apiKey": KEY,
            "flushAt": 7,
            "flushInterval": 250,
            "spoolMaxBytes": 1000,
            "maxQueueSize": 99,
            "shutdownTimeout": 1500,
            "attribution": {"env": "prod"},
        },
    )
    snake = settings_from(
        tmp_path,
        {
            "api_key": KEY,
            "flush_at": 7,
            "flush_interval": 250,
            "spool_max_bytes": 1000,
            "max_queue_size": 99,
            "shutdown_timeout": 1500,
            "attribution": {"env": "prod"},
        },
    )
    assert camel == snake
    assert camel.tracker.api_key == KEY
    assert (camel.tracker.flush_at, camel.tracker.flush_interval) == (7, 0.25)
    assert (camel.spool_max_bytes, camel.tracker.max_queue_size, camel.grace) == (1000, 99, 1.5)
    assert camel.tracker.attribution == {"env": "prod"}


def test_flags_beat_the_file_which_beats_the_environment(tmp_path: Path) -> None:
    assert settings_from(tmp_path).tracker.api_key == ENV["DOOW_TRACK_API_KEY"]
    assert settings_from(tmp_path, {"apiKey": KEY}).tracker.api_key == KEY
    flagged = settings_from(tmp_path, {"apiKey": KEY}, api_key="dk_from_the_flag_0000003")
    assert flagged.tracker.api_key == "dk_from_the_flag_0000003"
    assert settings_from(tmp_path, {"listen": "9001"}, listen="127.0.0.1:9002").listen == (
        "127.0.0.1",
        9002,
    )
    assert settings_from(tmp_path).spool_dir == "/state/doow-serverless/daemon-spool"


@pytest.mark.parametrize(
    ("given", "lines_port", "follow"),
    [
        ({"mode": "tcp", "port": 7001}, 7001, ()),
        ({"mode": "file", "path": "/var/log/usage.ndjson"}, None, ("/var/log/usage.ndjson",)),
        ([{"mode": "tcp", "port": 7001}, {"mode": "file", "path": "a"}], 7001, ("a",)),
    ],
)
def test_the_node_clis_input_is_read(
    tmp_path: Path, given: Any, lines_port: int | None, follow: tuple[str, ...]
) -> None:
    settings = settings_from(tmp_path, {"input": given})
    assert (settings.lines_port, settings.follow) == (lines_port, follow)


def test_the_input_variable_is_read_and_flags_beat_it(tmp_path: Path) -> None:
    env = {**ENV, "DOOW_TRACK_INPUT": "file:/var/log/a.ndjson"}
    assert load(Flags(), env).follow == ("/var/log/a.ndjson",)
    assert load(Flags(), {**ENV, "DOOW_TRACK_INPUT": "tcp:7002"}).lines_port == 7002
    assert load(Flags(follow=("b",)), env).follow == ("b",)


@pytest.mark.parametrize(
    ("file", "flags", "message"),
    [
        ({"input": {"mode": "stdin"}}, {}, "pipe mode: use `doow-serverless send`"),
        ({"input": {"mode": "udp"}}, {}, "input mode must be 'tcp' or 'file'"),
        ({"listen": "host:99999"}, {}, "port number from 0 to 65535"),
        ({"apiKey": "sk_live_secret"}, {}, "api_key must be a Doow SDK key"),
        ({"apiKey": KEY, "api_key": "dk_other_00000000000"}, {}, "gives 'api_key' twice"),
        ({"spoolMaxBytes": 0}, {}, "spool_max_bytes must be a whole number"),
        ({}, {"listen": "off"}, "no input"),
        ({"allowRemote": "yes"}, {}, "allow_remote must be true or false"),
    ],
)
def test_settings_that_cannot_be_used_say_why_and_never_show_a_key(
    tmp_path: Path, file: dict[str, Any], flags: dict[str, Any], message: str
) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")) as raised:
        settings_from(tmp_path, file, **flags)
    assert "sk_live_secret" not in str(raised.value)
    assert "dk_other" not in str(raised.value)


def test_the_token_is_not_in_the_settings_repr(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("dk_local_abcdefghijklmnopqrstuvwxyz\n")
    settings = settings_from(tmp_path, token_file=str(token))
    assert settings.token == "dk_local_abcdefghijklmnopqrstuvwxyz"
    assert "abcdefghijklmnop" not in repr(settings)
    assert KEY[-8:] not in repr(settings_from(tmp_path, {"apiKey": KEY}))


def test_the_config_file_parser_refuses_unknown_keys_and_non_objects() -> None:
    with pytest.raises(ValueError, match="unknown key"):
        parse_settings_file('{"flushEvery": 1}', "f")
    with pytest.raises(ValueError, match="must hold a JSON object"):
        parse_settings_file("[1]", "f")
    assert parse_settings_file('{"flushAt": 3}', "f") == {"flush_at": 3}


def test_a_pidfile_is_held_by_one_owner_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "daemon.pid"
    first, second = Pidfile(path), Pidfile(path)
    first.acquire()
    with pytest.raises(PidfileError, match="another daemon"):
        second.acquire()
    assert sorted(item.name for item in tmp_path.iterdir()) == ["daemon.pid"]  # no leftovers
    first.release()
    assert not path.exists()
    path.write_text("12345\n")  # stale: nobody holds it
    second.acquire()
    assert path.read_text().strip().isdigit() and path.read_text() != "12345\n"
    second.release()


def test_a_line_becomes_the_document_the_tracker_would_send() -> None:
    document = line_document(
        '{"metric": "tokens", "quantity": 5, "license_id": "lic_a", "unit": "tokens",'
        ' "attribution": {"model": "m"}, "timestamp": "2026-11-22T10:15:30+02:00",'
        ' "idempotency_key": "order-1"}',
        {"env": "prod", "model": "default"},
    )
    assert isinstance(document, dict)
    assert document["attribution"] == {"env": "prod", "model": "m"}
    assert document["occurred_at"] == "2026-11-22T08:15:30.000Z"
    assert document["measurements"] == [{"metric_name": "tokens", "quantity": 5}]
    assert not isinstance(read_event(document), str)
    again = line_document(
        '{"metric": "x", "quantity": 1, "license_id": "l", "idempotency_key": "order-1"}', None
    )
    assert isinstance(again, dict) and again["event_id"] == document["event_id"]
    seeded = [
        line_document('{"metric": "x", "quantity": 1, "license_id": "l"}', None, "s:1")
        for _ in range(2)
    ]
    assert seeded[0]["event_id"] == seeded[1]["event_id"]  # type: ignore[index]
    assert line_document('{"metric": "x", "quantity": 1}', None) == "missing license_id"
    assert str(
        line_document('{"metric": "x", "quantity": 1, "license_id": "l", "attribution": 3}', None)
    ).startswith("attribution")
