"""The HTTP API through a real `mlms serve` process: every endpoint, every error code, streaming, cancellation."""

import io
import json
import re
import socket
import time
import wave
from urllib.parse import urlencode

import numpy as np
import pytest
from server_testing import LONG_FRENCH, MAX_QUEUE, MAX_TEXT_CHARACTERS, WORKERS

from mlms_keras.server.wire import STREAMING_SIZE
from mlms_keras.zoo import zoo_folder

SHORT = {"text": "Bonjour. Comment allez-vous?", "voice": "test-voice", "lang": "fr", "speaker": "fr-female"}


def read_wav(body: bytes) -> tuple[np.ndarray, int]:
    with wave.open(io.BytesIO(body)) as reader:
        assert (reader.getnchannels(), reader.getsampwidth()) == (1, 2)
        return np.frombuffer(reader.readframes(reader.getnframes()), "<i2"), reader.getframerate()


def stream(server, params: dict, timeout: float = 60.0):
    """Yields (seconds since the request, bytes) as a streamed response's body arrives; first yields headers."""
    connection = server.connection(timeout)
    start = time.perf_counter()
    connection.request("GET", f"/api/tts?{urlencode(dict(params, stream='true'))}")
    response = connection.getresponse()
    try:
        yield response.status, {k.lower(): v for k, v in response.getheaders()}
        while piece := response.read1(65536):
            yield time.perf_counter() - start, piece
    finally:
        connection.close()


@pytest.fixture(scope="module")
def library_voice(test_voice_folder):
    """The same test voice, synthesised in this process: the expected audio."""
    from mlms_keras.synthesis import Synthesizer
    from mlms_keras.zoo import load_voice

    return Synthesizer(load_voice(test_voice_folder), jit_streaming=True)  # as the server streams by default


def int16(wave_float: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(wave_float, -1, 1) * 32767).astype(np.int16)


def test_health_reports_workers_capacity_and_voices(server):
    status, health = server.json("/health")
    assert status == 200 and health["status"] == "ok"
    assert health["voices"] == ["teacher-small", "test-voice"]
    assert (health["workers"], health["alive_workers"], health["capacity"]) == (WORKERS, WORKERS, WORKERS + MAX_QUEUE)


def test_voices_lists_each_voice_with_its_languages_and_speakers(server, test_voice_folder):
    status, body = server.json("/api/voices")
    assert status == 200 and body["default_voice"] == "teacher-small"
    assert body["max_text_characters"] == MAX_TEXT_CHARACTERS
    for entry, folder in zip(body["voices"], (zoo_folder() / "teacher-small", test_voice_folder)):
        metadata = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
        assert entry["name"] == metadata["name"] and entry["sample_rate"] == metadata["sample_rate"]
        assert [lang["code"] for lang in entry["languages"]] == sorted(
            metadata["languages"], key=metadata["languages"].get
        )
        speakers = sorted(metadata["speakers"], key=lambda name: metadata["speakers"][name]["id"])
        assert [speaker["name"] for speaker in entry["speakers"]] == speakers
        for lang in entry["languages"]:  # the default speaker is a native speaker of the language
            native = [name for name in speakers if metadata["speakers"][name]["language"] == lang["code"]]
            assert lang["default_speaker"] == native[0]


def test_one_pass_wav_is_the_library_output(server, library_voice):
    status, headers, body = server.request("GET", "/api/tts", SHORT)
    assert status == 200 and headers["content-type"] == "audio/wav"
    samples, rate = read_wav(body)
    expected = int16(library_voice.synthesize(SHORT["text"], "fr", "fr-female"))
    assert rate == library_voice.sample_rate == int(headers["x-sample-rate"])
    assert len(samples) == len(expected) and float(headers["x-audio-seconds"]) == pytest.approx(
        len(samples) / rate, 1e-3
    )
    assert np.max(np.abs(samples.astype(int) - expected)) <= 1


def test_post_json_and_form_and_get_give_the_same_audio(server):
    _, _, by_get = server.request("GET", "/api/tts", dict(SHORT, format="pcm"))
    json_body = json.dumps(dict(SHORT, format="pcm", stream=False)).encode()
    status, _, by_json = server.request(
        "POST", "/api/tts", body=json_body, headers={"Content-Type": "application/json"}
    )
    assert status == 200
    form = urlencode(dict(SHORT, format="pcm")).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    status, _, by_form = server.request("POST", "/api/tts", body=form, headers=headers)
    assert status == 200
    assert len(by_get) > 1000 and by_get == by_json == by_form


