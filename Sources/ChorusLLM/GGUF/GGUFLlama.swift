import ChorusTensor
import Foundation

/// A Llama-architecture GGUF file (SmolLM2, TinyLlama, Llama 2/3 ...) as transformers' Llama: the config
/// from its `llama.*` metadata, the weights under transformers' names. llama.cpp's converter permutes the
/// rows of q_proj and k_proj so its RoPE can rotate adjacent pairs; they are put back here, so the one
/// Llama (which rotates halves, as transformers does) runs GGUF and Hugging Face checkpoints alike.
public enum GGUFLlama {
    /// The LlamaConfig the metadata describes.
    public static func config(_ file: GGUFFile) throws -> LlamaConfig {
        func int(_ key: String) throws -> Int {
            guard let value = try file.required("llama.\(key)").int, value > 0 else {
                throw WeightFileError(file.name, "llama.\(key) is not a positive integer")
            }
            return value
        }
        var config = LlamaConfig()
        config.hiddenSize = try int("embedding_length")
        config.intermediateSize = try int("feed_forward_length")
        config.numHiddenLayers = try int("block_count")
        config.numAttentionHeads = try int("attention.head_count")
        config.numKeyValueHeads = file.metadata["llama.attention.head_count_kv"]?.int ?? config.numAttentionHeads
        config.maxPositionEmbeddings = try int("context_length")
        config.rmsNormEps = Float(file.metadata["llama.attention.layer_norm_rms_epsilon"]?.double ?? 1e-5)
        config.rope = LlamaConfig.RoPE(theta: Float(file.metadata["llama.rope.freq_base"]?.double ?? 10_000))
        if let scaling = file.metadata["llama.rope.scaling.type"]?.string, scaling != "none" {
            guard scaling == "linear", let factor = file.metadata["llama.rope.scaling.factor"]?.double, factor > 0 else {
                throw WeightFileError(file.name, "RoPE scaling '\(scaling)' is not supported (none and linear are)")
            }
            config.rope.scaling = .linear(factor: Float(factor))
        }
        let vocabulary = try file.info("token_embd.weight").shape
        config.vocabSize = vocabulary[0]
        guard vocabulary == [config.vocabSize, config.hiddenSize] else {
            throw WeightFileError(file.name, "token_embd.weight is \(vocabulary), expected [vocabulary, \(config.hiddenSize)]")
        }
        guard config.hiddenSize % config.numAttentionHeads == 0, config.numAttentionHeads % config.keyValueHeads == 0 else {
            throw WeightFileError(file.name, "\(config.numAttentionHeads) heads and \(config.keyValueHeads) key/value heads do not divide \(config.hiddenSize)")
        }
        if let rotated = file.metadata["llama.rope.dimension_count"]?.int, rotated != config.headSize {
            throw WeightFileError(file.name, "RoPE over \(rotated) of \(config.headSize) head dimensions is not supported")
        }
        config.tieWordEmbeddings = (try? file.info("output.weight")) == nil
        config.bosTokenId = file.metadata["tokenizer.ggml.bos_token_id"]?.int
        config.eosTokenIds = [file.metadata["tokenizer.ggml.eos_token_id"]?.int].compactMap { $0 }
        return config
    }

    /// transformers' name → llama.cpp's, for every weight of `config`'s layers (prefix `model`).
    public static func names(_ config: LlamaConfig, tied: Bool) -> [String: String] {
        var names = ["model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight"]
        if !tied { names["lm_head.weight"] = "output.weight" }
        let parts = ["input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
                     "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
                     "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"]
        for layer in 0..<config.numHiddenLayers {
            for (hf, gguf) in parts { names["model.layers.\(layer).\(hf).weight"] = "blk.\(layer).\(gguf).weight" }
        }
        return names
    }

    /// The weights under transformers' names, q_proj and k_proj un-permuted.
    public static func weights(_ file: GGUFFile, config: LlamaConfig) -> WeightSource {
        UnpermutedWeights(file: file, mapping: names(config, tied: config.tieWordEmbeddings), config: config)
    }

    /// Undoes llama.cpp's `permute`: its row h·d + 2i + j is transformers' row h·d + j·d/2 + i.
    static func unpermute(_ tensor: Tensor, heads: Int) -> Tensor {
        let rows = tensor.shape[0], columns = tensor.shape[1]
        var out = [Float](repeating: 0, count: rows * columns)
        tensor.storage.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for row in 0..<rows {
                    let from = unpermutedSource(row: row, rows: rows, heads: heads) * columns
                    (dst.baseAddress! + row * columns).update(from: src.baseAddress! + from, count: columns)  // checked: inside the loop over rows
                }
            }
        }
        return Tensor(shape: tensor.shape, storage: out)
    }

    /// The llama.cpp row that becomes transformers' row `row`: float and quantized weights move rows alike.
    static func unpermutedSource(row: Int, rows: Int, heads: Int) -> Int {
        let headSize = rows / heads, half = headSize / 2
        let (h, within) = (row / headSize, row % headSize)
        let (j, i) = (within / half, within % half)
        return h * headSize + 2 * i + j
    }

    struct UnpermutedWeights: WeightSource {
        let file: GGUFFile
        let mapping: [String: String]
        let config: LlamaConfig

        var names: [String] { mapping.keys.sorted() }

        func tensor(_ name: String) throws -> Tensor {
            guard let source = mapping[name] else { throw WeightFileError(file.name, "has no tensor for '\(name)'") }
            let tensor = try file.tensor(source)
            if name.hasSuffix("q_proj.weight") { return GGUFLlama.unpermute(tensor, heads: config.numAttentionHeads) }
            if name.hasSuffix("k_proj.weight") { return GGUFLlama.unpermute(tensor, heads: config.keyValueHeads) }
            return tensor
        }

        func linearWeight(_ name: String) throws -> LinearWeight {
            guard let source = mapping[name] else { throw WeightFileError(file.name, "has no tensor for '\(name)'") }
            guard case .quantized(let matrix) = try file.linearWeight(source) else { return .floats(try tensor(name)) }
            let heads = name.hasSuffix("q_proj.weight") ? config.numAttentionHeads : name.hasSuffix("k_proj.weight") ? config.keyValueHeads : nil
            guard let heads else { return .quantized(matrix) }
            return .quantized(matrix.permutingRows { GGUFLlama.unpermutedSource(row: $0, rows: matrix.rows, heads: heads) })
        }
    }
}
