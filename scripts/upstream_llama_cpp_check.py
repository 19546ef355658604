#!/usr/bin/env python3
"""The gateway's upstream relay against a server that is not Chorus: llama.cpp's OpenAI-compatible server
(llama-cpp-python's) serving the SmolLM2 GGUF, behind `chorus gateway --upstreams`. Outside CI (it builds llama.cpp
from source); the tests in CI use a second Chorus gateway as the upstream (UpstreamProcessTests, OpenAIClientTests).

    python3 -m venv /tmp/llamavenv
    /tmp/llamavenv/bin/pip install 'llama-cpp-python[server]' openai==3.57.0     # compiles llama.cpp: minutes
    scripts/build
    /tmp/llamavenv/bin/python scripts/upstream_llama_cpp_check.py [--chorus .build/release/chorus] [--bench]

Starts llama.cpp's server and a front gateway on loopback, then checks through the front with the `openai` client:
the alias in /v1/models, chat and completions whole and streamed (the first chunk arrives before the stream ends,
`[DONE]` once, usage kept), the upstream's errors with its status, a client leaving mid-stream (the upstream is free
for the next request at once), and a killed upstream (503 naming it, the breaker open in /readyz). With --bench,
`chorus bench gateway --upstream-url` against it. Prints one line per check; exits 1 when any fails."""
import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request

import openai

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--chorus", default=os.path.join(ROOT, ".build/release/chorus"))
parser.add_argument("--model", default=os.path.join(ROOT, "models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"))
parser.add_argument("--bench", action="store_true", help="also run chorus bench gateway's upstream row against llama.cpp")
args = parser.parse_args()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url, seconds=120):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return answer.read()
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {seconds} s")


llama_port = free_port()
llama = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", args.model, "--model_alias", "smollm2",
                          "--host", "127.0.0.1", "--port", str(llama_port), "--n_ctx", "2048"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
wait_for(f"http://127.0.0.1:{llama_port}/v1/models")
upstreams = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
json.dump({"upstreams": [{"name": "llama-cpp", "base_url": f"http://127.0.0.1:{llama_port}/v1", "timeout_seconds": 120,
                          "breaker_failures": 2, "breaker_cooldown_seconds": 60,
                          # llama-cpp-python's server answers 400 to an X-Request-Id that is not a UUID.
                          "request_id_header": "",
                          "models": {"smol-remote": {"model": "smollm2", "capabilities": ["chat", "completions"]}}}]}, upstreams)
upstreams.close()
front = subprocess.Popen([args.chorus, "gateway", "--port", "0", "--http-port", "0", "--upstreams", upstreams.name],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
front_log = []
http_url = None
for line in front.stdout:
    front_log.append(line)
    match = re.search(r"OpenAI-compatible HTTP on (http://\S+)", line)
    if match:
        http_url = match.group(1)
        break
threading.Thread(target=lambda: front_log.extend(front.stdout), daemon=True).start()
base = http_url + "/v1"
client = openai.OpenAI(base_url=base, api_key="unused", max_retries=0, timeout=120)
direct = openai.OpenAI(base_url=f"http://127.0.0.1:{llama_port}/v1", api_key="unused", max_retries=0, timeout=120)
passed, failed = [], {}


def check(name):
    def run(body):
        try:
            body()
            passed.append(name)
            print(f"ok   {name}", flush=True)
        except Exception as error:  # noqa: BLE001 - every failure is reported by name
            failed[name] = f"{type(error).__name__}: {error}"
            print(f"FAIL {name}: {failed[name]}\n{traceback.format_exc()}", flush=True)
    return run


def raw_stream(body, read_until=None):
    """POSTs a streamed chat on a plain socket; the chunks as they arrive, with their arrival times."""
    data = json.dumps(body).encode()
    port = int(http_url.rsplit(":", 1)[1])
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
              f"Connection: close\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)
    arrivals = []
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        arrivals.append((time.time(), chunk))
        if read_until and read_until(b"".join(c for _, c in arrivals)):
            return s, arrivals
    s.close()
    return None, arrivals


@check("models.list has the alias, owned by the upstream")
def _():
    models = {m.id: m for m in client.models.list()}
    assert "smol-remote" in models and models["smol-remote"].owned_by == "llama-cpp", models


@check("chat.completions.create through the relay")
def _():
    answer = client.chat.completions.create(model="smol-remote", max_tokens=16, temperature=0,
                                            messages=[{"role": "user", "content": "What is the capital of France?"}])
    # llama-cpp-python formats SmolLM2's chat with its own template guess, so the reply is not Chorus's.
    assert answer.choices[0].message.content.strip() and answer.model == "smollm2", answer
    assert answer.usage.prompt_tokens > 5 and 0 < answer.usage.completion_tokens <= 16, answer.usage


@check("chat stream: chunks arrive before the stream ends, [DONE] once")
def _():
    sent = time.time()
    _, arrivals = raw_stream({"model": "smol-remote", "stream": True, "max_tokens": 64, "temperature": 0,
                              "messages": [{"role": "user", "content": "Tell me about the sea."}]})
    text = b"".join(c for _, c in arrivals).decode()
    events = [e for e in text.split("\n\n") if "data: " in e]
    first_token = next(t for t, c in arrivals if b'"content"' in c)
    assert text.count("data: [DONE]") == 1, text[-300:]
    assert len(events) > 10, len(events)
    total = arrivals[-1][0] - sent
    print(f"     first token after {1000 * (first_token - sent):.0f} ms of a {1000 * total:.0f} ms stream, {len(arrivals)} reads")
    assert first_token - sent < total / 2, (first_token - sent, total)


@check("chat stream through the openai client: the same text as the direct stream")
def _():
    def text(c):
        return "".join(chunk.choices[0].delta.content or "" for chunk in c.chat.completions.create(
            model=c.model_name, max_tokens=8, stream=True, temperature=0, messages=[{"role": "user", "content": "Say hello."}])
            if chunk.choices)
    client.model_name, direct.model_name = "smol-remote", "smollm2"
    relayed, straight = text(client), text(direct)
    assert relayed.strip() and relayed == straight, (relayed, straight)


@check("completions.create whole and streamed")
def _():
    whole = client.completions.create(model="smol-remote", prompt="The capital of France is", max_tokens=4, temperature=0)
    assert "Paris" in whole.choices[0].text, whole
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model="smol-remote", prompt="The capital of France is", max_tokens=4, temperature=0, stream=True) if c.choices)
    assert streamed == whole.choices[0].text, (streamed, whole.choices[0].text)