def test_streamed_pcm_is_the_library_stream(server, library_voice):
    received = list(stream(server, dict(SHORT, format="pcm")))
    status, headers = received[0]
    assert status == 200 and headers["transfer-encoding"] == "chunked" and headers["x-speaker"] == "fr-female"
    samples = np.frombuffer(b"".join(piece for _, piece in received[1:]), "<i2")
    expected = int16(np.concatenate(list(library_voice.stream(SHORT["text"], "fr", "fr-female"))))
    assert len(samples) == len(expected) and np.max(np.abs(samples.astype(int) - expected)) <= 1


def test_streamed_wav_has_a_streaming_header(server):
    received = list(stream(server, dict(SHORT, format="wav")))
    body = b"".join(piece for _, piece in received[1:])
    assert body[:4] == b"RIFF" and body[8:12] == b"WAVE" and body[36:40] == b"data"
    assert int.from_bytes(body[40:44], "little") == STREAMING_SIZE and (len(body) - 44) % 2 == 0
    samples, rate = read_wav(body)  # Python's reader takes the data up to the end of the stream
    assert rate == 22050 and len(samples) == (len(body) - 44) // 2


def test_default_speaker_is_the_languages_native_speaker(server):
    status, headers, _ = server.request("GET", "/api/tts", {"text": "Dzień dobry.", "lang": "pl"})
    assert status == 200 and (headers["x-voice"], headers["x-speaker"]) == ("teacher-small", "pl-female")


@pytest.fixture(scope="module")
def long_stream(server):
    """The long French text streamed by teacher-small, with /health asked the moment the first audio arrived."""
    chunks, during = [], None
    received = stream(server, {"text": LONG_FRENCH, "lang": "fr", "format": "pcm"})
    status, headers = next(received)
    assert status == 200
    for arrival, piece in received:
        if during is None:
            during = server.health()
        chunks.append((arrival, piece))
    return headers, chunks, during


def test_stream_first_bytes_arrive_while_synthesis_still_runs(server, long_stream):
    headers, chunks, during = long_stream
    job_id = int(headers["x-request-id"])
    job = next(job for job in during["jobs"] if job["id"] == job_id)
    total_seconds = sum(len(piece) for _, piece in chunks) / 2 / 22050
    # The marker: when the first audio had arrived, the server was still synthesising this request, with only
    # part of its audio made.
    assert job["state"] == "running" and job["audio_seconds"] < 0.5 * total_seconds
    first_arrival, last_arrival = chunks[0][0], chunks[-1][0]
    assert len(chunks) > 5 and first_arrival < 0.3 * last_arrival
    log_line = server.log_matches(rf".* id={job_id} .*")[0][0]
    first_byte_ms, latency_ms = (
        float(re.search(rf"{key}=([\d.]+)ms", log_line)[1]) for key in ("first_byte", "latency")
    )
    assert first_byte_ms < 0.3 * latency_ms
    assert float(re.search(r"audio=([\d.]+)s", log_line)[1]) == pytest.approx(total_seconds, abs=1e-3)


def test_a_client_that_disconnects_mid_stream_stops_its_synthesis(server, long_stream):
    _, chunks, _ = long_stream
    full_seconds = sum(len(piece) for _, piece in chunks) / 2 / 22050
    before = server.health()["counts"]["cancelled"]
    received = stream(server, {"text": LONG_FRENCH, "lang": "fr", "format": "pcm"})
    _, headers = next(received)
    next(received)  # the first audio chunk
    received.close()  # hang up
    job_id = int(headers["x-request-id"])
    health = server.wait_until(
        lambda h: h["counts"]["cancelled"] == before + 1 and all(job["id"] != job_id for job in h["jobs"]),
        what="the cancelled request to leave",
    )
    assert health["alive_workers"] == WORKERS
    line = server.log_matches(rf"request {job_id} cancelled after ([\d.]+) s of audio")[0]
    assert float(line[1]) < 0.6 * full_seconds  # it stopped early, not after synthesising everything


BAD_REQUESTS = [
    ({"voice": "no-such-voice"}, 400, "valid_voices", ["teacher-small", "test-voice"]),
    ({"voice": "../zoo/teacher-small"}, 400, "valid_voices", ["teacher-small", "test-voice"]),
    ({"voice": str(zoo_folder() / "teacher-small")}, 400, "valid_voices", ["teacher-small", "test-voice"]),
    ({"lang": "sv"}, 400, "valid_languages", ["en-us", "fr", "pl"]),
    ({"lang": ""}, 400, "valid_languages", ["en-us", "fr", "pl"]),
    ({"speaker": "nobody"}, 400, "valid_speakers", ["en-us-female", "fr-female", "pl-female"]),
    ({"format": "mp3"}, 400, "valid_formats", ["wav", "pcm"]),
    ({"stream": "maybe"}, 400, "valid_stream", ["true", "false"]),
    ({"txt": "typo"}, 400, "valid_parameters", ["text", "voice", "lang", "speaker", "format", "stream"]),
    ({"text": ""}, 400, None, None),
    ({"text": "  ?!  ..."}, 400, None, None),
    ({"text": "Привет, мир."}, 400, None, None),
    ({"text": "a" * (MAX_TEXT_CHARACTERS + 1)}, 413, None, None),
]


