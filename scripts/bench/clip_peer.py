#!/usr/bin/env python3
"""Same-run peer for `chorus bench clip`: one JSON line on stdout per call.

    clip_peer.py make-model DIR        build a seeded random-weight ViT-B/32 CLIP in DIR (skipped when already there)
    clip_peer.py serve DIR THREADS     the model stays loaded; each line "images B" or "texts B" on stdin is
                                       answered by one JSON line {"kind", "batch", "per_s"} (about 2 s of calls),
                                       so `chorus bench clip` can take turns with it

Model hubs are out of reach here, so the model carries the published shapes of openai/clip-vit-base-patch32
(hardcoded below) with weights from torch.manual_seed(0); DIR gets config.json + model.safetensors, a CLIP
preprocessor_config.json and the small fixture tokenizer (fewer tokens than 49408, so its ids stay in range).
Speed does not depend on the weights. serve times get_image_features on random [B,3,224,224] pixels or
get_text_features on [B,16] ids (bos .. eos 49407, mask all ones), and answers the median per-call time after
a warm-up as items per second."""
import json
import os
import shutil
import statistics
import sys
import time

import torch

FIXTURE_TOKENIZER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "ChorusTextTests", "Fixtures", "clip")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt")
TEXT = dict(vocab_size=49408, hidden_size=512, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=8,
            max_position_embeddings=77, hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=512,
            bos_token_id=49406, eos_token_id=49407, pad_token_id=1)
VISION = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12, num_channels=3,
              image_size=224, patch_size=32, hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=512)
TOP = dict(projection_dim=512, logit_scale_init_value=2.6592)
PREPROCESSOR = {
    "image_processor_type": "CLIPImageProcessor",
    "do_resize": True, "size": {"shortest_edge": 224}, "resample": 3,
    "do_center_crop": True, "crop_size": {"height": 224, "width": 224},
    "do_rescale": True, "rescale_factor": 1 / 255,
    "do_normalize": True, "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
    "do_convert_rgb": True,
}
TEXT_LENGTH = 16


def config_matches(path):
    try:
        config = json.load(open(path))
    except (OSError, ValueError):
        return False
    return (all(config.get(k) == v for k, v in TOP.items())
            and all(config.get("text_config", {}).get(k) == v for k, v in TEXT.items())
            and all(config.get("vision_config", {}).get(k) == v for k, v in VISION.items()))


def make_model(directory):
    from transformers import CLIPConfig, CLIPModel
    started = time.perf_counter()
    skipped = os.path.exists(os.path.join(directory, "model.safetensors")) and config_matches(os.path.join(directory, "config.json"))
    if not skipped:
        os.makedirs(directory, exist_ok=True)
        torch.manual_seed(0)
        model = CLIPModel(CLIPConfig(text_config=TEXT, vision_config=VISION, **TOP)).eval()
        model.save_pretrained(directory, safe_serialization=True)
    with open(os.path.join(directory, "preprocessor_config.json"), "w") as f:
        json.dump(PREPROCESSOR, f, indent=2)
    for name in TOKENIZER_FILES:
        shutil.copyfile(os.path.join(FIXTURE_TOKENIZER, name), os.path.join(directory, name))
    print(json.dumps({"dir": os.path.abspath(directory), "seconds": time.perf_counter() - started, "skipped": skipped}), flush=True)


def seconds_per_call(fn, warmup=2, min_seconds=3.0, min_runs=3, max_runs=200):
    for _ in range(warmup):
        fn()
    times = []
    began = time.perf_counter()
    while len(times) < min_runs or (time.perf_counter() - began < min_seconds and len(times) < max_runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def serve(directory, threads):
    from transformers import CLIPModel
    torch.set_num_threads(threads)
    model = CLIPModel.from_pretrained(directory, local_files_only=True).eval()
    generator = torch.Generator().manual_seed(0)
    text = model.config.text_config
    with torch.inference_mode():
        for line in sys.stdin:
            kind, batch = line.split()[0], int(line.split()[1])
            if kind == "images":
                pixels = torch.randn(batch, 3, 224, 224, generator=generator, dtype=torch.float32)
                call = lambda: model.get_image_features(pixel_values=pixels)
            else:
                ids = torch.randint(0, text.bos_token_id, (batch, TEXT_LENGTH), generator=generator)
                ids[:, 0], ids[:, -1] = text.bos_token_id, text.eos_token_id
                mask = torch.ones_like(ids)
                call = lambda: model.get_text_features(input_ids=ids, attention_mask=mask)
            per_s = batch / seconds_per_call(call, warmup=1, min_seconds=2.0)
            print(json.dumps({"kind": kind, "batch": batch, "per_s": per_s, "torch": torch.__version__}), flush=True)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) == 3 and sys.argv[1] == "make-model":
        make_model(sys.argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
