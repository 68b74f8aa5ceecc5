"""Real kills for resume tests: start an `mlms` verb in a subprocess, wait until it has written progress, SIGKILL it.

A `KeyboardInterrupt` raised inside the process is not a kill: `finally` blocks and context managers still run.
`os.kill(pid, SIGKILL)` stops the process wherever it is, as the out-of-memory killer or a power cut would.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time

#: The `mlms` command of this interpreter (the same virtual environment as the tests).
MLMS = [sys.executable, "-m", "mlms_keras.cli"]


def kill_when(arguments, ready, timeout_s=300.0, poll_s=0.05):
    """Runs `mlms ARGUMENTS` until `ready()` is true, then kills it with SIGKILL.

    Args:
        arguments: the verb and its arguments, e.g. `["train", DATASET, "--out", RUN]`.
        ready: a function polled every `poll_s` seconds (it reads the progress files the verb writes).
        timeout_s: how long the verb may take to get there.

    Raises:
        AssertionError: the verb ended before it was ready (it could not be interrupted), or timed out.
    """
    # The log goes to a file, not a pipe: a verb that logs a lot must not block on a full pipe.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen([*MLMS, *arguments], stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + timeout_s
        try:
            while not ready():
                if process.poll() is not None:
                    log.seek(0)
                    raise AssertionError(
                        f"mlms {' '.join(arguments)} ended (exit {process.returncode}) before it could be killed: "
                        f"{log.read().decode(errors='replace')[-2000:]}"
                    )
                assert time.monotonic() < deadline, f"mlms {arguments[0]} made no progress in {timeout_s} s"
                time.sleep(poll_s)
            assert process.poll() is None, "the verb finished before the kill"
            os.kill(process.pid, signal.SIGKILL)
            assert process.wait(timeout=60) == -signal.SIGKILL
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
