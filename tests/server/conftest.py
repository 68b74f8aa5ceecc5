"""One real `mlms serve` process for the server tests, on a free loopback port, and a small HTTP client.

The server serves the shipped voice `teacher-small` (by registry name) and a tiny test voice (by folder, as an
operator names a folder at start-up), with 2 workers and room for 2 waiting requests (capacity 4). Its stderr (the
access log and the engine's log) goes to a file the tests read.
"""

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest

pytest.importorskip("starlette", reason="the server extra is not installed: pip install '.[server]'")
pytest.importorskip("uvicorn", reason="the server extra is not installed: pip install '.[server]'")

from server_testing import MAX_QUEUE, MAX_TEXT_CHARACTERS, START_TIMEOUT_S, WORKERS  # noqa: E402


class Server:
    """The running server: its URL, process and log file."""

    def __init__(self, url: str, process: subprocess.Popen, log: Path) -> None:
        self.url, self.process, self.log = url, process, log
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port

    def connection(self, timeout: float = 60.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method: str, path: str, params: dict | None = None, body=None, headers=None, timeout=60.0):
        """(status, headers dict with lower-case names, body bytes) of one request."""
        connection = self.connection(timeout)
        try:
            if params:
                path = f"{path}?{urlencode(params)}"
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def json(self, path: str, params: dict | None = None) -> tuple[int, dict]:
        status, _, body = self.request("GET", path, params)
        return status, json.loads(body)

    def health(self) -> dict:
        return self.json("/health")[1]

    def wait_until(self, predicate, timeout: float = 60.0, what: str = "the server state") -> dict:
        """Polls /health until `predicate(health)` holds; returns that health report."""
        deadline = time.monotonic() + timeout
        while True:
            health = self.health()
            if predicate(health):
                return health
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; last /health: {health}")
            time.sleep(0.02)

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def log_matches(self, pattern: str, at_least: int = 1, timeout: float = 10.0) -> list[re.Match]:
        """The matches of `pattern` in the log once there are at least `at_least` (lines are written when a
        response is over, which can be just after the client has read it)."""
        deadline = time.monotonic() + timeout
        while True:
            matches = list(re.finditer(pattern, self.log_text()))
            if len(matches) >= at_least:
                return matches
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(matches)} log lines match {pattern!r}, expected {at_least}")
            time.sleep(0.02)

    def rss_bytes(self) -> int:
        """Resident memory of the server process (Linux)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS line")


def start_server(log: Path, voices: list[str], *extra: str) -> Server:
    """Starts `mlms serve --port 0` and waits for its "listening on URL" line."""
    command = [sys.executable, "-m", "mlms_keras.cli", "serve", "--port", "0", *extra]
    for voice in voices:
        command += ["--voice", voice]
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    log_file = open(log, "w", encoding="utf-8")  # noqa: SIM115  (the child writes it; closed with the process)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log_file, text=True, env=environment)
    log_file.close()
    deadline = time.monotonic() + START_TIMEOUT_S
    line = ""
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if "listening on " in line:
            return Server(line.split("listening on ")[1].split()[0], process, log)
        if not line and process.poll() is not None:
            break
    process.kill()
    raise AssertionError(f"mlms serve did not start: {line!r}\n{log.read_text(encoding='utf-8')[-3000:]}")


def stop_server(server: Server) -> None:
    server.process.send_signal(signal.SIGINT)
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="session")
def test_voice_folder(tmp_path_factory):
    """A tiny random voice (tests/voice_testing.py) in a folder: served by folder, named `test-voice`."""
    from voice_testing import build_test_voice

    folder = tmp_path_factory.mktemp("served") / "test-voice"
    build_test_voice(folder)
    return folder


@pytest.fixture(scope="session")
def server(tmp_path_factory, test_voice_folder):
    """The shared server process (teacher-small first, so it is the default voice)."""
    log = tmp_path_factory.mktemp("server") / "server.log"
    server = start_server(
        log,
        ["teacher-small", str(test_voice_folder)],
        "--workers",
        str(WORKERS),
        "--max-queue",
        str(MAX_QUEUE),
        "--max-text-chars",
        str(MAX_TEXT_CHARACTERS),
    )
    yield server
    stop_server(server)
    assert server.process.returncode == 0, server.log_text()[-3000:]
