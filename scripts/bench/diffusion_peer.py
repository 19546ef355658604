#!/usr/bin/env python3
"""Same-run peer for `chorus bench diffusion`: ONNX Runtime running the terrain consistency UNet.

    diffusion_peer.py ONNX THREADS BATCHES

One JSON line: for each batch size, the median seconds of one network evaluation (sigma 80, difficulty 0.5)."""
import json
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort


def main():
    path, threads, batches = sys.argv[1], int(sys.argv[2]), [int(b) for b in sys.argv[3].split(",")]
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    results = {}
    for batch in batches:
        feed = {"noisy": (rng.standard_normal((batch, 1, 128, 128)) * 80).astype(np.float32),
                "sigma": np.full((batch,), 80, dtype=np.float32), "difficulty": np.full((batch,), 0.5, dtype=np.float32)}
        session.run(None, feed)
        times = []
        started = time.perf_counter()
        while len(times) < 3 or (time.perf_counter() - started < 4 and len(times) < 30):
            t0 = time.perf_counter()
            session.run(None, feed)
            times.append(time.perf_counter() - t0)
        results[str(batch)] = statistics.median(times)
    print(json.dumps({"onnxruntime": ort.__version__, "threads": threads, "seconds": results}))


if __name__ == "__main__":
    main()
