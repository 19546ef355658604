#!/usr/bin/env python3
"""Drives every endpoint of the gateway's OpenAI-compatible API with the official `openai` client, as
another backend would. Run by ChorusSystemTests (OpenAIClientTests) against `chorus up` on loopback:

    .venv/bin/pip install openai==3.57.0      # once; .ci/run does it
    .venv/bin/python scripts/openai_client_check.py http://127.0.0.1:7180/v1 llava-tiny clip-tiny image.png smollm2-135m-instruct \
        Tests/ChorusMediaTests/Fixtures/video

With CHORUS_CHECK_ROUTED=1 only the checks of the routes a gateway relays to an upstream run (chat, completions,
embeddings, images, audio; no pipelines): the base URL is then a front gateway whose upstream serves these models
under the same names.

Prints one line per check and, last, a JSON object {"passed": [...], "failed": {name: reason}}; exits 1 when
any check fails."""
import base64
import io
import json
import os
import struct
import sys
import traceback
import wave

import openai

base_url, chat_model, clip_model = sys.argv[1], sys.argv[2], sys.argv[3]
client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=300)
passed, failed = [], {}
PNG = open(sys.argv[4], "rb").read() if len(sys.argv) > 4 else None
LANGUAGE_MODEL = sys.argv[5] if len(sys.argv) > 5 else "smollm2-135m-instruct"
VIDEOS = sys.argv[6] if len(sys.argv) > 6 else "Tests/ChorusMediaTests/Fixtures/video"


def video_bytes(name):
    return open(f"{VIDEOS}/{name}", "rb").read()


ROUTED_ONLY = os.environ.get("CHORUS_CHECK_ROUTED") == "1"


def check(name, routed=True):
    def run(body):
        if ROUTED_ONLY and not routed:
            return
        try:
            body()
            passed.append(name)
            print(f"ok   {name}", flush=True)
        except Exception as error:  # noqa: BLE001 - every failure is reported by name
            failed[name] = f"{type(error).__name__}: {error}"
            print(f"FAIL {name}: {failed[name]}\n{traceback.format_exc()}", flush=True)
    return run


def data_url(png):
    return "data:image/png;base64," + base64.b64encode(png).decode()


@check("models.list names every loaded model")
def _():
    ids = {m.id for m in client.models.list()}
    for expected in (chat_model, clip_model, "whisper-tiny.en", "whisper-base", "en_US-joe-medium", "terrain"):
        assert expected in ids, f"{expected} not in {sorted(ids)}"


@check("chat.completions.create with an image")
def _():
    answer = client.chat.completions.create(model=chat_model, max_tokens=5, messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": data_url(PNG)}}, {"type": "text", "text": "What is shown in this image?"}]}])
    assert answer.choices[0].finish_reason == "length", answer
    assert answer.usage.completion_tokens == 5 and answer.usage.prompt_tokens == 46, answer.usage


@check("chat.completions.create stream=True")
def _():
    chunks = list(client.chat.completions.create(model=chat_model, max_tokens=4, stream=True, stream_options={"include_usage": True},
                                                 messages=[{"role": "user", "content": [
                                                     {"type": "image_url", "image_url": {"url": data_url(PNG)}},
                                                     {"type": "text", "text": "What is shown in this image?"}]}]))
    assert len(chunks) >= 3, chunks
    assert chunks[-1].usage.completion_tokens == 4, chunks[-1]
    assert any(c.choices and c.choices[0].finish_reason == "length" for c in chunks)


@check("chat.completions.create with a GGUF language model")
def _():
    answer = client.chat.completions.create(model=LANGUAGE_MODEL, max_tokens=12, messages=[
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "The capital of France is Paris."},
        {"role": "user", "content": "And what is the capital of Germany?"}])
    assert "Berlin" in answer.choices[0].message.content, answer
    assert answer.usage.prompt_tokens > 20 and 0 < answer.usage.completion_tokens <= 12, answer.usage


