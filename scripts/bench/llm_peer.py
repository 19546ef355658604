#!/usr/bin/env python3
"""Same-run peer for `chorus bench llm`: llama.cpp (through llama-cpp-python) on the same GGUF file, the same
token ids and the same thread count, one JSON line on stdout.

    llm_peer.py MODEL.gguf THREADS PROMPT_TOKENS[,PROMPT_TOKENS...] NEW_TOKENS

Prompt processing: a fresh KV cache, then the first N ids of the shared sequence evaluated in one batch
(n_batch and n_ubatch 512); tokens/s = N / seconds. Generation: a 16-token prompt, then NEW_TOKENS greedy
steps (argmax of the last logits, each fed back one at a time); tokens/s = NEW_TOKENS / seconds of those
steps. Each figure is the median of 3 runs after one warm-up. The ids are `chorus bench llm`'s: BOS (when the
file has one), then 1000 + (i·7919 mod 20000).

llama-cpp-python builds llama.cpp from source; install it apart from the project's venv, e.g.
    python3 -m venv /tmp/llamavenv && /tmp/llamavenv/bin/pip install llama-cpp-python numpy
and point `chorus bench llm --peer-python /tmp/llamavenv/bin/python` at it.
"""
import json
import statistics
import sys
import time

import llama_cpp
import numpy as np


def ids(count, bos):
    out = [1000 + (i * 7919) % 20000 for i in range(count)]
    if bos is not None and bos >= 0:
        out[0] = bos
    return out


def main():
    path, threads, prompt_counts, new_tokens = sys.argv[1], int(sys.argv[2]), [int(n) for n in sys.argv[3].split(",")], int(sys.argv[4])
    llm = llama_cpp.Llama(model_path=path, n_ctx=max(prompt_counts) + new_tokens + 32, n_threads=threads, n_threads_batch=threads,
                          n_batch=512, n_ubatch=512, logits_all=False, verbose=False)
    bos = llm.token_bos()
    result = {"peer": "llama.cpp", "llama_cpp_python": llama_cpp.__version__, "threads": threads,
              "system_info": llama_cpp.llama_print_system_info().decode(errors="replace").strip()}

    def median(run):
        run()
        return statistics.median(run() for _ in range(3))

    for count in prompt_counts:
        tokens = ids(count, bos)

        def prefill():
            llm.reset()
            started = time.perf_counter()
            llm.eval(tokens)
            return time.perf_counter() - started
        result[f"pp{count}_tokens_per_s"] = count / median(prefill)

    prompt = ids(16, bos)

    def generate():
        llm.reset()
        llm.eval(prompt)
        started = time.perf_counter()
        for _ in range(new_tokens):
            token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
            llm.eval([token])
        return time.perf_counter() - started
    result[f"tg{new_tokens}_tokens_per_s"] = new_tokens / median(generate)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
