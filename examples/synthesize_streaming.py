"""Streaming synthesis: audio chunks arrive while the acoustic model is still running; time to the first chunk.

python examples/synthesize_streaming.py "Please call Stella and ask her to bring these things." -o out.wav
"""

import argparse
import time

import numpy as np

from mlms_keras.synthesis import Synthesizer
from mlms_keras.vocoder.audio import save


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("text")
    parser.add_argument("--voice", default="teacher-polyglot-small")
    parser.add_argument("--lang", default="en-us")
    parser.add_argument("--speaker", default="en-us-female")
    parser.add_argument("-o", "--output", default="streamed.wav")
    args = parser.parse_args()
    synthesizer = Synthesizer.from_zoo(args.voice)
    synthesizer.warm_up(args.lang, args.speaker)  # traces the model calls once
    start = time.perf_counter()
    chunks = []
    for chunk in synthesizer.stream(args.text, args.lang, args.speaker):
        if not chunks:
            print(f"first chunk after {1000 * (time.perf_counter() - start):.0f} ms")
        chunks.append(chunk)  # a player would play it now
    wave = np.concatenate(chunks)
    print(
        f"{len(chunks)} chunks, {len(wave) / synthesizer.sample_rate:.2f} s of audio in "
        f"{time.perf_counter() - start:.2f} s"
    )
    save(args.output, wave, synthesizer.sample_rate)


if __name__ == "__main__":
    main()