@check("the upstream's error keeps its status")
def _():
    statuses = []
    for c, model in ((direct, "smollm2"), (client, "smol-remote")):
        try:
            c.chat.completions.create(model=model, messages="not a list")
            raise AssertionError("accepted")
        except openai.APIStatusError as error:
            statuses.append(error.status_code)
    # llama-cpp-python answers its own validation error with 500; the relay keeps whatever it was.
    assert statuses[0] == statuses[1] >= 400, statuses
    print(f"     llama.cpp answered {statuses[0]} directly and through the relay")


@check("a client leaving mid-stream cancels the upstream request")
def _():
    s, _ = raw_stream({"model": "smol-remote", "stream": True, "max_tokens": 1500, "temperature": 1, "seed": 3,
                       "messages": [{"role": "user", "content": "Write a very long story about the sea."}]},
                      read_until=lambda data: b'"content"' in data)
    s.close()
    # llama-cpp-python's server runs one request at a time: the next is answered promptly only if the first
    # generation stopped when the front cancelled it.
    started = time.time()
    answer = client.chat.completions.create(model="smol-remote", max_tokens=2, messages=[{"role": "user", "content": "Hi"}])
    waited = time.time() - started
    print(f"     the next request was answered {waited:.2f} s after the client left")
    assert answer.choices and waited < 5, waited


if args.bench:
    print(subprocess.run([args.chorus, "bench", "gateway", "--calls", "0", "--upstream-url", f"http://127.0.0.1:{llama_port}/v1",
                          "--upstream-model", "smollm2", "--upstream-tokens", "64", "--upstream-calls", "32",
                          "--upstream-concurrency", "1,8", "--upstream-rounds", "2"],
                         stdout=subprocess.PIPE, text=True).stdout, flush=True)


@check("a killed upstream is 503 naming it, and the breaker opens")
def _():
    llama.kill()
    llama.wait()
    for _ in range(2):
        try:
            client.chat.completions.create(model="smol-remote", max_tokens=2, messages=[{"role": "user", "content": "Hi"}])
            raise AssertionError("answered")
        except openai.APIStatusError as error:
            assert error.status_code == 503 and "llama-cpp" in str(error), error
    ready = json.loads(wait_for(http_url + "/readyz"))
    assert ready["upstreams"]["llama-cpp"]["healthy"] is False, ready


front.kill()
llama.kill()
os.unlink(upstreams.name)
print(json.dumps({"passed": passed, "failed": failed}))
sys.exit(1 if failed else 0)