@pytest.mark.parametrize(("change", "status", "field", "valid"), BAD_REQUESTS)
def test_bad_requests_get_json_errors_listing_the_valid_values(server, change, status, field, valid):
    got_status, headers, body = server.request("GET", "/api/tts", {**SHORT, **change})
    error = json.loads(body)
    assert got_status == status == error["status"] and headers["content-type"] == "application/json"
    assert error["error"]
    if field:
        assert error[field] == valid


def test_frontend_refusals_name_the_problem(server):
    _, _, body = server.request("GET", "/api/tts", {**SHORT, "text": "Привет, мир."})
    assert "CYRILLIC" in json.loads(body)["error"]


def test_a_sentence_the_frontend_cannot_say_is_skipped_and_counted(server, library_voice):
    text = "Bonjour à tous. Привет, мир. Au revoir."
    status, headers, body = server.request("GET", "/api/tts", {**SHORT, "text": text})
    assert status == 200 and headers["x-skipped-sentences"] == "1"
    expected = library_voice.synthesize("Bonjour à tous. Au revoir.", "fr", "fr-female")
    assert len(read_wav(body)[0]) == len(expected)


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [(b"{not json", "application/json", 400), (b"[1, 2]", "application/json", 400), (b"text=Hi", "text/plain", 415)],
)
def test_bad_post_bodies(server, body, content_type, status):
    got, _, answer = server.request("POST", "/api/tts", body=body, headers={"Content-Type": content_type})
    assert got == status == json.loads(answer)["status"]


def test_unknown_path_and_method(server):
    assert server.request("GET", "/api/nothing")[0] == 404
    status, _, body = server.request("DELETE", "/api/tts")
    assert status == 405 and json.loads(body)["status"] == 405


def test_page_and_its_files_come_from_the_server(server):
    status, headers, page = server.request("GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    for name in re.findall(rb'(?:src|href)="/static/([^"]+)"', page):
        assert server.request("GET", f"/static/{name.decode()}")[0] == 200
    assert b"http://" not in page and b"https://" not in page  # nothing from the network
    assert server.request("GET", "/static/..%2Fapp.py")[0] == 404


def open_raw_stream(server, params: dict) -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=60)
    sock.sendall(f"GET /api/tts?{urlencode(dict(params, stream='true'))} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return sock


def test_a_full_server_answers_503_with_retry_after(server):
    server.wait_until(lambda h: h["open"] == 0, what="an idle server")
    capacity = WORKERS + MAX_QUEUE
    holders = [open_raw_stream(server, {"text": LONG_FRENCH, "lang": "fr", "format": "pcm"}) for _ in range(capacity)]
    try:
        server.wait_until(
            lambda h: (h["open"], h["running"], h["queued"]) == (capacity, WORKERS, MAX_QUEUE),
            what="every worker busy and every queue slot taken",
        )
        status, headers, body = server.request("GET", "/api/tts", SHORT)
        assert status == 503 and int(headers["retry-after"]) >= 1 and json.loads(body)["status"] == 503
    finally:
        for sock in holders:
            sock.close()
    # Running and waiting requests of clients that left are all cancelled; the server serves again.
    health = server.wait_until(lambda h: h["open"] == 0, what="the abandoned requests to be cancelled")
    assert health["alive_workers"] == WORKERS
    assert server.request("GET", "/api/tts", SHORT)[0] == 200


def test_access_log_has_one_line_per_request(server):
    pattern = r'"GET /api/voices" 200 latency=[\d.]+ms first_byte=[\d.]+ms\n'
    before = len(re.findall(pattern, server.log_text()))
    for _ in range(3):
        server.request("GET", "/api/voices")
    server.log_matches(pattern, at_least=before + 3)
    time.sleep(0.2)
    assert len(re.findall(pattern, server.log_text())) == before + 3
    status, headers, body = server.request("GET", "/api/tts", SHORT)
    job_id = headers["x-request-id"]
    line = server.log_matches(rf'"GET /api/tts" 200 latency=[\d.]+ms .* audio=([\d.]+)s rtf=[\d.]+ id={job_id} ')[0]
    assert float(line[1]) == pytest.approx((len(body) - 44) / 2 / 22050, abs=1e-3)
    access_lines = [line for line in server.log_text().splitlines() if "mlms_keras.server.access" in line]
    assert not any("Bonjour" in line for line in access_lines)  # the user's text stays out of the access log
