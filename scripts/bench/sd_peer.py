#!/usr/bin/env python3
"""Same-run PyTorch peer for `chorus bench diffusion`'s Stable Diffusion rows: one JSON line on stdout per call.

    sd_peer.py make FOLDER                 write a seeded random-weight SD 1.5-shaped diffusers folder (skipped when
                                           FOLDER/model_index.json is already there)
    sd_peer.py bench FOLDER THREADS [ROWS] time diffusers on FOLDER; ROWS is a comma list of unet512, unet256, vae512,
                                           cnet512 (default: all four)

Model hubs are out of reach here, so the folder carries the published shapes of runwayml/stable-diffusion-v1-5
(configs hardcoded below) with weights from the libraries' own random initialisation under torch.manual_seed;
speed does not depend on the weights. It is written by StableDiffusionPipeline.save_pretrained (float32
safetensors): model_index.json, unet/ and vae/ (config.json + diffusion_pytorch_model.safetensors),
text_encoder/ (config.json + model.safetensors), scheduler/ (PNDM, SD 1.5 settings) and tokenizer/ (the small
fixture CLIP BPE tokenizer: vocab.json, merges.txt, tokenizer.json; fewer tokens than the text encoder's 49408,
so its ids stay in range; the text encoder's bos/eos/pad ids are the tokenizer's). The folder is built next to
FOLDER and renamed into place, so an interrupted make leaves no half folder that looks finished.

bench rows, each the median seconds of one call after one warm-up (at least 2 timed runs and at least ~10 s):
    unet512  UNet2DConditionModel forward, latents [2,4,64,64] (one classifier-free-guidance step at 512x512),
             timestep 500, encoder_hidden_states [2,77,768]
    unet256  the same at latents [2,4,32,32] (256x256)
    vae512   AutoencoderKL.decode of one [1,4,64,64] latent (a 512x512 image)
    cnet512  one ControlNet step at 512x512: ControlNetModel forward (latents [2,4,64,64], control image [2,3,512,512])
             and the UNet with its residuals, as StableDiffusionControlNetPipeline runs each step (FOLDER/controlnet:
             ControlNetModel.from_unet of the folder's UNet, SD 1.5's ControlNet shape, made with the folder or after)
float32, torch.inference_mode, torch.set_num_threads(THREADS). Also reported: the attention processors the
models use, parameter counts, load seconds and the peak resident memory (VmHWM) of the process."""
import json
import os
import shutil
import statistics
import sys
import time

import torch

SEED = 0
FIXTURE_TOKENIZER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "ChorusTextTests", "Fixtures", "clip")
UNET = dict(sample_size=64, in_channels=4, out_channels=4, center_input_sample=False, flip_sin_to_cos=True, freq_shift=0,
            down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
            block_out_channels=(320, 640, 1280, 1280), layers_per_block=2, downsample_padding=1, mid_block_scale_factor=1,
            act_fn="silu", norm_num_groups=32, norm_eps=1e-5, cross_attention_dim=768, attention_head_dim=8)
VAE = dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
           block_out_channels=(128, 256, 512, 512), layers_per_block=2, act_fn="silu", latent_channels=4,
           norm_num_groups=32, sample_size=512, scaling_factor=0.18215)
TEXT = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
            max_position_embeddings=77, hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=768,
            attention_dropout=0.0, dropout=0.0, initializer_range=0.02, initializer_factor=1.0)
SCHEDULER = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                 trained_betas=None, skip_prk_steps=True, set_alpha_to_one=False, steps_offset=1, prediction_type="epsilon",
                 timestep_spacing="leading")
ROWS = ("unet512", "unet256", "vae512", "cnet512")


def parameters(model):
    return sum(p.numel() for p in model.parameters())


def make_controlnet(folder):
    """FOLDER/controlnet: a ControlNet of SD 1.5's shape copied from the folder's UNet (written aside, renamed)."""
    from diffusers import ControlNetModel, UNet2DConditionModel
    target = os.path.join(folder, "controlnet")
    if os.path.exists(os.path.join(target, "config.json")):
        return False
    torch.set_num_threads(1)
    unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet", local_files_only=True)
    torch.manual_seed(SEED + 3)
    building = target + ".partial"
    shutil.rmtree(building, ignore_errors=True)
    ControlNetModel.from_unet(unet).save_pretrained(building, safe_serialization=True)
    os.rename(building, target)
    return True


