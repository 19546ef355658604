#!/usr/bin/env python3
"""Map a Piper voice's ONNX initializers to transformers' VitsModel parameter names.

A Piper voice is an ONNX export (torch.onnx, inference path only) of the original VITS code
(rhasspy/piper `piper_train/vits/models.py`: enc_p, dp = StochasticDurationPredictor, flow, dec;
the posterior encoder enc_q is not exported). Most initializers keep their module names, but
weight-norm-folded conv weights (the prior flow's WaveNet in_layers / res_skip_layers), the text
embedding (exported under the graph input-ish name `sid`) and the duration predictor's
ElementwiseAffine scale (folded to a constant `/dp/flows.0/Exp_output_0`) do not; those are named
here through the graph node that consumes them (`/flow/flows.0/enc/in_layers.0/Conv` input 1 ->
`flow.flows.0.enc.in_layers.0.weight`).

Usage:
    piper_names.py VOICE.onnx [--voice-json VOICE.onnx.json] [--json OUT.json]

Output JSON:
    {
      "mapping":    {hf_name: onnx_initializer_name, ...},   # every tensor inference needs
      "transforms": {hf_name: {"op": ..., "note": ...}},     # applied after the lookup
      "config":     {... VitsConfig fields ...},
      "piper_names": {piper_module_name: onnx_initializer_name},
      "not_exported": [...],                                  # HF params absent from the ONNX
    }

Transforms (the only ones; everything else is a plain copy, same shape, same layout):
    "squeeze_last": Piper's attention projections are Conv1d(k=1) weights [out, in, 1];
                    HF's q_proj/k_proj/v_proj/out_proj are nn.Linear weights [out, in]. Drop the
                    trailing 1 (no transpose: Conv1d and Linear both store [out, in]).
    "neg_log":      duration_predictor.flows.0.log_scale = -ln(C) where C is the ONNX constant
                    `/dp/flows.0/Exp_output_0` [2, 1]. The export folded exp(-logs) (VITS reverse:
                    (x - m) * exp(-logs)), consumed as `Mul(Sub(x, dp.flows.0.m), C)`. Equivalently a
                    loader may keep C and use it directly as exp(-log_scale).

Structural note (not a rename): Piper "medium"/"low"/"x_low" voices use HiFi-GAN ResBlock *type 2*
(`dec.resblocks.N.convs.K`: per dilation one conv, x = x + conv(leaky_relu(x, 0.1))), which
transformers' VitsHifiGan (ResBlock type 1: convs1 + convs2 pairs) cannot express. Such weights are
named `decoder.resblocks.N.convs1.K` here (no convs2 keys), and the config carries the extra,
non-transformers key `"resblock": "2"`. ResBlock-1 voices ("high") map to convs1/convs2 as usual
and get `"resblock": "1"`.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from typing import Any

import numpy as np

# --------------------------------------------------------------------------------------------
# Piper (original VITS) module name -> transformers VitsModel name. Applied in order, first match.
# {i},{j},{k} are integers. `{f}` in flow / dp rules is the Piper ModuleList index, which the
# functions below convert (Piper interleaves Flip modules, transformers does not).
# --------------------------------------------------------------------------------------------

_SIMPLE_RULES: list[tuple[str, str]] = [
    # text encoder
    (r"enc_p\.emb\.weight", "text_encoder.embed_tokens.weight"),
    (r"enc_p\.encoder\.attn_layers\.(\d+)\.conv_q\.(weight|bias)", r"text_encoder.encoder.layers.\1.attention.q_proj.\2"),
    (r"enc_p\.encoder\.attn_layers\.(\d+)\.conv_k\.(weight|bias)", r"text_encoder.encoder.layers.\1.attention.k_proj.\2"),
    (r"enc_p\.encoder\.attn_layers\.(\d+)\.conv_v\.(weight|bias)", r"text_encoder.encoder.layers.\1.attention.v_proj.\2"),
    (r"enc_p\.encoder\.attn_layers\.(\d+)\.conv_o\.(weight|bias)", r"text_encoder.encoder.layers.\1.attention.out_proj.\2"),
    (r"enc_p\.encoder\.attn_layers\.(\d+)\.emb_rel_(k|v)", r"text_encoder.encoder.layers.\1.attention.emb_rel_\2"),
    (r"enc_p\.encoder\.norm_layers_1\.(\d+)\.gamma", r"text_encoder.encoder.layers.\1.layer_norm.weight"),
    (r"enc_p\.encoder\.norm_layers_1\.(\d+)\.beta", r"text_encoder.encoder.layers.\1.layer_norm.bias"),
    (r"enc_p\.encoder\.norm_layers_2\.(\d+)\.gamma", r"text_encoder.encoder.layers.\1.final_layer_norm.weight"),
    (r"enc_p\.encoder\.norm_layers_2\.(\d+)\.beta", r"text_encoder.encoder.layers.\1.final_layer_norm.bias"),
    (r"enc_p\.encoder\.ffn_layers\.(\d+)\.(conv_1|conv_2)\.(weight|bias)", r"text_encoder.encoder.layers.\1.feed_forward.\2.\3"),
    (r"enc_p\.proj\.(weight|bias)", r"text_encoder.project.\1"),
    # decoder (HiFi-GAN)
    (r"dec\.conv_pre\.(weight|bias)", r"decoder.conv_pre.\1"),
    (r"dec\.ups\.(\d+)\.(weight|bias)", r"decoder.upsampler.\1.\2"),
    (r"dec\.resblocks\.(\d+)\.(convs1|convs2)\.(\d+)\.(weight|bias)", r"decoder.resblocks.\1.\2.\3.\4"),
    (r"dec\.resblocks\.(\d+)\.convs\.(\d+)\.(weight|bias)", r"decoder.resblocks.\1.convs1.\2.\3"),  # ResBlock2
    (r"dec\.conv_post\.(weight|bias)", r"decoder.conv_post.\1"),
    (r"dec\.cond\.(weight|bias)", r"decoder.cond.\1"),
    # speakers
    (r"emb_g\.weight", "embed_speaker.weight"),
    # stochastic duration predictor, top level
    (r"dp\.pre\.(weight|bias)", r"duration_predictor.conv_pre.\1"),
    (r"dp\.proj\.(weight|bias)", r"duration_predictor.conv_proj.\1"),
    (r"dp\.cond\.(weight|bias)", r"duration_predictor.cond.\1"),
]


def _dds(sub: str) -> str | None:
    """DDSConv sub-name (after `convs.`) -> VitsDilatedDepthSeparableConv sub-name."""
    m = re.fullmatch(r"convs_sep\.(\d+)\.(weight|bias)", sub)
    if m:
        return f"convs_dilated.{m[1]}.{m[2]}"
    m = re.fullmatch(r"convs_1x1\.(\d+)\.(weight|bias)", sub)
    if m:
        return f"convs_pointwise.{m[1]}.{m[2]}"
    m = re.fullmatch(r"(norms_1|norms_2)\.(\d+)\.(gamma|beta)", sub)
    if m:
        return f"{m[1]}.{m[2]}.{'weight' if m[3] == 'gamma' else 'bias'}"
    return None


def piper_to_hf(name: str) -> str | None:
    """One Piper parameter name -> transformers name (None if it has no transformers counterpart)."""
    for pat, rep in _SIMPLE_RULES:
        if re.fullmatch(pat, name):
            return re.sub(pat, rep, name)
    # dp.convs.* (top-level DDSConv)
    m = re.fullmatch(r"dp\.convs\.(.+)", name)
    if m and _dds(m[1]):
        return f"duration_predictor.conv_dds.{_dds(m[1])}"
    # dp.post_* (training only, never exported, listed for completeness)
    m = re.fullmatch(r"dp\.post_(pre|proj)\.(weight|bias)", name)
    if m:
        return f"duration_predictor.post_conv_{m[1]}.{m[2]}"
    # SDP flows: Piper [ElementwiseAffine, ConvFlow, Flip, ConvFlow, Flip, ...]
    #   dp.flows.0            -> duration_predictor.flows.0  (m -> translate, logs -> log_scale)
    #   dp.flows.{2j-1}       -> duration_predictor.flows.{j} (ConvFlow), j = 1..num_flows
    m = re.fullmatch(r"dp\.(flows|post_flows)\.(\d+)\.(.+)", name)
    if m:
        lst, f, rest = m[1], int(m[2]), m[3]
        hl = "flows" if lst == "flows" else "post_flows"
        if f == 0:
            if rest == "m":
                return f"duration_predictor.{hl}.0.translate"
            if rest == "logs":
                return f"duration_predictor.{hl}.0.log_scale"
            return None
        if f % 2 == 0:
            return None  # Flip modules have no parameters
        j = (f + 1) // 2
        if rest.startswith("pre."):
            return f"duration_predictor.{hl}.{j}.conv_pre.{rest[4:]}"
        if rest.startswith("proj."):
            return f"duration_predictor.{hl}.{j}.conv_proj.{rest[5:]}"
        if rest.startswith("convs.") and _dds(rest[6:]):
            return f"duration_predictor.{hl}.{j}.conv_dds.{_dds(rest[6:])}"
        return None
    # prior flow: Piper [ResidualCouplingLayer, Flip, ResidualCouplingLayer, Flip, ...]
    #   flow.flows.{2j} -> flow.flows.{j}
    m = re.fullmatch(r"flow\.flows\.(\d+)\.(.+)", name)
    if m:
        f, rest = int(m[1]), m[2]
        if f % 2:
            return None
        j = f // 2
        if rest.startswith("pre."):
            return f"flow.flows.{j}.conv_pre.{rest[4:]}"
        if rest.startswith("post."):
            return f"flow.flows.{j}.conv_post.{rest[5:]}"
        mm = re.fullmatch(r"enc\.(in_layers|res_skip_layers)\.(\d+)\.(weight|bias)", rest)
        if mm:
            return f"flow.flows.{j}.wavenet.{mm[1]}.{mm[2]}.{mm[3]}"
        mm = re.fullmatch(r"enc\.cond_layer\.(weight|bias)", rest)
        if mm:
            return f"flow.flows.{j}.wavenet.cond_layer.{mm[1]}"
        return None
    return None


# --------------------------------------------------------------------------------------------
# ONNX graph reading
# --------------------------------------------------------------------------------------------

_MODULE_PREFIXES = ("enc_p.", "dp.", "flow.", "dec.", "emb_g.")
EXP_NEG_LOGS = "dp.flows.0.exp_neg_logs"  # pseudo Piper name for the folded exp(-logs) constant


def _attrs(node) -> dict[str, Any]:
    from onnx import helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _module_of(node_name: str) -> str:
    """'/flow/flows.0/enc/in_layers.0/Conv' -> 'flow.flows.0.enc.in_layers.0'"""
    parts = node_name.strip("/").split("/")
    return ".".join(parts[:-1])


def read_graph(onnx_path: str):
    import onnx
    model = onnx.load(onnx_path)
    return model.graph


def piper_initializer_names(graph) -> dict[str, str]:
    """{piper parameter name: onnx initializer name} for every parameter inference uses."""
    inits = {i.name for i in graph.initializer}
    out: dict[str, str] = {}

    def put(pname: str, iname: str):
        if pname in out and out[pname] != iname:
            raise ValueError(f"{pname}: two initializers {out[pname]} / {iname}")
        out[pname] = iname

    # 1. initializers that kept their module names
    for n in inits:
        if n.startswith(_MODULE_PREFIXES):
            put(n, n)
    # 2. anonymous ones, named through their consumer
    for node in graph.node:
        ins = list(node.input)
        if node.op_type in ("Conv", "ConvTranspose") and node.name.startswith("/"):
            mod = _module_of(node.name)
            for idx, suffix in ((1, "weight"), (2, "bias")):
                if idx < len(ins) and ins[idx] in inits:
                    put(f"{mod}.{suffix}", ins[idx])
        elif node.op_type == "Gather" and node.name in ("/enc_p/emb/Gather", "/emb_g/Gather"):
            if ins[0] in inits:
                put(_module_of(node.name) + ".weight", ins[0])
        elif node.op_type == "Mul" and node.name == "/dp/flows.0/Mul":
            # reverse ElementwiseAffine: Mul(Sub(x, m), exp(-logs))
            for i in ins:
                if i in inits and not i.startswith(_MODULE_PREFIXES):
                    put(EXP_NEG_LOGS, i)
    return out


def _conv_nodes(graph) -> dict[str, Any]:
    return {_module_of(n.name): n for n in graph.node if n.op_type in ("Conv", "ConvTranspose") and n.name.startswith("/")}


# --------------------------------------------------------------------------------------------
# config
# --------------------------------------------------------------------------------------------

def derive_config(graph, shapes: dict[str, tuple], pnames: dict[str, str], voice: dict | None) -> dict:
    def shp(p):
        return shapes[pnames[p]]

    convs = _conv_nodes(graph)
    cfg: dict[str, Any] = {"model_type": "vits", "architectures": ["VitsModel"]}
    vocab, hidden = shp("enc_p.emb.weight")
    cfg["vocab_size"], cfg["hidden_size"] = int(vocab), int(hidden)
    layers = sorted({int(m[1]) for p in pnames if (m := re.fullmatch(r"enc_p\.encoder\.attn_layers\.(\d+)\.conv_q\.weight", p))})
    cfg["num_hidden_layers"] = len(layers)
    rel = shp("enc_p.encoder.attn_layers.0.emb_rel_k")  # [1, 2w+1, head_dim]
    cfg["num_attention_heads"] = hidden // int(rel[2])
    cfg["window_size"] = (int(rel[1]) - 1) // 2
    cfg["use_bias"] = "enc_p.encoder.attn_layers.0.conv_q.bias" in pnames
    ffn = shp("enc_p.encoder.ffn_layers.0.conv_1.weight")
    cfg["ffn_dim"], cfg["ffn_kernel_size"] = int(ffn[0]), int(ffn[2])
    cfg["hidden_act"] = "relu"  # Piper FFN: activation=None -> relu (gelu variant not used by Piper)
    if any(n.op_type == "Sigmoid" and n.name.startswith("/enc_p/encoder/ffn_layers") for n in graph.node):
        raise ValueError("FFN uses VITS' x*sigmoid(1.702x) activation; transformers has no such hidden_act")
    cfg["layer_norm_eps"] = 1e-5
    cfg["flow_size"] = int(shp("enc_p.proj.weight")[0]) // 2
    cfg["spectrogram_bins"] = 513  # enc_q (posterior encoder) is not exported; Piper's filter_length 1024 -> 513
    cfg["posterior_encoder_num_wavenet_layers"] = 16  # idem, VITS default

    # prior flow
    flows = sorted({int(m[1]) for p in pnames if (m := re.fullmatch(r"flow\.flows\.(\d+)\.pre\.weight", p))})
    cfg["prior_encoder_num_flows"] = len(flows)
    wl = sorted({int(m[1]) for p in pnames if (m := re.fullmatch(rf"flow\.flows\.{flows[0]}\.enc\.in_layers\.(\d+)\.weight", p))})
    cfg["prior_encoder_num_wavenet_layers"] = len(wl)
    cfg["wavenet_kernel_size"] = int(shp(f"flow.flows.{flows[0]}.enc.in_layers.0.weight")[2])
    rate = 1
    if len(wl) > 1:
        rate = int(_attrs(convs[f"flow.flows.{flows[0]}.enc.in_layers.1"]).get("dilations", [1])[0])
    cfg["wavenet_dilation_rate"] = rate
    cfg["wavenet_dropout"] = 0.0
    if cfg["flow_size"] // 2 != int(shp(f"flow.flows.{flows[0]}.pre.weight")[1]):
        raise ValueError("flow half-channels != flow_size / 2")

    # decoder
    cfg["upsample_initial_channel"] = int(shp("dec.conv_pre.weight")[0])
    ups = sorted({int(m[1]) for p in pnames if (m := re.fullmatch(r"dec\.ups\.(\d+)\.weight", p))})
    cfg["upsample_kernel_sizes"] = [int(shp(f"dec.ups.{i}.weight")[2]) for i in ups]
    cfg["upsample_rates"] = [int(_attrs(convs[f"dec.ups.{i}"])["strides"][0]) for i in ups]
    nres = len({int(m[1]) for p in pnames if (m := re.fullmatch(r"dec\.resblocks\.(\d+)\..*", p))})
    nk = nres // len(ups)
    rb2 = "dec.resblocks.0.convs.0.weight" in pnames
    cfg["resblock"] = "2" if rb2 else "1"
    sub = "convs" if rb2 else "convs1"
    ks, dil = [], []
    for j in range(nk):
        ks.append(int(shp(f"dec.resblocks.{j}.{sub}.0.weight")[2]))
        nd = len({int(m[1]) for p in pnames if (m := re.fullmatch(rf"dec\.resblocks\.{j}\.{sub}\.(\d+)\.weight", p))})
        dil.append([int(_attrs(convs[f"dec.resblocks.{j}.{sub}.{d}"]).get("dilations", [1])[0]) for d in range(nd)])
    cfg["resblock_kernel_sizes"], cfg["resblock_dilation_sizes"] = ks, dil
    slopes = [_attrs(n).get("alpha", 0.01) for n in graph.node if n.op_type == "LeakyRelu" and n.name.startswith("/dec/")]
    cfg["leaky_relu_slope"] = round(float(max(slopes)), 6) if slopes else 0.1  # 0.1 inside; final one is 0.01

    # stochastic duration predictor
    cfg["use_stochastic_duration_prediction"] = True
    if int(shp("dp.pre.weight")[0]) != hidden:
        raise ValueError("SDP filter_channels != hidden_size: transformers' VitsStochasticDurationPredictor cannot express it")
    nsep = len({int(m[1]) for p in pnames if (m := re.fullmatch(r"dp\.convs\.convs_sep\.(\d+)\.weight", p))})
    cfg["depth_separable_num_layers"] = nsep
    cfg["duration_predictor_kernel_size"] = int(shp("dp.convs.convs_sep.0.weight")[2])
    cfg["depth_separable_channels"] = 2
    cf = sorted({int(m[1]) for p in pnames if (m := re.fullmatch(r"dp\.flows\.(\d+)\.proj\.weight", p))})
    cfg["duration_predictor_num_flows"] = (max(cf) + 1) // 2  # dp.flows.1 (first ConvFlow) is unused in reverse, not exported
    half = cfg["depth_separable_channels"] // 2
    cfg["duration_predictor_flow_bins"] = (int(shp(f"dp.flows.{cf[0]}.proj.weight")[0]) // half + 1) // 3
    tb = 5.0
    for n in graph.node:
        if n.op_type == "LessOrEqual" and n.name.startswith("/dp/flows."):
            init = {i.name: i for i in graph.initializer}
            if n.input[1] in init:
                from onnx import numpy_helper
                tb = float(numpy_helper.to_array(init[n.input[1]]))
            break
    cfg["duration_predictor_tail_bound"] = tb
    cfg["duration_predictor_dropout"] = 0.5
    cfg["duration_predictor_filter_channels"] = 256  # only used by the deterministic predictor (absent)

    # speakers
    if "emb_g.weight" in pnames:
        ns, se = shp("emb_g.weight")
        cfg["num_speakers"], cfg["speaker_embedding_size"] = int(ns), int(se)
    else:
        cfg["num_speakers"], cfg["speaker_embedding_size"] = 1, 0

    # from the voice .onnx.json
    v = voice or {}
    cfg["sampling_rate"] = int(v.get("audio", {}).get("sample_rate", 22050))
    inf = v.get("inference", {})
    cfg["noise_scale"] = float(inf.get("noise_scale", 0.667))
    cfg["noise_scale_duration"] = float(inf.get("noise_w", 0.8))
    cfg["speaking_rate"] = 1.0 / float(inf.get("length_scale", 1.0))
    if "num_speakers" in v and int(v["num_speakers"]) != cfg["num_speakers"] and cfg["num_speakers"] > 1:
        raise ValueError("num_speakers in .onnx.json disagrees with emb_g")
    if "num_symbols" in v and int(v["num_symbols"]) != cfg["vocab_size"]:
        raise ValueError("num_symbols in .onnx.json disagrees with the embedding")
    cfg["pad_token_id"] = None
    return cfg


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------

def derive(onnx_path: str, voice_json: str | None = None) -> dict:
    graph = read_graph(onnx_path)
    shapes = {i.name: tuple(int(d) for d in i.dims) for i in graph.initializer}
    pnames = piper_initializer_names(graph)
    if voice_json is None and os.path.exists(onnx_path + ".json"):
        voice_json = onnx_path + ".json"
    voice = json.load(open(voice_json, encoding="utf-8")) if voice_json else None

    mapping: dict[str, str] = {}
    transforms: dict[str, dict] = {}
    unmapped = []
    for p, iname in sorted(pnames.items()):
        if p == EXP_NEG_LOGS:
            hf = "duration_predictor.flows.0.log_scale"
            transforms[hf] = {"op": "neg_log", "note": "log_scale = -ln(C); C = exp(-logs) folded by the export"}
        else:
            hf = piper_to_hf(p)
            if hf is None:
                unmapped.append(p)
                continue
        if hf in mapping:
            raise ValueError(f"{hf} mapped twice ({mapping[hf]}, {iname})")
        mapping[hf] = iname
        if re.fullmatch(r"text_encoder\.encoder\.layers\.\d+\.attention\.(q|k|v|out)_proj\.weight", hf):
            transforms[hf] = {"op": "squeeze_last", "note": "Conv1d k=1 [out,in,1] -> Linear [out,in]"}
    if "duration_predictor.flows.0.log_scale" not in mapping:
        raise ValueError("could not find the ElementwiseAffine scale (dp.flows.0.logs or /dp/flows.0 Exp constant)")
    if unmapped:
        raise ValueError(f"Piper parameters without a transformers name: {unmapped}")

    cfg = derive_config(graph, shapes, pnames, voice)
    nf = cfg["duration_predictor_num_flows"]
    not_exported = [
        "posterior_encoder.* (training only)",
        "duration_predictor.post_* (training only)",
        "duration_predictor.flows.1.* (first ConvFlow; dropped by the reverse pass, never used in inference)",
    ]
    hf_shapes = {k: list(shapes[v]) for k, v in mapping.items()}
    for k, t in transforms.items():
        if t["op"] == "squeeze_last":
            hf_shapes[k] = hf_shapes[k][:-1]
    return {
        "mapping": mapping,
        "transforms": transforms,
        "config": cfg,
        "piper_names": pnames,
        "hf_shapes": hf_shapes,
        "not_exported": not_exported,
        "duration_predictor_flows_used": [0] + list(range(2, nf + 1)),
    }


def apply_transform(op: str | None, a: np.ndarray) -> np.ndarray:
    if op is None:
        return a
    if op == "squeeze_last":
        assert a.shape[-1] == 1
        return a[..., 0]
    if op == "neg_log":
        return (-np.log(a.astype(np.float64))).astype(a.dtype)
    raise ValueError(op)


def load_hf_tensors(onnx_path: str, derived: dict | None = None) -> dict[str, np.ndarray]:
    """{hf_name: numpy array} with the transforms applied."""
    import onnx
    from onnx import numpy_helper
    derived = derived or derive(onnx_path)
    graph = onnx.load(onnx_path).graph
    arrays = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    out = {}
    for hf, iname in derived["mapping"].items():
        op = derived["transforms"].get(hf, {}).get("op")
        out[hf] = np.ascontiguousarray(apply_transform(op, arrays[iname]))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("onnx")
    ap.add_argument("--voice-json", default=None)
    ap.add_argument("--json", default=None, help="write the result here instead of stdout")
    ap.add_argument("--config-out", default=None, help="also write the derived config.json here")
    args = ap.parse_args(argv)
    d = derive(args.onnx, args.voice_json)
    text = json.dumps(d, indent=1, sort_keys=False)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        print(f"wrote {args.json}: {len(d['mapping'])} tensors", file=sys.stderr)
    else:
        print(text)
    if args.config_out:
        with open(args.config_out, "w", encoding="utf-8") as f:
            json.dump(d["config"], f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
