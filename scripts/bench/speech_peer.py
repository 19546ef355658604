#!/usr/bin/env python3
"""Same-run peer for `chorus bench speech`: one configuration per process (so peak memory is its own),
one JSON line on stdout.

    speech_peer.py ENGINE MODEL_DIR WAV BEAM THREADS
    ENGINE: ct2-float32 | ct2-int8 | transformers

Audio goes through 30 s windows advanced as openai-whisper's transcribe (and Chorus) advance them: from the last
timestamp that closed a segment. Each window is decoded with timestamps from the same prompt Chorus uses, so every
engine decodes the same windows; the JSON line says how many.
The transformers peer is built from the same CTranslate2 weights (split back into the Hugging Face layout),
since model hubs are out of reach here. It decodes with the logit rules Chorus and CTranslate2 apply, through
transformers' own processors: the model config's suppress_ids, suppress_ids_begin on the first step, and
WhisperTimeStampLogitsProcessor (timestamps in pairs, never decreasing, the first one at most 1 s). Without them
plain generate() answers <|nocaptions|> for most windows of the long clip and decodes a third of the tokens."""
import json
import struct
import sys
import time
import wave

import numpy as np



def peak_rss_mb():
    """This process's peak resident memory. Not getrusage's ru_maxrss: on Linux that keeps the parent's peak
    across fork and exec, so a peer started by a big benchmark process would report the benchmark's memory."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")

def read_wav(path):
    with wave.open(path) as w:
        assert w.getframerate() == 16000 and w.getsampwidth() == 2
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768
        return data.reshape(-1, w.getnchannels()).mean(axis=1)


def ct2_variables(model_dir):
    blob = open(f"{model_dir}/model.bin", "rb").read()
    offset = 0

    def u(fmt):
        nonlocal offset
        value = struct.unpack_from(fmt, blob, offset)
        offset += struct.calcsize(fmt)
        return value[0]

    def s():
        nonlocal offset
        n = u("<H")
        text = blob[offset:offset + n - 1].decode()
        offset += n
        return text

    u("<I"); s(); u("<I")
    variables = {}
    for _ in range(u("<I")):
        name = s()
        rank = u("<B")
        shape = [u("<I") for _ in range(rank)]
        dtype = {0: "<f4", 1: "i1", 2: "<i2", 3: "<i4", 4: "<f2"}[u("<B")]
        size = u("<I")
        variables[name] = np.frombuffer(blob, dtype=dtype, count=size // np.dtype(dtype).itemsize, offset=offset).reshape(shape)
        offset += size
    return variables


def transformers_model(model_dir, threads):
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration
    torch.set_num_threads(threads)
    v = ct2_variables(model_dir)
    vocab, d = v["decoder/embeddings/weight"].shape
    layers = len({k.split("/")[1] for k in v if k.startswith("encoder/layer_") and k.split("/")[1][6:].isdigit()})
    heads = int(v["encoder/num_heads"])
    config = WhisperConfig(vocab_size=vocab, num_mel_bins=v["encoder/conv1/weight"].shape[1], d_model=d, encoder_layers=layers,
                           decoder_layers=layers, encoder_attention_heads=heads, decoder_attention_heads=heads,
                           encoder_ffn_dim=4 * d, decoder_ffn_dim=4 * d, max_target_positions=448)
    model = WhisperForConditionalGeneration(config).eval()
    sd = {}
    t = lambda a: torch.from_numpy(np.array(a, dtype=np.float32))
    def norm(prefix, src):
        sd[f"{prefix}.weight"], sd[f"{prefix}.bias"] = t(v[f"{src}/gamma"]), t(v[f"{src}/beta"])
    def linear(prefix, src, rows=None):
        w, b = v[f"{src}/weight"], v.get(f"{src}/bias")
        sd[f"{prefix}.weight"] = t(w if rows is None else w[rows])
        if b is not None and not prefix.endswith("k_proj"):
            sd[f"{prefix}.bias"] = t(b if rows is None else b[rows])
    for side in ("encoder", "decoder"):
        for i in range(layers):
            src, dst = f"{side}/layer_{i}", f"model.{side}.layers.{i}"
            for j, p in enumerate(["q_proj", "k_proj", "v_proj"]):
                linear(f"{dst}.self_attn.{p}", f"{src}/self_attention/linear_0", slice(j * d, (j + 1) * d))
            linear(f"{dst}.self_attn.out_proj", f"{src}/self_attention/linear_1")
            norm(f"{dst}.self_attn_layer_norm", f"{src}/self_attention/layer_norm")
            linear(f"{dst}.fc1", f"{src}/ffn/linear_0")
            linear(f"{dst}.fc2", f"{src}/ffn/linear_1")
            norm(f"{dst}.final_layer_norm", f"{src}/ffn/layer_norm")
            if side == "decoder":
                linear(f"{dst}.encoder_attn.q_proj", f"{src}/attention/linear_0")
                linear(f"{dst}.encoder_attn.k_proj", f"{src}/attention/linear_1", slice(0, d))
                linear(f"{dst}.encoder_attn.v_proj", f"{src}/attention/linear_1", slice(d, 2 * d))
                linear(f"{dst}.encoder_attn.out_proj", f"{src}/attention/linear_2")
                norm(f"{dst}.encoder_attn_layer_norm", f"{src}/attention/layer_norm")
        norm(f"model.{side}.layer_norm", f"{side}/layer_norm")
    for c in ("conv1", "conv2"):
        linear(f"model.encoder.{c}", f"encoder/{c}")
    sd["model.encoder.embed_positions.weight"] = t(v["encoder/position_encodings/encodings"])
    sd["model.decoder.embed_positions.weight"] = t(v["decoder/position_encodings/encodings"])
    sd["model.decoder.embed_tokens.weight"] = t(v["decoder/embeddings/weight"])
    sd["proj_out.weight"] = sd["model.decoder.embed_tokens.weight"]
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected and all("k_proj.bias" in m for m in missing), (missing, unexpected)
    return model


def whisper_logit_rules(model_dir, prompt, added):
    """The rules Chorus applies (WhisperDecoding.swift), in openai-whisper's order, as transformers processors."""
    from transformers import GenerationConfig, LogitsProcessorList
    from transformers.generation.logits_process import (SuppressTokensAtBeginLogitsProcessor, SuppressTokensLogitsProcessor,
                                                        WhisperTimeStampLogitsProcessor)
    config = json.load(open(f"{model_dir}/config.json"))
    timestamps = GenerationConfig(no_timestamps_token_id=added["<|notimestamps|>"], eos_token_id=added["<|endoftext|>"],
                                  max_initial_timestamp_index=50)
    return LogitsProcessorList([
        SuppressTokensAtBeginLogitsProcessor(config["suppress_ids_begin"], len(prompt)),
        SuppressTokensLogitsProcessor(config["suppress_ids"]),
        WhisperTimeStampLogitsProcessor(timestamps, begin_index=len(prompt)),
    ])