@check("completions.create continues a raw prompt")
def _():
    answer = client.completions.create(model=LANGUAGE_MODEL, prompt="The capital of France is", max_tokens=4)
    assert answer.object == "text_completion" and answer.choices[0].text.startswith(" Paris"), answer
    assert answer.choices[0].finish_reason == "length" and answer.usage.completion_tokens == 4, answer
    echoed = client.completions.create(model=LANGUAGE_MODEL, prompt="The capital of France is", max_tokens=2, echo=True)
    assert echoed.choices[0].text.startswith("The capital of France is Paris"), echoed


@check("completions.create stream=True")
def _():
    chunks = list(client.completions.create(model=LANGUAGE_MODEL, prompt="The capital of France is", max_tokens=4, stream=True,
                                            stream_options={"include_usage": True}))
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text.startswith(" Paris") and chunks[-1].usage.completion_tokens == 4, chunks
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length", chunks


@check("embeddings.create (base64 by default, decoded by the client)")
def _():
    answer = client.embeddings.create(model=clip_model, input=["a photo of a cat", "a diagram"])
    assert len(answer.data) == 2 and len(answer.data[0].embedding) == 32
    norm = sum(x * x for x in answer.data[0].embedding)
    assert abs(norm - 1) < 1e-4, norm


wav_bytes = {}


@check("audio.speech.create wav")
def _():
    audio = client.audio.speech.create(model="tts-1", voice="alloy", input="Please turn off the lights before you leave.",
                                       response_format="wav")
    data = audio.read()
    with wave.open(io.BytesIO(data)) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2 and w.getnframes() > w.getframerate(), (w.getparams())
    wav_bytes["speech"] = data


@check("audio.speech.create pcm at 24 kHz")
def _():
    data = client.audio.speech.create(model="tts-1", voice="alloy", input="Hello.", response_format="pcm").read()
    assert len(data) % 2 == 0 and len(data) > 24000, len(data)


@check("audio.transcriptions.create json")
def _():
    text = client.audio.transcriptions.create(model="whisper-1", file=("speech.wav", wav_bytes["speech"])).text
    assert "lights" in text.lower(), text


@check("audio.transcriptions.create srt")
def _():
    srt = client.audio.transcriptions.create(model="whisper-1", file=("speech.wav", wav_bytes["speech"]), response_format="srt")
    assert srt.startswith("1\n00:00:00,000 --> "), srt


@check("audio.transcriptions.create verbose_json with words")
def _():
    verbose = client.audio.transcriptions.create(model="whisper-1", file=("speech.wav", wav_bytes["speech"]),
                                                 response_format="verbose_json", timestamp_granularities=["word", "segment"])
    assert verbose.segments and verbose.words, verbose
    assert verbose.language == "en"


@check("audio.transcriptions.create stream=True: a delta per segment as decoded, then done", routed=False)
def _():
    events = list(client.audio.transcriptions.create(model="whisper-1", file=("speech.wav", wav_bytes["speech"]), stream=True))
    types = [event.type for event in events]
    assert types[0] == "transcript.text.delta" and types[-1] == "transcript.text.done" and len(set(types)) == 2, types
    assert "lights" in events[-1].text.lower() and "lights" in "".join(e.delta for e in events[:-1]).lower(), events


@check("audio.speech stream_format=sse: a WAV per sentence as synthesized, then done", routed=False)
def _():
    with client.audio.speech.with_streaming_response.create(model="tts-1", voice="alloy", input="One sentence. Then another.",
                                                            response_format="wav", stream_format="sse") as response:
        events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: {")]
    assert [e["type"] for e in events] == ["speech.audio.delta", "speech.audio.delta", "speech.audio.done"], events
    for event in events[:2]:
        with wave.open(io.BytesIO(base64.b64decode(event["audio"]))) as w:
            assert w.getnchannels() == 1 and w.getnframes() > 0, w.getparams()


@check("audio.translations.create")
def _():
    text = client.audio.translations.create(model="whisper-base", file=("speech.wav", wav_bytes["speech"])).text
    assert "light" in text.lower(), text
    verbose = client.audio.translations.create(model="whisper-base", file=("speech.wav", wav_bytes["speech"]),
                                               response_format="verbose_json")
    assert verbose.to_dict().get("task") == "translate" and verbose.segments, verbose


@check("images.generate b64_json")
def _():
    answer = client.images.generate(model="terrain", prompt="a heightfield", n=1, response_format="b64_json", extra_body={"seed": 7})
    png = base64.b64decode(answer.data[0].b64_json)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert width > 0 and height > 0


@check("images.edit with strength")
def _():
    source = base64.b64decode(client.images.generate(model="terrain", prompt="x", response_format="b64_json").data[0].b64_json)
    answer = client.images.edit(model="terrain", image=("terrain.png", source, "image/png"), prompt="x", response_format="b64_json",
                                extra_body={"strength": 0.3})
    assert base64.b64decode(answer.data[0].b64_json)[:4] == b"\x89PNG"


@check("errors: unknown model is NotFoundError, malformed input BadRequestError")
def _():
    try:
        client.chat.completions.create(model="gpt-unknown", messages=[{"role": "user", "content": "hi"}])
        raise AssertionError("no error")
    except openai.NotFoundError as error:
        assert "gpt-unknown" in str(error)
    try:
        client.chat.completions.create(model=chat_model, messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(b"not an image").decode()}}]}])
        raise AssertionError("no error")
    except openai.BadRequestError as error:
        assert "image" in str(error)


