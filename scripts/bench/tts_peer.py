#!/usr/bin/env python3
"""Same-run peer for `chorus bench tts`: ONNX Runtime running the same Piper voice on the same phoneme ids.

    tts_peer.py ONNX IDS_JSON THREADS

IDS_JSON: {"texts": {"name": [[ids of sentence 1], [ids of sentence 2], ...]}, "scales": [noise, length, noise_w]}.
Prints one JSON line: per text, the seconds to synthesise all sentences (median of runs), the seconds to the
first sentence's audio, and the seconds of audio produced. Phonemisation is not timed (both sides get ids)."""
import json
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort


def main():
    onnx_path, ids_path, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    spec = json.load(open(ids_path))
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
    rate = json.load(open(onnx_path + ".json"))["audio"]["sample_rate"]
    scales = np.array(spec["scales"], dtype=np.float32)

    def speak(ids):
        x = np.array([ids], dtype=np.int64)
        return session.run(None, {"input": x, "input_lengths": np.array([len(ids)], dtype=np.int64), "scales": scales})[0]

    results = {}
    for name, sentences in spec["texts"].items():
        speak(sentences[0])  # warm-up
        totals, firsts, samples = [], [], 0
        runs = 0
        started = time.perf_counter()
        while runs < 3 or (time.perf_counter() - started < 5 and runs < 20):
            t0 = time.perf_counter()
            samples = 0
            for i, ids in enumerate(sentences):
                audio = speak(ids)
                samples += audio.size
                if i == 0:
                    firsts.append(time.perf_counter() - t0)
            totals.append(time.perf_counter() - t0)
            runs += 1
        results[name] = {"seconds": statistics.median(totals), "first_seconds": statistics.median(firsts),
                         "audio_seconds": samples / rate}
    print(json.dumps({"onnxruntime": ort.__version__, "threads": threads, "texts": results}))


if __name__ == "__main__":
    main()
