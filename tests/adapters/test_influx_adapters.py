"""The shared InfluxDB reader and writer: one classification of failures for both, a reader threads can share."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import temperature_line, write_lines

from adapters.influx_errors import (
    InfluxAuthError,
    InfluxError,
    InfluxNotFoundError,
    InfluxRefusedError,
    InfluxTimeoutError,
    InfluxUnreachableError,
    http_error,
)
from adapters.influx_read import V1Reader, open_reader
from adapters.influx_write import PointsRefusedError, open_writer
from cli.services import InfluxDB, free_port
from coldchain.errors import RetryableStoreError
from coldchain.settings.influx import InfluxSettings

TS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, InfluxAuthError),
        (403, InfluxAuthError),
        (400, InfluxRefusedError),
        (413, InfluxRefusedError),
        (422, InfluxRefusedError),
        (404, InfluxNotFoundError),
        (500, InfluxError),
        (503, InfluxError),
    ],
)
def test_an_http_status_is_classified_once(status: int, kind: type[InfluxError]) -> None:
    """Each status is one kind (5xx: none of the special ones), its message naming the server and its error."""
    error = http_error("http://db:8086", status, '{"error":"it says why"}', "the query", "user 'qa'")
    assert type(error) is kind
    assert error.status == status
    assert "InfluxDB at http://db:8086" in str(error)
    assert "it says why" in str(error)


def _retry_cause(settings: InfluxSettings) -> BaseException | None:
    """The classified failure behind the RetryableStoreError the writer raises for one reading."""
    writer = open_writer(settings)
    try:
        with pytest.raises(RetryableStoreError) as caught:
            writer.write(temperature_line("C-1", "probe1", TS, -170.0, 1).encode())
    finally:
        writer.close()
    return caught.value.__cause__


def _v2(tmp_path: Path, url: str) -> InfluxSettings:
    token = tmp_path / "token"
    token.write_text("a-token\n")
    token.chmod(0o600)
    return InfluxSettings(api="v2", url=url, org="qa", bucket="cold", token_file=token, timeout_s=5.0)


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_nothing_listening_is_unreachable_to_reader_and_writer(tmp_path: Path, api: str) -> None:
    """With nothing at the URL, the reader raises InfluxUnreachableError and the writer says retry, for that cause."""
    url = f"http://127.0.0.1:{free_port()}"
    settings = _v2(tmp_path, url) if api == "v2" else InfluxSettings(url=url, timeout_s=5.0)
    with pytest.raises(InfluxUnreachableError, match=f"InfluxDB at {url} cannot be reached"):
        open_reader(settings).extent({"crate": "C-1"})
    assert isinstance(_retry_cause(settings), InfluxUnreachableError)


@pytest.fixture
def silent_peer() -> Iterator[str]:
    """A fault: a loopback port that takes connections and never answers (a hung server)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_a_server_that_does_not_answer_times_out_for_reader_and_writer(silent_peer: str) -> None:
    """No answer within timeout_s is InfluxTimeoutError (an unreachable server) for the reader and the writer."""
    settings = InfluxSettings(url=silent_peer, timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(InfluxTimeoutError, match=r"no answer within 0\.5 s"):
        open_reader(settings).extent({"crate": "C-1"})
    assert isinstance(_retry_cause(settings), InfluxTimeoutError)
    assert time.monotonic() - started < 10  # the writer's one fresh retry included


@pytest.mark.integration
def test_points_the_server_refuses_are_refused_for_good(influxdb: InfluxDB, database: str) -> None:
    """A field type conflict is InfluxRefusedError, which the writer's caller meets as PointsRefusedError."""
    write_lines(influxdb, database, [f"temperature,crate=C-R fault=1.0 {TS}"])
    writer = open_writer(InfluxSettings(url=influxdb.url, database=database))
    try:
        with pytest.raises(PointsRefusedError) as caught:
            writer.write(f'temperature,crate=C-R fault="OPEN" {TS + 1}'.encode())
    finally:
        writer.close()
    assert isinstance(caught.value.__cause__, InfluxRefusedError)


@pytest.mark.integration
def test_a_missing_database_is_not_found(influxdb: InfluxDB) -> None:
    """Reading a database that is not there is InfluxNotFoundError naming it."""
    reader = open_reader(InfluxSettings(url=influxdb.url, database="no_such_db"))
    with pytest.raises(InfluxNotFoundError, match="has no database 'no_such_db'"):
        reader.extent({"crate": "C-1"})


@pytest.mark.integration
def test_one_reader_answers_threads_asking_at_once(influxdb: InfluxDB, database: str) -> None:
    """The board shares one reader between request threads: every concurrent query gets its own answer."""
    write_lines(influxdb, database, [temperature_line("C-T", "probe1", TS + i * 1000, -170.0, i) for i in range(20)])
    reader = V1Reader(InfluxSettings(url=influxdb.url, database=database, timeout_s=30.0))
    answers: list[tuple[int, int] | None] = []
    failures: list[BaseException] = []

    def ask() -> None:
        for _ in range(5):
            try:
                answers.append(reader.extent({"crate": "C-T"}))
            except InfluxError as exc:
                failures.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert answers == [(TS, TS + 19_000)] * 40