def make(folder):
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer
    started = time.perf_counter()
    folder = os.path.abspath(folder)
    if os.path.exists(os.path.join(folder, "model_index.json")):
        made = make_controlnet(folder)
        print(json.dumps({"dir": folder, "seconds": time.perf_counter() - started, "skipped": not made}), flush=True)
        return
    torch.set_num_threads(1)   # random init only; keeps make off the other cores
    tokenizer = CLIPTokenizer.from_pretrained(FIXTURE_TOKENIZER, model_max_length=77, local_files_only=True)
    torch.manual_seed(SEED)
    text_encoder = CLIPTextModel(CLIPTextConfig(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                                pad_token_id=tokenizer.pad_token_id, **TEXT)).eval()
    torch.manual_seed(SEED + 1)
    unet = UNet2DConditionModel(**UNET).eval()
    torch.manual_seed(SEED + 2)
    vae = AutoencoderKL(**VAE).eval()
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=PNDMScheduler(**SCHEDULER), safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    building = folder + ".partial"
    shutil.rmtree(building, ignore_errors=True)
    pipe.save_pretrained(building, safe_serialization=True)
    # transformers 5 saves only tokenizer.json + tokenizer_config.json; the SD fixture layout also has the BPE
    # files, and the CLIP fixture's config names a CLIPProcessor that an SD folder does not have
    for name in ("vocab.json", "merges.txt"):
        shutil.copyfile(os.path.join(FIXTURE_TOKENIZER, name), os.path.join(building, "tokenizer", name))
    config_path = os.path.join(building, "tokenizer", "tokenizer_config.json")
    config = json.load(open(config_path))
    config.pop("processor_class", None)
    with open(config_path, "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")
    if os.path.exists(folder):   # a leftover without model_index.json: not a finished folder
        shutil.rmtree(folder)
    os.rename(building, folder)
    make_controlnet(folder)
    print(json.dumps({"dir": folder, "seconds": time.perf_counter() - started, "skipped": False,
                      "parameters": {"unet": parameters(unet), "vae": parameters(vae), "text_encoder": parameters(text_encoder)}}),
          flush=True)


def seconds_per_call(fn, min_runs=2, min_seconds=10.0, max_runs=50):
    """fn has been called once already (the warm-up)."""
    times = []
    began = time.perf_counter()
    while len(times) < min_runs or (time.perf_counter() - began < min_seconds and len(times) < max_runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def peak_rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024   # kB
    return None


def processors(model):
    return sorted({type(p).__name__ for p in model.attn_processors.values()})


def bench(folder, threads, rows):
    import diffusers
    from diffusers import AutoencoderKL, UNet2DConditionModel
    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(0)
    seconds, runs, loaded, info = {}, {}, {}, {}
    started = time.perf_counter()

    def model(name):
        if name not in loaded:
            from diffusers import ControlNetModel
            t0 = time.perf_counter()
            cls = {"unet": UNet2DConditionModel, "vae": AutoencoderKL, "controlnet": ControlNetModel}[name]
            m = cls.from_pretrained(folder, subfolder=name, local_files_only=True, torch_dtype=torch.float32).eval()
            loaded[name] = m
            info[name] = {"load_s": time.perf_counter() - t0, "parameters": parameters(m), "attention": processors(m)}
        return loaded[name]

    with torch.inference_mode():
        for row in rows:
            if row == "cnet512":
                unet, controlnet = model("unet"), model("controlnet")
                latents = torch.randn(2, 4, 64, 64, generator=generator)
                context = torch.randn(2, 77, unet.config.cross_attention_dim, generator=generator)
                image = torch.rand(2, 3, 512, 512, generator=generator)
                timestep = torch.tensor(500)

                def fn():
                    down, mid = controlnet(latents, timestep, encoder_hidden_states=context, controlnet_cond=image, return_dict=False)
                    return unet(latents, timestep, encoder_hidden_states=context, down_block_additional_residuals=down,
                                mid_block_additional_residual=mid).sample
            elif row.startswith("unet"):
                unet = model("unet")
                side = 64 if row == "unet512" else 32
                latents = torch.randn(2, 4, side, side, generator=generator)
                context = torch.randn(2, 77, unet.config.cross_attention_dim, generator=generator)
                timestep = torch.tensor(500)
                fn = lambda: unet(latents, timestep, encoder_hidden_states=context).sample
            else:
                vae = model("vae")
                latents = torch.randn(1, 4, 64, 64, generator=generator)
                fn = lambda: vae.decode(latents).sample
            out = fn()   # the warm-up, and a check that random weights did not overflow
            if not torch.isfinite(out).all():
                sys.exit(f"{row}: output is not finite")
            seconds[row], times = seconds_per_call(fn)
            runs[row] = [round(t, 4) for t in times]
    print(json.dumps({"seconds": seconds, "runs": runs, "threads": threads, "models": info,
                      "peak_rss_mib": peak_rss_mib(), "wall_s": time.perf_counter() - started,
                      "torch": torch.__version__, "diffusers": diffusers.__version__}), flush=True)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "make":
        make(sys.argv[2])
    elif len(sys.argv) in (4, 5) and sys.argv[1] == "bench":
        rows = sys.argv[4].split(",") if len(sys.argv) == 5 else list(ROWS)
        unknown = [r for r in rows if r not in ROWS]
        if unknown:
            sys.exit(f"unknown rows {unknown}; choose from {','.join(ROWS)}")
        bench(sys.argv[2], int(sys.argv[3]), rows)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
