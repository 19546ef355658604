#!/usr/bin/env python3
"""Same-run peer for `chorus load`: a Python load generator measuring what `chorus load` measures, one JSON line
on stdout per run.

    load_peer.py chat BASE_URL MODEL --concurrency N --requests R --max-tokens T --prompt TEXT [--image PNG]
    load_peer.py transcribe BASE_URL MODEL WAV --concurrency N --requests R
    load_peer.py echo HOST:PORT --concurrency N --duration S [--connections C]

chat and transcribe go through the official `openai` client (AsyncOpenAI, max_retries=0, one pooled HTTP client
with a connection per worker) against an OpenAI-compatible server such as `chorus gateway --http-port`. BASE_URL is
the server's root or its /v1 root (a missing /v1 is appended).

Closed loop: N workers each send their next request as soon as their previous one has ended, until R requests have
been sent. One warm-up request (connection set-up, first-call costs) runs first and is not measured. The measured
part runs from the first measured request sent to the last one ended: that is `duration_s`, and `client_cpu_s` is
this process's user + system CPU time (getrusage(RUSAGE_SELF)) over the same span.

Metric definitions follow vLLM's benchmark_serving.py (`vllm bench serve`):
  TTFT   time from sending the request to the first streamed chunk with `choices` (the role chunk counts, as in
         vLLM's openai-chat backend).
  ITL    the gaps between successive chunks with `choices` after the first; pooled over all requests.
  E2EL   time from sending the request to the end of its stream (the server's [DONE]).
  TPOT   (E2EL - TTFT) / (output_tokens - 1), for each request with more than one output token.
  request_throughput = completed / duration_s;  output_throughput = total output tokens / duration_s.
  Percentiles are numpy.percentile's default (method="linear": linear interpolation between the two closest ranks),
  which is what vLLM reports; numpy is not needed here, the same formula is computed in `percentile`. The median is
  the 50th such percentile, as numpy.median. A metric with no samples reports null (vLLM would print 0).
Output tokens: chorus streams one token per chunk, so the content chunks are counted; the final chunk carries
`usage` (stream_options include_usage, as vLLM asks) and when it does its completion_tokens is the request's output
token count, as in vLLM. Both totals are reported: they differ when the server holds back text (an incomplete UTF-8
sequence waits for the bytes that finish it) and sends several tokens in one chunk.
Difference from vLLM: vLLM ends E2EL at the last data chunk, here at [DONE] (the next bytes). `chorus load` uses
the same definitions, so the two can be set side by side. Failed requests (any exception or error status) are
counted, never averaged in.

transcribe: POST /v1/audio/transcriptions (response_format json) with the WAV's bytes, read once; only E2EL and
request throughput apply, since the answer is not streamed.

echo: the generator-overhead test. No openai, no HTTP: a pure-asyncio client speaks Chorus's native wire directly
and calls the unary /chorus.speech.v1.Speech/Echo with an empty EchoRequest, keeping N calls in flight for S seconds
(closed loop, as fast as answers come). Like `chorus load`, the calls are multiplexed as streams on one TCP
connection (--connections spreads the workers over more). It reports calls per second and the client's CPU, so the
cost of generating load in Python can be set against chorus's own.

The wire (Proto/wire.proto, Sources/ChorusWire): every frame is a 4-byte big-endian length N and N bytes of a
protobuf-encoded chorus.wire.Frame; there is no preface or handshake. A unary call is
  client -> OPEN  {stream_id: odd, 1, 3, 5 ... per connection; method; has_payload: true; payload: the request
                   (empty for an empty EchoRequest); end_of_stream: true}
  server -> CLOSE {stream_id; has_payload: true; payload: the EchoResponse; status_code: 0 (omitted when 0)}
and a non-zero status_code in CLOSE (or a GOAWAY with one, or a closed connection) fails the call."""
import argparse
import asyncio
import base64
import json
import math
import os
import resource
import struct
import sys
import time

try:
    import httpx2 as httpx  # openai 3.x runs on httpx2
except ImportError:
    import httpx

try:
    import openai
