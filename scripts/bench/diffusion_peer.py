#!/usr/bin/env python3
"""Same-run peer for `chorus bench diffusion`: ONNX Runtime running the terrain consistency UNet.

    diffusion_peer.py ONNX THREADS BATCHES           one JSON line: for each batch size, the median seconds of
                                                     one network evaluation (sigma 80, difficulty 0.5)
    diffusion_peer.py ONNX THREADS --serve           the session stays loaded; each line "BATCH" on stdin is
                                                     answered by one JSON line {"batch", "seconds"}, so that
                                                     the caller can alternate its own rounds with ours"""
import json
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort


def load(path, threads):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def feed(batch):
    rng = np.random.default_rng(batch)
    return {"noisy": (rng.standard_normal((batch, 1, 128, 128)) * 80).astype(np.float32),
            "sigma": np.full((batch,), 80, dtype=np.float32), "difficulty": np.full((batch,), 0.5, dtype=np.float32)}


def median_seconds(session, inputs):
    """Median of at least 3 evaluations filling about 4 s, after a warm-up (as TerrainBenchmark does)."""
    session.run(None, inputs)
    times = []
    started = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - started < 4 and len(times) < 30):
        t0 = time.perf_counter()
        session.run(None, inputs)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    path, threads = sys.argv[1], int(sys.argv[2])
    session = load(path, threads)
    if sys.argv[3] == "--serve":
        feeds = {}
        for line in sys.stdin:
            batch = int(line)
            inputs = feeds.setdefault(batch, feed(batch))
            print(json.dumps({"onnxruntime": ort.__version__, "batch": batch, "seconds": median_seconds(session, inputs)}), flush=True)
        return
    results = {str(b): median_seconds(session, feed(b)) for b in (int(b) for b in sys.argv[3].split(","))}
    print(json.dumps({"onnxruntime": ort.__version__, "threads": threads, "seconds": results}))


if __name__ == "__main__":
    main()
