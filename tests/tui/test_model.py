"""The TUI's model and its pure helpers: what the screens draw, as functions of what the
service said and of the time (given, never read)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.tui.fakes import NOW, config, events, reports, status
from tui.config import config_rows, file_keys
from tui.eventlog import matches
from tui.model import (
    EventLine,
    StationModel,
    Throughput,
    Today,
    describe_note,
    duration_text,
    rejected_key,
    spark_text,
)
from tui.queue import report_summary, report_text, sort_text


@pytest.fixture(autouse=True)
def _utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_throughput_counts_uploads_per_whole_minute() -> None:
    rate = Throughput(keep_minutes=3)
    for at in (NOW - 125, NOW - 61, NOW - 60, NOW - 1, NOW):
        rate.add(at)
    # NOW is a whole minute; only the newest 3 minutes are kept (NOW - 125 was dropped).
    assert rate.series(NOW, 4) == [0, 1, 2, 1]
    assert rate.series(NOW + 600, 2) == [0, 0]
    # 30 s into a minute: this minute's count plus half of the one before.
    half = Throughput()
    for at in [NOW - 30] * 4 + [NOW + 10] * 2:
        half.add(at)
    assert half.per_minute(NOW + 30) == 2 + 4 * 0.5


def test_spark_text_scales_to_the_highest_bar() -> None:
    assert spark_text([0, 0, 0]) == "▁▁▁"
    assert spark_text([0, 5, 10]) == "▁▅█"
    assert spark_text([]) == ""


def test_durations_read_as_a_person_would_say_them() -> None:
    cases = [
        (None, "-"),
        (0, "0s"),
        (59.9, "59s"),
        (61, "1m 1s"),
        (3725, "1h 2m"),
        (90000, "1d 1h"),
    ]
    for seconds, text in cases:
        assert duration_text(seconds) == text


def test_every_notification_has_one_line_of_text() -> None:
    for method, params in events():
        line = describe_note(method, params)
        assert line, method
        assert "\n" not in line, method
    assert describe_note("file.rejected", {"reason": "bad\nthing", "folder": "a"}).count(
        "bad thing"
    )
    assert "dropped" in describe_note("events.gap", {"dropped": 3})
    assert describe_note("something.new", {"x": 1, "seq": 2}) == "{'x': 1}"


def test_the_model_follows_the_events() -> None:
    model = StationModel("ict", "/run/pywats/ict/control.sock")
    assert model.service_state == "connecting"
    assert model.connected(status(), model.socket, "stream-1", NOW)
    assert not model.connected(status(), model.socket, "stream-1", NOW)  # same stream
    model.take_changes()
    model.apply_notes(events())
    changed = model.take_changes()
    assert {"events", "errors", "counts", "folders", "files"} <= changed
    assert model.retrying == {"00000000-0000-4000-8000-000000000009"}
    assert model.queue["done"] == 9  # from the stats event
    assert model.folders["ict"]["rejected"] == 2
    assert model.folders["fct"]["enabled"] is False
    assert (model.today.queued, model.today.uploaded, model.today.failed) == (1, 1, 1)
    assert [e.text for e in model.errors][-1].startswith("ict: could not convert")
    assert model.received == len(events())
    # The next day starts from zero.
    model.apply_note("report.queued", {"at": NOW + 86400, "report_id": "x", "seq": 200})
    assert (model.today.queued, model.today.uploaded) == (1, 0)
    # Uploaded after a retry: no longer waiting.
    model.apply_note("report.uploaded", {"at": NOW, "report_id": next(iter(model.retrying))})
    assert model.retrying == set()
    model.disconnected("not_running", model.socket, "nothing listens")
    assert model.service_state == "not running"
    assert "connection" in model.take_changes()


def test_a_new_stream_rebuilds_what_came_from_the_old_one() -> None:
    model = StationModel("ict", "s")
    model.connected(status(), "s", "stream-1", NOW)
    model.apply_notes(events())
    assert model.retrying
    assert model.connected(status(), "s", "stream-2", NOW)
    assert not model.retrying
    assert not model.errors


def test_the_clock_warning_needs_the_service_to_know_the_servers_clock() -> None:
    model = StationModel("ict", "s")
    model.connected(status(), "s", "stream-1", NOW)
    assert model.clock_warning() is None
    ahead = status()
    ahead["server"]["clock_ahead_s"] = 125.0
    model.apply_status(ahead, NOW)
    warning = model.clock_warning()
    assert warning is not None
    assert "2m 5s ahead of the server" in warning
    ahead["server"]["clock_ahead_s"] = 2.0
    model.apply_status(ahead, NOW)
    assert model.clock_warning() is None


def test_where_each_configuration_value_came_from() -> None:
    keys = file_keys({"server": {"url": "x"}, "converters": [{"name": "a"}, {"watch": "b"}]})
    assert keys >= {"server", "server.url", "converters[0].name", "converters[1].watch"}
    rows = {key: (value, source) for key, value, source in config_rows(config(), keys)}
    assert rows["server.url"] == ("https://wats.example.com", "file")
    assert rows["upload.workers"] == ("4", "default")
    assert rows["server.token"] == ("*** (hidden)", "server.token_file /etc/pywats/ict.token")
    assert rows["converters[0].patterns"] == ("*.json", "default")
    # Defaults that come from the environment say so (the state directory's variables).
    assert rows["queue.path"] == ("/var/lib/pywats/ict/queue.db", "state dir")
    assert rows["converters[1].error_dir"][1] == "state dir"
    assert rows["queue.retention_days"] == ("7", "default")
    in_file = file_keys({"queue": {"path": "/data/q.db"}})
    assert {k: s for k, _, s in config_rows(config(), in_file)}["queue.path"] == "file"
    for source, shown in (
        ("PYWATS_TOKEN", "environment PYWATS_TOKEN"),
        ("CREDENTIALS_DIRECTORY/token", "systemd credential /run/credentials/pywats@ict/token"),
    ):
        path = None if source == "PYWATS_TOKEN" else "/run/credentials/pywats@ict/token"
        env = config()
        env["server"] = dict(env["server"], token={"source": source, "path": path})
        assert ("server.token", "*** (hidden)", shown) in config_rows(env, keys)
    unreadable = {key: source for key, _, source in config_rows(config(), None)}
    assert unreadable["server.url"] == "file or default"
    option = config() | {"server_url_option": "http://127.0.0.1:8780"}
    assert {k: s for k, _, s in config_rows(option, keys)}["server.url"] == "--server-url"
    defaults = config() | {"file": "built-in defaults"}
    assert {s for _, _, s in config_rows(defaults, set())} <= {
        "default",
        "state dir",
        "server.token_file /etc/pywats/ict.token",
    }
    no_token = config()
    no_token["server"] = dict(no_token["server"], token=None)
    assert ("server.token", "(none)", "-") in config_rows(no_token, keys)


def test_the_event_filter_wants_every_word() -> None:
    line = EventLine(NOW, "report.failed", "rejected SN00010 by the server: HTTP 400", 1, 1)
    assert matches(line, "SN00010 400")
    assert matches(line, "report.failed")
    assert not matches(line, "SN00010 503")


def test_the_pane_below_the_table_fits_80_columns_and_keeps_every_field() -> None:
    row = reports()[2]  # the failed one, with the server's answer
    assert row["state"] == "failed"
    summary = report_summary({**row, "source": "/srv/results/ict/b.json"}, NOW)
    assert len(summary.splitlines()) == 8
    assert max(len(line) for line in summary.splitlines()) <= 78  # 80 less the scrollbar
    assert "HTTP 400: bad miscInfo" in summary.splitlines()[2]  # what went wrong: near the top
    for value in (row["id"], row["sn"], row["pn"], row["start"], "wsjf", "400", "attempts"):
        assert str(value) in summary
    assert "server said   HTTP 400: bad miscInfo" in report_text(row, NOW)
    assert sort_text("next_attempt", True) == "next attempt reversed"


def read_of(model: StationModel, **ids: set[str]) -> Today:
    read = Today()
    read.roll(NOW)
    for name, found in ids.items():
        setattr(read, name, found)
    return read


def test_todays_counts_merge_a_read_and_the_events_counting_each_report_once() -> None:
    model = StationModel("ict", "s")
    model.connected(status(), "s", "stream-1", NOW - 600)
    journal = model.begin_read()
    model.apply_notes(events())  # they come while the read goes on
    assert not model.today.loaded
    rid = "00000000-0000-4000-8000-0000000000"
    # The read saw report 10 failed (its event came too), 12 queued, 1 and 13 uploaded,
    # board-013 refused: each once, whichever told of it first.
    model.end_read(
        journal,
        read_of(
            model,
            queued_ids={f"{rid}12", f"{rid}13"},
            uploaded_ids={f"{rid}01", f"{rid}13"},
            failed_ids={f"{rid}10"},
            rejected_files={rejected_key("ict", "/var/lib/pywats/ict/error/wsjf/board-013.json")},
        ),
        set(),
    )
    today = model.today
    assert (today.queued, today.uploaded, today.failed, today.rejected) == (2, 2, 1, 2)
    assert today.loaded
    # The same read again (a reconnection) changes nothing.
    journal = model.begin_read()
    model.end_read(journal, read_of(model, queued_ids={f"{rid}12"}), set())
    assert (model.today.queued, model.today.rejected) == (2, 2)


def test_events_during_a_read_have_the_last_word_on_who_waits_for_a_retry() -> None:
    model = StationModel("ict", "s")
    model.connected(status(), "s", "stream-1", NOW)
    journal = model.begin_read()
    # The read saw A and B waiting; meanwhile A was uploaded and C failed for a while.
    model.apply_note("report.uploaded", {"at": NOW, "report_id": "A"})
    model.apply_note("report.retrying", {"at": NOW, "report_id": "C"})
    model.end_read(journal, read_of(model), {"A", "B"})
    assert model.retrying == {"B", "C"}
    assert model.journal is None
    # A failed read keeps what the events made, and says the counts are only those.
    fresh = StationModel("ict", "s")
    fresh.connected(status(), "s", "stream-1", NOW)
    journal = fresh.begin_read()
    fresh.apply_note("report.queued", {"at": NOW, "report_id": "D"})
    fresh.end_read(journal, None, None)
    assert (fresh.today.queued, fresh.today.loaded) == (1, False)