except ImportError:
    openai = None  # echo does not need it


# ---------------------------------------------------------------------------------------------------------------
# Shared: statistics, CPU time, the closed loop


def percentile(sorted_values, p):
    """numpy.percentile(values, p) with its default method="linear" on an already sorted list."""
    rank = (len(sorted_values) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


def summary_ms(seconds):
    """mean, median, p90, p99 and max of a list of durations in seconds, in milliseconds; null when empty."""
    if not seconds:
        return {"mean": None, "median": None, "p90": None, "p99": None, "max": None}
    values = sorted(s * 1000 for s in seconds)
    return {"mean": sum(values) / len(values), "median": percentile(values, 50), "p90": percentile(values, 90),
            "p99": percentile(values, 99), "max": values[-1]}


def cpu_seconds():
    """User + system CPU this process has used (all threads: httpx's pool and the event loop alike)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def closed_loop(concurrency, requests, one_request):
    """Runs one warm-up request, then `requests` calls of `one_request()` with `concurrency` in flight, each worker
    sending its next as soon as its last has ended. Returns (results, duration_s, client_cpu_s) of the measured
    part."""
    await one_request()
    results = []
    remaining = requests

    async def worker():
        nonlocal remaining
        while remaining > 0:
            remaining -= 1  # no await between test and decrement: the event loop makes it atomic
            results.append(await one_request())

    cpu0, start = cpu_seconds(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results, time.perf_counter() - start, cpu_seconds() - cpu0


def openai_client(base_url, concurrency):
    """An AsyncOpenAI that never retries (a retry would hide a failure and distort latency) with a connection pool
    large enough that no worker waits for a connection."""
    if openai is None:
        sys.exit("load_peer.py: the openai package is needed for chat and transcribe")
    base_url = base_url.rstrip("/")
    if not base_url.endswith("/v1"):
        base_url += "/v1"
    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4)
    http = openai.DefaultAsyncHttpxClient(limits=limits, timeout=httpx.Timeout(600, connect=10))
    return openai.AsyncOpenAI(base_url=base_url, api_key=os.environ.get("OPENAI_API_KEY", "none"), max_retries=0,
                              http_client=http)


def common_fields(kind, args, results, duration):
    completed = [r for r in results if r["ok"]]
    return {
        "peer": "python-openai", "kind": kind, "concurrency": args.concurrency, "requests": args.requests,
        "completed": len(completed), "failed": len(results) - len(completed), "duration_s": duration,
        "request_throughput": len(completed) / duration,
    }


def first_error(results):
    return next((r["error"] for r in results if not r["ok"]), None)


# ---------------------------------------------------------------------------------------------------------------
# chat: streaming /v1/chat/completions


def chat(args):
    content = [{"type": "text", "text": args.prompt}]
    if args.image:
        with open(args.image, "rb") as f:
            url = "data:image/png;base64," + base64.b64encode(f.read()).decode()
        # Image first, as LLaVA's "USER: <image>\n..." prompt has it (chorus's template puts images first anyway).
        content.insert(0, {"type": "image_url", "image_url": {"url": url}})
    messages = [{"role": "user", "content": content}]

    async def one_request():
        result = {"ok": False, "ttft": None, "itl": [], "e2el": None, "chunks": 0, "usage_tokens": None}
        start = time.perf_counter()
        last = start
        try:
            stream = await client.chat.completions.create(
                model=args.model, messages=messages, max_completion_tokens=args.max_tokens, stream=True,
                stream_options={"include_usage": True})
            async for chunk in stream:
                now = time.perf_counter()
                if chunk.usage is not None:
                    result["usage_tokens"] = chunk.usage.completion_tokens
                # vLLM's openai-chat backend: the first chunk with choices (the role chunk too) is the first
                # token; every later chunk with choices adds an inter-token gap.
                if chunk.choices:
                    if result["ttft"] is None:
                        result["ttft"] = now - start
                    else:
                        result["itl"].append(now - last)
                    last = now
                    if chunk.choices[0].delta.content:
                        result["chunks"] += 1
            result["e2el"] = time.perf_counter() - start  # the stream ends at [DONE]
            result["ok"] = True
        except Exception as error:  # a failed request is counted, whatever failed
            result["error"] = f"{type(error).__name__}: {error}"
        return result

    async def run():
        nonlocal client
        client = openai_client(args.base_url, args.concurrency)
        async with client:
            return await closed_loop(args.concurrency, args.requests, one_request)

    client = None
    results, duration, cpu = asyncio.run(run())
    ok = [r for r in results if r["ok"]]
    ttfts, tpots, itls, e2els = [], [], [], []
    total_tokens = total_chunks = 0
    for r in ok:
        # vLLM's output_len: the server's completion_tokens when it reports usage, else (here) the chunks seen.
        tokens = r["usage_tokens"] if r["usage_tokens"] is not None else r["chunks"]
        total_tokens += tokens
        total_chunks += r["chunks"]
        e2els.append(r["e2el"])
        itls += r["itl"]
        if r["ttft"] is not None:
            ttfts.append(r["ttft"])
            if tokens > 1:
                tpots.append((r["e2el"] - r["ttft"]) / (tokens - 1))
    usage_reported = [r["usage_tokens"] for r in ok if r["usage_tokens"] is not None]
    line = common_fields("chat", args, results, duration)
    line.update({
        "max_tokens": args.max_tokens, "image": bool(args.image),
        "output_throughput": total_tokens / duration, "output_tokens": total_tokens,
        "content_chunks": total_chunks, "usage_completion_tokens": sum(usage_reported) if usage_reported else None,
        "ttft_ms": summary_ms(ttfts), "tpot_ms": summary_ms(tpots), "itl_ms": summary_ms(itls),
        "e2el_ms": summary_ms(e2els), "client_cpu_s": cpu, "error": first_error(results),
    })
    return line


# ---------------------------------------------------------------------------------------------------------------
# transcribe: /v1/audio/transcriptions


def transcribe(args):
    with open(args.wav, "rb") as f:
        # Read once: the measured loop times the server and the client library, not the disk.
        audio = (os.path.basename(args.wav), f.read(), "audio/wav")

    async def one_request():
        start = time.perf_counter()
        try:
            answer = await client.audio.transcriptions.create(model=args.model, file=audio, response_format="json")
            return {"ok": True, "e2el": time.perf_counter() - start, "text": answer.text}
        except Exception as error:
            return {"ok": False, "error": f"{type(error).__name__}: {error}"}

    async def run():
        nonlocal client
        client = openai_client(args.base_url, args.concurrency)
        async with client:
            return await closed_loop(args.concurrency, args.requests, one_request)

    client = None
    results, duration, cpu = asyncio.run(run())
    ok = [r for r in results if r["ok"]]
    line = common_fields("transcribe", args, results, duration)
    line.update({"e2el_ms": summary_ms([r["e2el"] for r in ok]), "client_cpu_s": cpu,
                 "text": ok[0]["text"] if ok else None, "error": first_error(results)})
    return line


# ---------------------------------------------------------------------------------------------------------------
# echo: Chorus's native wire, by hand

OPEN, MESSAGE, HALF_CLOSE, CLOSE, CANCEL, PING, PONG, GOAWAY = range(1, 9)
ECHO = "/chorus.speech.v1.Speech/Echo"


def varint(value):
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_frame(stream_id, kind, method="", payload=None, end_of_stream=False):
    """A length-prefixed chorus.wire.Frame. Like protobuf-c, fields at their default value are left out; the
    payload bytes are too when empty, and has_payload (field 6) tells an empty message from none."""
    body = bytearray()
    if stream_id:
        body += b"\x08" + varint(stream_id)  # 1: stream_id, varint
    body += b"\x10" + varint(kind)  # 2: kind, varint
    if method:
        name = method.encode()
        body += b"\x1a" + varint(len(name)) + name  # 3: method, length-delimited
    if payload is not None:
        body += b"\x30\x01"  # 6: has_payload = true
        if payload:
            body += b"\x3a" + varint(len(payload)) + payload  # 7: payload
    if end_of_stream:
        body += b"\x40\x01"  # 8: end_of_stream = true
    return struct.pack(">I", len(body)) + body


def read_varint(data, i):
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7


def decode_frame(body):
    """The fields of a Frame a client acts on: {stream_id, kind, payload (None: no message), status_code,
    status_message}. Unknown fields are skipped by their wire type, as protobuf requires."""
    frame = {"stream_id": 0, "kind": 0, "has_payload": False, "payload": b"", "status_code": 0, "status_message": ""}
    i = 0
    while i < len(body):
        key, i = read_varint(body, i)
        field, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, i = read_varint(body, i)
            name = {1: "stream_id", 2: "kind", 6: "has_payload", 9: "status_code"}.get(field)
            if name:
                frame[name] = value
        elif wire_type == 2:
            length, i = read_varint(body, i)
            value, i = body[i:i + length], i + length
            if field == 7:
                frame["payload"] = value
            elif field == 10:
                frame["status_message"] = value.decode(errors="replace")
        elif wire_type == 1:
            i += 8
        elif wire_type == 5:
            i += 4
        else:
            raise ValueError(f"malformed frame: wire type {wire_type}")
    frame["payload"] = frame["payload"] if frame["has_payload"] else None
    return frame


class WireConnection(asyncio.Protocol):
    """One TCP connection carrying many unary calls as streams: each call waits on a future keyed by its stream
    id, and the frames arriving are parsed straight from data_received (no reader task, fewer event-loop hops)."""

    def __init__(self):
        self.transport = None
        self.buffer = bytearray()
        self.calls = {}
        self.next_stream = 1  # the caller's streams are odd
        self.lost = None

    def connection_made(self, transport):
        self.transport = transport  # asyncio sets TCP_NODELAY on TCP sockets, as chorus's client does

    def data_received(self, data):
        self.buffer += data
        offset = 0
        while len(self.buffer) - offset >= 4:
            (length,) = struct.unpack_from(">I", self.buffer, offset)
            if len(self.buffer) - offset - 4 < length:
                break
            self.frame_received(decode_frame(bytes(self.buffer[offset + 4:offset + 4 + length])))
            offset += 4 + length
        del self.buffer[:offset]

    def frame_received(self, frame):
        kind = frame["kind"]
        if kind == CLOSE:
            future = self.calls.pop(frame["stream_id"], None)
            if future and not future.done():
                future.set_result(frame)
        elif kind == PING:  # keepalive: answer with the same payload
            self.transport.write(encode_frame(0, PONG, payload=frame["payload"]))
        elif kind == GOAWAY and frame["status_code"]:
            self.fail_all(f"GOAWAY {frame['status_code']}: {frame['status_message']}")
        # MESSAGE: a unary answer travels in CLOSE, so none is expected; PONG and a plain GOAWAY need nothing.

    def connection_lost(self, error):
        self.fail_all(f"connection lost: {error}")

    def fail_all(self, reason):
        self.lost = reason
        for future in self.calls.values():
            if not future.done():
                future.set_exception(ConnectionError(reason))
        self.calls.clear()

    async def unary(self, method, request):
        """Sends OPEN with the request and end_of_stream; returns the CLOSE frame that answers it."""
        if self.lost:
            raise ConnectionError(self.lost)
        stream_id = self.next_stream
        self.next_stream += 2
        future = asyncio.get_running_loop().create_future()
        self.calls[stream_id] = future
        self.transport.write(encode_frame(stream_id, OPEN, method=method, payload=request, end_of_stream=True))
        return await future


def echo_served_by(payload):
    """EchoResponse.served_by (field 2), to show which process answered."""
    i = 0
    while payload and i < len(payload):
        key, i = read_varint(payload, i)
        if key & 7 == 0:
            _, i = read_varint(payload, i)
            continue
        length, i = read_varint(payload, i)
        if key >> 3 == 2:
            return payload[i:i + length].decode(errors="replace")
        i += length
    return ""


def echo(args):
    host, _, port = args.address.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"

    async def run():
        loop = asyncio.get_running_loop()
        connections = [(await loop.create_connection(WireConnection, host, int(port)))[1]
                       for _ in range(args.connections)]
        warm = await connections[0].unary(ECHO, b"")  # not measured: proves the method answers
        if warm["status_code"]:
            sys.exit(f"load_peer.py: {ECHO} failed: status {warm['status_code']}: {warm['status_message']}")
        counts = {"completed": 0, "failed": 0, "error": None}
        stop_at = time.perf_counter() + args.duration

        async def worker(connection):
            while time.perf_counter() < stop_at:
                try:
                    close = await connection.unary(ECHO, b"")  # an empty EchoRequest encodes to no bytes
                    if close["status_code"] == 0:
                        counts["completed"] += 1
                        continue
                    error = f"status {close['status_code']}: {close['status_message']}"
                except ConnectionError as lost:
                    error = str(lost)
                counts["failed"] += 1
                counts["error"] = counts["error"] or error
                if connection.lost:
                    return

        cpu0, start = cpu_seconds(), time.perf_counter()
        await asyncio.gather(*(worker(connections[i % len(connections)]) for i in range(args.concurrency)))
        duration, cpu = time.perf_counter() - start, cpu_seconds() - cpu0
        for connection in connections:
            connection.transport.close()
        return counts, duration, cpu, echo_served_by(warm["payload"])

    counts, duration, cpu, served_by = asyncio.run(run())
    return {
        "peer": "python-asyncio-wire", "kind": "echo", "method": ECHO, "concurrency": args.concurrency,
        "connections": args.connections, "duration_s": duration, "completed": counts["completed"],
        "failed": counts["failed"], "requests_per_s": counts["completed"] / duration, "client_cpu_s": cpu,
        "client_cpu_percent": 100 * cpu / duration, "served_by": served_by, "error": counts["error"],
    }


# ---------------------------------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description="\n\n".join(__doc__.split("\n\n")[:3]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Each subcommand prints one JSON line on stdout.")
    commands = parser.add_subparsers(dest="command", required=True)

    def closed_loop_flags(command):
        command.add_argument("--concurrency", type=int, default=1, help="Requests in flight (closed loop).")
        command.add_argument("--requests", type=int, default=10, help="Measured requests, after one warm-up.")

    command = commands.add_parser("chat", help="Streaming /v1/chat/completions: TTFT, TPOT, ITL, E2EL, throughput.")
    command.add_argument("base_url", help="The OpenAI-compatible server, e.g. http://127.0.0.1:8080 (or .../v1).")
    command.add_argument("model")
    closed_loop_flags(command)
    command.add_argument("--max-tokens", type=int, default=16, help="max_completion_tokens of each request.")
    command.add_argument("--prompt", default="Describe the image.", help="The user message's text part.")
    command.add_argument("--image", help="A PNG sent as a data: URL image_url part before the text.")
    command.set_defaults(run=chat)

    command = commands.add_parser("transcribe", help="/v1/audio/transcriptions (json): E2EL and request throughput.")
    command.add_argument("base_url", help="The OpenAI-compatible server, e.g. http://127.0.0.1:8080 (or .../v1).")
    command.add_argument("model")
    command.add_argument("wav", help="The audio file sent with every request.")
    closed_loop_flags(command)
    command.set_defaults(run=transcribe)

    command = commands.add_parser("echo", help="Native-wire unary Speech/Echo as fast as possible: calls/s, CPU.")
    command.add_argument("address", help="HOST:PORT of a service's (or the gateway's) native wire port.")
    command.add_argument("--concurrency", type=int, default=8, help="Calls in flight.")
    command.add_argument("--duration", type=float, default=5, help="Seconds to run.")
    command.add_argument("--connections", type=int, default=1,
                         help="TCP connections the workers share round-robin (default 1, as chorus load).")
    command.set_defaults(run=echo)

    args = parser.parse_args()
    for name in ("concurrency", "requests", "max_tokens", "connections"):
        if getattr(args, name, 1) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    print(json.dumps(args.run(args)), flush=True)


if __name__ == "__main__":
    main()
