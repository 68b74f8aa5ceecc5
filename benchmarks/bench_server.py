"""The speech server under load: `mlms serve` in its own process, clients on loopback at concurrency 1, 4 and 16.

Per level, for `--seconds` each: requests/s (200s), p50 and p95 latency of a whole request, the first-byte latency
of streamed responses (time from sending the request to the first audio byte; the WAV header is not sent before
the audio, and these requests ask for raw PCM), the real-time factor per request (latency / audio duration), and
the 503s and other errors. A client that gets a 503 waits 0.25 s and tries again (a polite client honours
`Retry-After`; a short wait keeps the figures about the server).

Baseline, measured in the same run before the server starts: `Synthesizer.stream`'s first chunk and its whole
stream for the same sentences in this process, with no HTTP in between; the JSON gives the server's first byte at
concurrency 1 as a ratio of it.

Targets (issue 18), on 2 cores: first audio byte at most 100 ms at concurrency 1; no errors other than 503 at 16.

Usage:
    python benchmarks/bench_server.py [--voice teacher-small] [--workers 2] [--max-queue 8] [--seconds 10]
        [--chunk-frames 48] [--no-jit]

The last line is JSON: baseline (first_chunk_ms, stream_rtf), levels (per concurrency: requests, ok, 503, errors,
requests_per_s, p50_ms, p95_ms, first_byte_p50_ms, first_byte_p95_ms, rtf_p50), first_byte_ratio, targets.
"""

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode, urlsplit

LEVELS = (1, 4, 16)
SENTENCES = (
    ("en-us", "Please call Stella and ask her to bring these things with her."),
    ("fr", "Le petit chat dort tranquillement sur le canapé du salon."),
    ("de", "Der alte Mann liest jeden Morgen die Zeitung im Garten."),
    ("es", "Mi hermana compró un libro nuevo en la tienda de la esquina."),
)
BACKOFF_S = 0.25
TIMEOUT_S = 120.0


def percentile(values, fraction):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def baseline(voice_name, repeats, chunk_frames, jit):
    """In-process `Synthesizer.stream` (the server's settings): median first-chunk ms and stream RTF."""
    from mlms_keras.synthesis import Synthesizer
    from mlms_keras.zoo import load_voice

    synthesizer = Synthesizer(load_voice(voice_name), chunk_frames=chunk_frames, jit_streaming=jit)
    for language, _ in SENTENCES:
        synthesizer.warm_up(language, None)
    firsts, seconds, audio = [], 0.0, 0
    for _ in range(repeats):
        for language, text in SENTENCES:
            speaker = next(s for s in synthesizer.speakers if synthesizer.voice.speakers[s]["language"] == language)
            start = time.perf_counter()
            chunks = synthesizer.stream(text, language, speaker)
            audio += len(next(chunks))
            firsts.append(1000 * (time.perf_counter() - start))
            audio += sum(len(chunk) for chunk in chunks)
            seconds += time.perf_counter() - start
    return {
        "first_chunk_ms": round(statistics.median(firsts), 2),
        "stream_rtf": round(seconds / (audio / synthesizer.sample_rate), 4),
    }


def start_server(voice, workers, max_queue, chunk_frames, jit):
    command = [sys.executable, "-m", "mlms_keras.cli", "serve", "--voice", voice, "--port", "0"]
    command += ["--workers", str(workers), "--max-queue", str(max_queue), "--log-level", "WARNING"]
    command += ["--chunk-frames", str(chunk_frames)] + ([] if jit else ["--no-jit"])
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=environment)
    for line in process.stdout:
        if "listening on " in line:
            return process, line.split("listening on ")[1].split()[0]
    raise SystemExit(f"mlms serve did not start (exit code {process.wait()})")


def one_request(host, port, params):
    """(status, latency s, first-byte s or None, audio samples, sample rate)."""
    connection = http.client.HTTPConnection(host, port, timeout=TIMEOUT_S)
    start = time.perf_counter()
    try:
        connection.request("GET", f"/api/tts?{urlencode(params)}")
        response = connection.getresponse()
        first, size = None, 0
        while piece := response.read1(65536):
            first = first if first is not None else time.perf_counter() - start
            size += len(piece)
        rate = int(response.getheader("X-Sample-Rate") or 0)
        return response.status, time.perf_counter() - start, first, size // 2, rate
    finally:
        connection.close()


