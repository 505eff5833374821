"""Format presets: access lines of uvicorn and gunicorn with typed fields
(issue 5 §4, §5: status as int, request time as float)."""

from __future__ import annotations

import logging
import time

from shipper.parse import PRESETS, build_parser
from tests.support.logging_output import local_zone, write_logs

CREATED = [1_700_000_000.25, 1_700_000_003.5]
REQUESTS = [
    {
        "request_id": "5f1c2a",
        "status_code": 200,
        "request_time": 0.0123,
        "client_addr": "10.0.0.7:51234",
        "request_line": "GET /v1/users?id=1 HTTP/1.1",
    },
    {
        "request_id": "-",
        "status_code": 503,
        "request_time": 12.5,
        "client_addr": "[2001:db8::1]:443",
        "request_line": 'POST /v1/say?q="quoted" HTTP/1.1',
    },
]


class _PrefixFormatter(logging.Formatter):
    """As uvicorn's formatter: ``levelprefix`` is "INFO:" padded to 9 columns."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.levelprefix = (record.levelname + ":").ljust(9)
        return super().formatMessage(record)


class TestUvicornAccess:
    def test_request_id_status_and_time_typed(self) -> None:
        """The issue's access line: status_code an int, request_time a float, time read."""
        fmt = PRESETS["uvicorn_access"].fmt

        def calls(log: logging.Logger) -> None:
            for extra in REQUESTS:
                log.info("", extra=extra)

        with local_zone("Asia/Seoul"):
            written = write_logs(logging.Formatter(fmt), calls, CREATED)
        parser = build_parser("uvicorn_access", None, "Asia/Seoul")
        for line, expected, record in zip(written.lines, REQUESTS, written.records, strict=True):
            parsed = parser.parse(line)
            assert parsed is not None, line
            fields, timestamp = parsed
            assert fields == expected
            assert type(fields["status_code"]) is int
            assert type(fields["request_time"]) is float
            assert timestamp == int(record.created) * 1000 + int(record.msecs)

    def test_uvicorn_default_access_line(self) -> None:
        """uvicorn's own default line: level prefix, client, request line, "200 OK"."""
        fmt = '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s'

        def calls(log: logging.Logger) -> None:
            log.info("", extra={**REQUESTS[0], "status_code": "200 OK"})
            log.warning("", extra={**REQUESTS[1], "status_code": "503 Service Unavailable"})

        written = write_logs(_PrefixFormatter(fmt), calls)
        parser = build_parser("uvicorn", None, "UTC")
        first = parser.parse(written.lines[0])
        second = parser.parse(written.lines[1])
        assert first is not None
        assert second is not None
        assert first[0]["status_code"] == 200
        assert first[0]["levelprefix"] == "INFO:"
        assert second[0]["status_code"] == 503
        assert second[0]["levelprefix"] == "WARNING:"
        assert second[0]["request_line"] == REQUESTS[1]["request_line"]


class TestGunicornAccess:
    def test_default_access_log_format(self) -> None:
        """gunicorn writes its atoms through logging as the message; the CLF time with
        its offset is the event time."""
        atoms_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'

        def calls(log: logging.Logger) -> None:
            atoms = {
                "h": "10.0.0.7",
                "l": "-",
                "u": "-",
                "t": time.strftime("[%d/%b/%Y:%H:%M:%S %z]", time.localtime(CREATED[0])),
                "r": "GET /health HTTP/1.1",
                "s": "200",
                "b": "-",
                "f": "-",
                "a": 'Mozilla/5.0 (X11; Linux x86_64) "quoted"',
            }
            log.info(atoms_format, atoms)

        with local_zone("America/New_York"):
            written = write_logs(logging.Formatter("%(message)s"), calls)
        parsed = build_parser("gunicorn_access", None, "UTC").parse(written.lines[0])
        assert parsed is not None, written.lines[0]
        fields, timestamp = parsed
        assert timestamp == int(CREATED[0]) * 1000
        assert fields["status_code"] == 200
        assert fields["response_bytes"] == "-"
        assert fields["request_line"] == "GET /health HTTP/1.1"
        assert fields["user_agent"] == 'Mozilla/5.0 (X11; Linux x86_64) "quoted"'