def advance(ids, window_count, window_samples, timestamp_begin, samples_per_timestamp):
    """openai-whisper's seek, as Chorus applies it: a full window continues from the last timestamp that closed a
    segment, unless the tokens end on a lone timestamp or in unfinished text (then the whole window is consumed)."""
    last_closed, start, text = None, None, False
    for token in ids:
        if token >= timestamp_begin:
            if start is not None and text:
                last_closed, start, text = token - timestamp_begin, None, False
            else:
                start = token
        else:
            text = True
    if text:
        last_closed = None
    lone = len(ids) >= 2 and ids[-1] >= timestamp_begin and ids[-2] < timestamp_begin
    if last_closed is None or lone or window_count < window_samples:
        return window_count
    return max(samples_per_timestamp, last_closed * samples_per_timestamp)


def main():
    engine, model_dir, wav, beam, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    from transformers import WhisperFeatureExtractor
    audio = read_wav(wav)
    extractor = WhisperFeatureExtractor()
    added = {t["content"]: t["id"] for t in json.load(open(f"{model_dir}/tokenizer.json"))["added_tokens"]}
    multilingual = added["<|endoftext|>"] == 50257
    prompt = [added["<|startoftranscript|>"]] + ([added["<|en|>"], added["<|transcribe|>"]] if multilingual else [])
    started = time.perf_counter()
    if engine.startswith("ct2"):
        import ctranslate2
        model = ctranslate2.models.Whisper(model_dir, device="cpu", compute_type=engine.split("-")[1], intra_threads=threads)
    else:
        model = transformers_model(model_dir, threads)
    load = time.perf_counter() - started
    whisper_rules = None if engine.startswith("ct2") else whisper_logit_rules(model_dir, prompt, added)
    tokens = windows = 0
    window_samples = 16000 * 30
    samples_per_timestamp = 16000 // 50
    seek = 0
    started = time.perf_counter()
    while seek < len(audio):
        window = audio[seek:seek + window_samples]
        if float(np.mean(window * window)) < 1e-8:  # digital silence is skipped, as Chorus does
            seek += len(window)
            continue
        features = extractor(window, sampling_rate=16000, return_tensors="np")["input_features"]
        windows += 1
        if engine.startswith("ct2"):
            import ctranslate2
            result = model.generate(ctranslate2.StorageView.from_array(features), [prompt], beam_size=beam, max_length=448)
            ids = list(result[0].sequences_ids[0])
        else:
            import torch
            from transformers import GenerationMixin
            with torch.inference_mode():
                out = GenerationMixin.generate(model, input_features=torch.from_numpy(features), decoder_input_ids=torch.tensor([prompt]),
                                               num_beams=beam, do_sample=False, max_new_tokens=220, eos_token_id=added["<|endoftext|>"],
                                               pad_token_id=added["<|endoftext|>"], logits_processor=whisper_rules,
                                               suppress_tokens=None, begin_suppress_tokens=None)
            ids = out[0, len(prompt):].tolist()
        if added["<|endoftext|>"] in ids:
            ids = ids[:ids.index(added["<|endoftext|>"])]
        tokens += len(ids)
        seek += advance(ids, len(window), window_samples, added["<|notimestamps|>"] + 1, samples_per_timestamp)
    seconds = time.perf_counter() - started
    print(json.dumps({"peer": engine, "seconds": seconds, "load_seconds": load, "audio_seconds": len(audio) / 16000,
                      "tokens": tokens, "windows": windows, "peak_rss_mb": peak_rss_mb()}), flush=True)


if __name__ == "__main__":
    main()
