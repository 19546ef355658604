#!/usr/bin/env python3
"""Same-run peer for `chorus bench kernels`: numpy's float32 matmul at the same shapes, a numpy attention
and 3x3 convolution (im2col + matmul), and transformers' WhisperFeatureExtractor on 30 s of audio.
Prints one JSON object per line. numpy's OpenBLAS reads the same OPENBLAS_CORETYPE as Chorus's."""
import json
import sys
import time

import numpy as np


def best(fn, repeat):
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def emit(**kwargs):
    print(json.dumps(kwargs), flush=True)


rng = np.random.default_rng(0)
repeat = int(sys.argv[1]) if len(sys.argv) > 1 else 10

for m, k, n in [(1500, 384, 1536), (77, 512, 2048), (4096, 320, 1280)]:
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    seconds = best(lambda: a @ b, repeat)
    emit(kernel="sgemm", shape=f"{m}x{k}x{n}", seconds=seconds, gflops=2 * m * k * n / seconds / 1e9)

# conv2d 3x3, 64 -> 64 channels at 64x64, padding 1: im2col + one matmul, as Chorus does it.
x = rng.standard_normal((64, 66, 66), dtype=np.float32)
w = rng.standard_normal((64, 64 * 9), dtype=np.float32)
def conv():
    cols = np.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(1, 2)).transpose(0, 3, 4, 1, 2).reshape(64 * 9, 64 * 64)
    return w @ cols
seconds = best(conv, repeat)
emit(kernel="conv2d", shape="3x3 64->64 at 64x64", seconds=seconds, gflops=2 * 64 * 64 * 64 * 64 * 9 / seconds / 1e9)

# self-attention, 8 heads of 64 over 1500 positions
q = rng.standard_normal((8, 1500, 64), dtype=np.float32)
def attention():
    s = q @ q.transpose(0, 2, 1) * np.float32(0.125)
    s = np.exp(s - s.max(-1, keepdims=True))
    s /= s.sum(-1, keepdims=True)
    return s @ q
emit(kernel="attention", shape="8 heads x 1500 x 64", seconds=best(attention, repeat))

try:
    from transformers import WhisperFeatureExtractor
    extractor = WhisperFeatureExtractor()
    audio = (rng.standard_normal(16000 * 30) * 0.1).astype(np.float32)
    seconds = best(lambda: extractor(audio, sampling_rate=16000, return_tensors="np"), max(3, repeat // 3))
    emit(kernel="mel", shape="30 s, 80 bins", seconds=seconds, peer="transformers WhisperFeatureExtractor (numpy)")
except Exception as error:  # transformers missing: report, do not fail the whole peer
    emit(kernel="mel", error=f"transformers unavailable: {error}")
