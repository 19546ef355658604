#!/usr/bin/env python3
"""Same-run peer for `chorus bench vlm`: one JSON line on stdout per call.

    vlm_peer.py make-model DIR               build a seeded random-weight LLaVA-shaped model in DIR (skipped when there)
    vlm_peer.py measure DIR THREADS TOKENS   time to first token and decode tokens/s of transformers' generate

Model hubs are out of reach, so the model is made here: a CLIP ViT-B/32 vision tower (openai/clip-vit-base-patch32's
published vision shapes) and a 12-layer, 768-wide Llama (12 query / 4 key-value heads, SwiGLU 2048, vocab 32064,
LLaVA-1.5's projector and feature layer -2), weights from torch.manual_seed(0). Speed does not depend on the values.
DIR also gets the tiny fixture tokenizer (its <image> is id 401, so the config uses that) and inputs.safetensors:
the prompt both engines run, BOS + 49 image tokens + 40 text tokens, and one 224x224 image's pixel values.

measure: time to first token is the median of generate(max_new_tokens=1); decode tokens/s is (TOKENS - 1) over
the median extra time of generate(max_new_tokens=TOKENS) (min_new_tokens=TOKENS, so EOS never ends it early),
greedy, KV cache on, torch.inference_mode, THREADS intra-op threads."""
import json
import os
import shutil
import statistics
import sys
import time

import torch

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "ChorusLLaVATests", "Fixtures", "llava")
IMAGE_TOKEN = 401
VISION = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12, num_channels=3,
              image_size=224, patch_size=32, hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=512)
TEXT = dict(vocab_size=32064, hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12,
            num_key_value_heads=4, max_position_embeddings=2048, rms_norm_eps=1e-5, hidden_act="silu",
            bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False)



def peak_rss_mb():
    """This process's peak resident memory. Not getrusage's ru_maxrss: on Linux that keeps the parent's peak
    across fork and exec, so a peer started by a big benchmark process would report the benchmark's memory."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")

def make_model(folder):
    if os.path.exists(os.path.join(folder, "model.safetensors")):
        print(json.dumps({"made": False}))
        return
    from safetensors.torch import save_file
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration
    torch.manual_seed(0)
    config = LlavaConfig(vision_config=CLIPVisionConfig(**VISION), text_config=LlamaConfig(**TEXT),
                         image_token_index=IMAGE_TOKEN, vision_feature_layer=-2, vision_feature_select_strategy="default",
                         projector_hidden_act="gelu", image_seq_length=49)
    model = LlavaForConditionalGeneration(config).eval()
    os.makedirs(folder, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(FIXTURE, name), os.path.join(folder, name))
    generator = torch.Generator().manual_seed(1)
    text = torch.randint(3, 400, (40,), generator=generator)
    ids = torch.cat([torch.tensor([1]), torch.full((49,), IMAGE_TOKEN), text]).unsqueeze(0)
    pixels = torch.randn(1, 3, 224, 224, generator=generator)
    save_file({"input_ids": ids.contiguous(), "pixel_values": pixels.contiguous()}, os.path.join(folder, "inputs.safetensors"))
    print(json.dumps({"made": True}))


def median_seconds(body, runs):
    body()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        body()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(folder, threads, tokens):
    from safetensors.torch import load_file
    from transformers import LlavaForConditionalGeneration
    torch.set_num_threads(threads)
    model = LlavaForConditionalGeneration.from_pretrained(folder).eval()
    inputs = load_file(os.path.join(folder, "inputs.safetensors"))

    def generate(n):
        with torch.inference_mode():
            model.generate(input_ids=inputs["input_ids"], pixel_values=inputs["pixel_values"], max_new_tokens=n,
                           min_new_tokens=n, do_sample=False, use_cache=True)

    first = median_seconds(lambda: generate(1), 5)
    whole = median_seconds(lambda: generate(tokens), 3)
    print(json.dumps({"ttft_s": first, "decode_tokens_per_s": (tokens - 1) / (whole - first),
                      "peak_rss_mb": peak_rss_mb(),
                      "torch": torch.__version__, "threads": threads}))


if __name__ == "__main__":
    if sys.argv[1] == "make-model":
        make_model(sys.argv[2])
    else:
        measure(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
