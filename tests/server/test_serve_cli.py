"""`mlms serve`'s own errors: one line `mlms serve: ...` and exit code 2, before TensorFlow or a model loads."""

import os
import socket
import subprocess
import sys

from server_testing import START_TIMEOUT_S


def serve(*argv):
    return subprocess.run(
        [sys.executable, "-m", "mlms_keras.cli", "serve", *argv],
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


def test_a_taken_port_is_one_line_naming_it():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = serve("--voice", "teacher-small", "--port", str(port))
    assert result.returncode == 2
    assert f"mlms serve: cannot listen on 127.0.0.1:{port}" in result.stderr and "--port" in result.stderr


def test_bad_options_are_refused():
    result = serve("--workers", "0", "--port", "0")
    assert result.returncode == 2 and "workers" in result.stderr.splitlines()[-1]