def run_level(host, port, concurrency, seconds):
    records, lock = [], threading.Lock()
    deadline = time.monotonic() + seconds

    def client(index):
        number = index
        while time.monotonic() < deadline:
            language, text = SENTENCES[number % len(SENTENCES)]
            params = {"text": text, "lang": language, "format": "pcm", "stream": "true"}
            try:
                record = one_request(host, port, params)
            except (OSError, http.client.HTTPException) as error:
                record = (f"{type(error).__name__}", None, None, 0, 0)
            with lock:
                records.append(record)
            if record[0] == 503:
                time.sleep(BACKOFF_S)
            number += 1

    start = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(client, range(concurrency)))
    wall = time.monotonic() - start
    ok = [record for record in records if record[0] == 200 and record[3] > 0]
    latencies = [record[1] * 1000 for record in ok]
    firsts = [record[2] * 1000 for record in ok]
    rtfs = [record[1] / (record[3] / record[4]) for record in ok]
    rejected = sum(record[0] == 503 for record in records)
    return {
        "requests": len(records),
        "ok": len(ok),
        "503": rejected,
        "errors": len(records) - len(ok) - rejected,
        "requests_per_s": round(len(ok) / wall, 3),
        "p50_ms": round(percentile(latencies, 0.5) or 0, 1),
        "p95_ms": round(percentile(latencies, 0.95) or 0, 1),
        "first_byte_p50_ms": round(percentile(firsts, 0.5) or 0, 1),
        "first_byte_p95_ms": round(percentile(firsts, 0.95) or 0, 1),
        "rtf_p50": round(percentile(rtfs, 0.5) or 0, 4),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voice", default="teacher-small")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-queue", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0, help="load duration per concurrency level")
    parser.add_argument("--repeats", type=int, default=3, help="baseline passes over the sentences")
    parser.add_argument("--chunk-frames", type=int, default=48, help="the server's (and baseline's) chunk size")
    parser.add_argument(
        "--no-jit", dest="jit", action="store_false", help="streaming model as a graph loop (mlms serve --no-jit)"
    )
    args = parser.parse_args()

    base = baseline(args.voice, args.repeats, args.chunk_frames, args.jit)
    print(f"baseline (in process, no HTTP): first chunk {base['first_chunk_ms']} ms, stream RTF {base['stream_rtf']}")
    process, url = start_server(args.voice, args.workers, args.max_queue, args.chunk_frames, args.jit)
    host, port = urlsplit(url).hostname, urlsplit(url).port
    levels = {}
    try:
        one_request(host, port, {"text": "Hello.", "lang": "en-us", "format": "pcm", "stream": "true"})
        print(f"server {url}: {args.workers} workers, capacity {args.workers + args.max_queue}, {os.cpu_count()} CPUs")
        print("concurrency  req/s  p50 ms  p95 ms  first byte p50/p95 ms  RTF p50    ok   503  errors")
        for level in LEVELS:
            row = levels[level] = run_level(host, port, level, args.seconds)
            print(
                f"{level:>11}  {row['requests_per_s']:5.2f}  {row['p50_ms']:6.0f}  {row['p95_ms']:6.0f}  "
                f"{row['first_byte_p50_ms']:>9.0f} / {row['first_byte_p95_ms']:<9.0f}  {row['rtf_p50']:7.3f}  "
                f"{row['ok']:4d}  {row['503']:4d}  {row['errors']:6d}"
            )
    finally:
        process.terminate()
        process.wait(timeout=30)
    first_byte = levels[1]["first_byte_p50_ms"]
    result = {
        "baseline": base,
        "levels": {str(level): row for level, row in levels.items()},
        "first_byte_ratio": round(first_byte / base["first_chunk_ms"], 3),
        "targets": {
            "first_byte_ms_at_1": first_byte,
            "first_byte_at_1_within_100ms": first_byte <= 100,
            "errors_other_than_503_at_16": levels[16]["errors"],
        },
        "workers": args.workers,
        "chunk_frames": args.chunk_frames,
        "jit": args.jit,
        "max_queue": args.max_queue,
        "seconds_per_level": args.seconds,
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
