"""The server under load, on loopback: concurrency 1, 4 and 16 for a few seconds each (under 60 s in all).

Every response must be valid audio or a 503 with `Retry-After`; the open requests never exceed the capacity;
memory stays bounded; nothing hangs (every request has a deadline, and the server is idle afterwards).
"""

import io
import json
import threading
import time
import wave
from concurrent.futures import ThreadPoolExecutor

import pytest
from server_testing import MAX_QUEUE, WORKERS

from mlms_keras.server.wire import STREAMING_SIZE

LEVELS = (1, 4, 16)
SECONDS_PER_LEVEL = 4.0
REQUEST_TIMEOUT_S = 30.0
MEMORY_GROWTH_LIMIT = 200 * 2**20  # bytes of RSS the heaviest level may add to the lightest
REQUESTS = [
    {"voice": "teacher-small", "lang": "en-us", "text": "The weather is lovely today."},
    {"voice": "teacher-small", "lang": "de", "speaker": "fr-female", "text": "Guten Morgen, wie geht es?"},
    {"voice": "test-voice", "lang": "pl", "text": "Dzień dobry."},
    {"voice": "teacher-small", "lang": "es", "text": "Buenos días a todos."},
]


def check_response(status: int, headers: dict, body: bytes, params: dict) -> str:
    """'ok' or '503' for a valid response; raises AssertionError otherwise."""
    if status == 503:
        assert int(headers["retry-after"]) >= 1 and json.loads(body)["status"] == 503
        return "503"
    assert status == 200, (status, body[:200])
    rate = int(headers["x-sample-rate"])
    if params["format"] == "wav":
        with wave.open(io.BytesIO(body)) as reader:
            assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) == (1, 2, rate)
            expected = STREAMING_SIZE if params["stream"] == "true" else len(body) - 44
            assert int.from_bytes(body[40:44], "little") == expected
        samples = (len(body) - 44) // 2
    else:
        assert len(body) % 2 == 0
        samples = len(body) // 2
    assert 0.3 < samples / rate < 10, samples  # a short sentence: between 0.3 and 10 s of audio
    if params["stream"] == "false":
        assert float(headers["x-audio-seconds"]) == pytest.approx(samples / rate, abs=1e-3)
    return "ok"


def client(server, index: int, deadline: float, outcomes: list) -> None:
    number = index
    while time.monotonic() < deadline:
        params = dict(REQUESTS[number % len(REQUESTS)], format=("wav", "pcm")[number % 2])
        params["stream"] = ("true", "false")[(number // 2) % 2]
        start = time.monotonic()
        status, headers, body = server.request("GET", "/api/tts", params, timeout=REQUEST_TIMEOUT_S)
        outcome = check_response(status, headers, body, params)
        outcomes.append((outcome, time.monotonic() - start))
        if outcome == "503":
            time.sleep(0.25)  # a polite client backs off (a short wait: the test has seconds, not minutes)
        number += len(REQUESTS) + 1


@pytest.mark.slow
def test_load_at_concurrency_1_4_16_gives_audio_or_503_within_bounds(server):
    begin = time.monotonic()
    capacity = WORKERS + MAX_QUEUE
    failed_before = server.wait_until(lambda h: h["open"] == 0, what="an idle server")["counts"]["failed"]
    samples, stop = [], threading.Event()

    def monitor():
        while not stop.is_set():
            samples.append((server.health()["open"], server.rss_bytes()))
            time.sleep(0.1)

    watcher = threading.Thread(target=monitor, daemon=True)
    watcher.start()
    results = {}
    try:
        for level in LEVELS:
            outcomes, first_sample = [], len(samples)
            deadline = time.monotonic() + SECONDS_PER_LEVEL
            with ThreadPoolExecutor(level) as pool:
                for future in [pool.submit(client, server, i, deadline, outcomes) for i in range(level)]:
                    future.result(timeout=SECONDS_PER_LEVEL + 2 * REQUEST_TIMEOUT_S)  # nothing hangs
            results[level] = {
                "ok": sum(kind == "ok" for kind, _ in outcomes),
                "503": sum(kind == "503" for kind, _ in outcomes),
                "rss_peak": max(rss for _, rss in samples[first_sample:]),
            }
    finally:
        stop.set()
        watcher.join()
    print(results)
    assert results[1]["503"] == 0 and all(results[level]["ok"] > 0 for level in LEVELS)
    assert results[16]["503"] > 0  # 16 clients on a capacity of 4: the bound is enforced, not grown past
    assert max(open_requests for open_requests, _ in samples) <= capacity
    assert results[16]["rss_peak"] - results[1]["rss_peak"] < MEMORY_GROWTH_LIMIT
    health = server.wait_until(lambda h: h["open"] == 0, timeout=30, what="the server to be idle after the load")
    assert health["alive_workers"] == WORKERS and health["counts"]["failed"] == failed_before
    assert time.monotonic() - begin < 60