@check("errors: a 200 MB body is refused with 413 while it streams in, and the gateway stays up")
def _():
    import socket
    import time
    import urllib.parse
    import urllib.request
    url = urllib.parse.urlsplit(base_url)
    size = 200 * 1024 * 1024
    with socket.create_connection((url.hostname, url.port)) as s:
        s.sendall(f"POST {url.path}/embeddings HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {size}\r\n\r\n".encode())
        s.setblocking(False)
        chunk, sent, answer, started = b" " * (1 << 20), 0, b"", time.time()
        while b"\r\n\r\n" not in answer and time.time() - started < 60:
            try:
                if sent < size:
                    sent += s.send(chunk)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                pass
            try:
                data = s.recv(65536)
                if not data:
                    break
                answer += data
            except BlockingIOError:
                time.sleep(0.001)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < size, "the gateway read the whole body before answering"
    with urllib.request.urlopen(base_url.rsplit("/v1", 1)[0] + "/healthz", timeout=10) as health:
        assert health.status == 200


def pipeline(body):
    """POST /v1/pipelines (not in the OpenAI client: plain HTTP), the server-sent events as a dict step -> output."""
    import urllib.request
    request = urllib.request.Request(base_url + "/pipelines", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    steps = {}
    with urllib.request.urlopen(request, timeout=300) as response:
        for line in response.read().decode().split("\n\n"):
            if line.startswith("data: {"):
                event = json.loads(line[6:])
                assert "error" not in event, event
                steps[event["step"]] = event["output"]
    return steps


def wav_data_url():
    return "data:audio/wav;base64," + base64.b64encode(wav_bytes["speech"]).decode()


@check("pipelines: describe-and-speak", routed=False)
def _():
    steps = pipeline({"recipe": "describe-and-speak", "images": [data_url(PNG)]})
    assert steps["caption"]["usage"]["completion_tokens"] > 0
    assert base64.b64decode(steps["speech"]["events"][0]["data"])[:4] == b"RIFF"


@check("pipelines: spoken-question", routed=False)
def _():
    steps = pipeline({"recipe": "spoken-question", "images": [data_url(PNG)], "audio": [wav_data_url()]})
    assert "lights" in steps["transcript"]["result"]["text"].lower(), steps["transcript"]["result"]
    assert steps["answer"]["usage"]["prompt_tokens"] > 16 and "events" in steps["speech"]


@check("pipelines: spoken-question without an image is answered by the language model", routed=False)
def _():
    steps = pipeline({"recipe": "spoken-question", "audio": [wav_data_url()]})
    assert "lights" in steps["transcript"]["result"]["text"].lower(), steps["transcript"]["result"]
    answer = steps["answer"]["text"]
    # SmolLM2 (the default for text alone) answers in English; the LLaVA fixture's random weights would not.
    assert set(answer.lower().replace(",", " ").replace(".", " ").split()) & {"the", "a", "to", "you", "i", "is", "of", "and", "it"}, answer
    assert steps["answer"]["usage"]["completion_tokens"] > 0 and base64.b64decode(steps["speech"]["events"][0]["data"])[:4] == b"RIFF"


@check("pipelines: transcribe-and-illustrate", routed=False)
def _():
    steps = pipeline({"recipe": "transcribe-and-illustrate", "audio": [wav_data_url()]})
    assert base64.b64decode(steps["illustration"]["result"]["images"][0]["data"])[:4] == b"\x89PNG"


@check("pipelines: augment (2 variants of a heightfield)", routed=False)
def _():
    terrain = base64.b64decode(client.images.generate(model="terrain", prompt="x", response_format="b64_json").data[0].b64_json)
    steps = pipeline({"recipe": "augment", "inputs": {"variants": 2, "strength": 0.4}, "images": [data_url(terrain)]})
    assert {"caption", "variant-1", "variant-2"} <= set(steps), steps.keys()
    assert steps["variant-1"]["result"]["images"][0]["data"] != steps["variant-2"]["result"]["images"][0]["data"]


@check("pipelines: zero-shot", routed=False)
def _():
    steps = pipeline({"recipe": "zero-shot", "inputs": {"labels": ["a photo of a cat", "a diagram"]}, "images": [data_url(PNG)]})
    assert abs(sum(label["probability"] for label in steps["classify"]["labels"]) - 1) < 1e-4


# The tiny LLaVA's 128 positions hold two frames and a short question, not a timeline: answers over captions and
# speech come from SmolLM2 (answer_model).
@check("chat.completions.create with a video_url (MP4): speech transcribed, frames captioned, answered streaming")
def _():
    url = "data:video/mp4;base64," + base64.b64encode(video_bytes("scenes.mp4")).decode()
    chunks = list(client.chat.completions.create(
        model=chat_model, max_tokens=8, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": [{"type": "video_url", "video_url": {"url": url}}, {"type": "text", "text": "What is said?"}]}],
        extra_body={"num_frames": 2, "video_mode": "captions", "caption_max_tokens": 2, "answer_model": LANGUAGE_MODEL}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    usage = [c.usage for c in chunks if c.usage]
    assert text.strip() and usage and usage[0].completion_tokens == 2 * 2 + 8, (text, usage)
    # The transcript made the prompt: more than the two captions and the question alone would be.
    assert usage[0].prompt_tokens > 120, usage


@check("chat.completions.create with vLLM's video/jpeg frames, frames mode")
def _():
    frames = ",".join(base64.b64encode(video_bytes(name)).decode() for name in ("frame-1.jpg", "frame-2.jpg"))
    answer = client.chat.completions.create(
        model=chat_model, max_tokens=3,
        messages=[{"role": "user", "content": [{"type": "video_url", "video_url": {"url": "data:video/jpeg;base64," + frames}},
                                               {"type": "text", "text": "Which colour?"}]}],
        extra_body={"video_mode": "frames", "frame_interval": 3})
    assert answer.choices[0].finish_reason == "length" and answer.usage.completion_tokens == 3, answer


@check("chat.completions.create with a video that is not one: 400 naming it")
def _():
    try:
        client.chat.completions.create(model=chat_model, max_tokens=2, messages=[{"role": "user", "content": [
            {"type": "video_url", "video_url": {"url": "data:video/mp4;base64," + base64.b64encode(PNG).decode()}},
            {"type": "text", "text": "?"}]}])
    except openai.BadRequestError as error:
        assert "the data is an image (png_pipe), not a video" in str(error), error
    else:
        raise AssertionError("accepted")


@check("pipelines: video-qa", routed=False)
def _():
    steps = pipeline({"recipe": "video-qa", "videos": ["data:video/webm;base64," + base64.b64encode(video_bytes("scenes.webm")).decode()],
                      "inputs": {"question": "What colour is the square?", "num_frames": 2, "caption_tokens": 2, "max_tokens": 6,
                                 "answer_model": LANGUAGE_MODEL}})
    assert "square" in steps["transcript"]["result"]["text"].lower(), steps["transcript"]["result"]
    assert len(steps["frames"]["captions"]) == 2 and steps["answer"]["text"].strip(), steps["answer"]


print(json.dumps({"passed": passed, "failed": failed}))
sys.exit(1 if failed else 0)
