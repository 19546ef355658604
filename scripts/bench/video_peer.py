#!/usr/bin/env python3
"""Same-run peer for `chorus bench video`: one JSON line on stdout per call.

    video_peer.py make-clip PATH   a 60 s 1280×720 30 fps H.264 clip with AAC sound (keyframe every 2 s, x264
                                   medium), made with the ffmpeg CLI from FFmpeg's testsrc2 pattern (skipped when
                                   PATH exists)
    video_peer.py serve PATH       each line "ENGINE N" on stdin samples N frames spread evenly (numpy.linspace over
                                   the frame indices, as vLLM and Chorus do) as RGB at the clip's size, repeated for
                                   about 3 s, and answers {"engine", "frames", "per_s", "seconds"}: frames per second
                                   of compute, the median of the calls. ENGINE is
                                     pyav         PyAV from memory (io.BytesIO): a backward seek to the keyframe before
                                                  each frame, then decoding up to it (what Chorus's VideoFile does)
                                     opencv-grab  OpenCV from the file, as vLLM's OpenCV video loader does it: grab()
                                                  every frame, retrieve() the picked ones, BGR → RGB
                                     opencv-seek  OpenCV from the file, CAP_PROP_POS_FRAMES set before each picked frame

Each call opens the video afresh, as a server does per request. Decoders keep their libraries' default threading.
"""
import io
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np


def make_clip(path):
    if os.path.exists(path):
        return
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=1280x720:r=30:d=60",
                    "-f", "lavfi", "-i", "sine=f=440:r=44100:d=60", "-c:v", "libx264", "-preset", "medium", "-g", "60",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k", "-shortest", path], check=True)


def picks(total, count):
    return [int(i) for i in np.linspace(0, total - 1, count, dtype=int)]


def pyav(data, count):
    import av
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate)
        total = stream.frames
        frames = []
        for index in picks(total, count):
            target = stream.start_time + int(round(index / rate / stream.time_base))
            container.seek(target, backward=True, any_frame=False, stream=stream)
            for frame in container.decode(stream):
                if frame.pts is not None and frame.pts >= target - int(0.5 / rate / stream.time_base):
                    frames.append(frame.to_ndarray(format="rgb24"))
                    break
        return frames


def opencv_grab(path, count):
    import cv2
    capture = cv2.VideoCapture(path)
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    wanted = set(picks(total, count))
    frames = []
    for index in range(total):
        if not capture.grab():
            break
        if index in wanted:
            ok, frame = capture.retrieve()
            if ok:
                frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    return frames


def opencv_seek(path, count):
    import cv2
    capture = cv2.VideoCapture(path)
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    frames = []
    for index in picks(total, count):
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = capture.read()
        if ok:
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    return frames


def serve(path):
    data = open(path, "rb").read()
    engines = {"pyav": lambda n: pyav(data, n), "opencv-grab": lambda n: opencv_grab(path, n), "opencv-seek": lambda n: opencv_seek(path, n)}
    for line in sys.stdin:
        engine, count = line.split()
        count = int(count)
        run = engines[engine]
        frames = run(count)  # warm-up, and the check that every frame came back
        assert len(frames) == count, (engine, len(frames))
        times, spent = [], 0.0
        while spent < 3 or len(times) < 3:
            start = time.perf_counter()
            run(count)
            times.append(time.perf_counter() - start)
            spent += times[-1]
        seconds = statistics.median(times)
        print(json.dumps({"engine": engine, "frames": count, "per_s": count / seconds, "seconds": seconds}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "make-clip":
        make_clip(sys.argv[2])
        print(json.dumps({"made": sys.argv[2]}))
    else:
        serve(sys.argv[2])
