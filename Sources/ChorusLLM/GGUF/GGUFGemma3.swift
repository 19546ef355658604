import ChorusTensor
import Foundation

/// A Gemma 3 GGUF file as transformers' Gemma3ForCausalLM: the config from its `gemma3.*` metadata (and
/// llama.cpp's fixed values the file does not carry: local RoPE base 10 000, every sixth layer global),
/// the weights under transformers' names.
public enum GGUFGemma3 {
    public static func config(_ file: GGUFFile) throws -> Gemma3Config {
        func int(_ key: String) throws -> Int {
            guard let value = try file.required("gemma3.\(key)").int, value > 0 else {
                throw WeightFileError(file.name, "gemma3.\(key) is not a positive integer")
            }
            return value
        }
        let vocabulary = try file.info("token_embd.weight").shape
        let heads = try int("attention.head_count"), keyLength = try int("attention.key_length")
        let config = Gemma3Config(
            vocabSize: vocabulary[0], hiddenSize: try int("embedding_length"), intermediateSize: try int("feed_forward_length"),
            numHiddenLayers: try int("block_count"), numAttentionHeads: heads,
            numKeyValueHeads: file.metadata["gemma3.attention.head_count_kv"]?.int ?? heads, headDim: keyLength,
            rmsNormEps: Float(file.metadata["gemma3.attention.layer_norm_rms_epsilon"]?.double ?? 1e-6),
            ropeTheta: Float(file.metadata["gemma3.rope.freq_base"]?.double ?? 1_000_000), ropeLocalBaseFrequency: 10_000,
            slidingWindow: file.metadata["gemma3.attention.sliding_window"]?.int ?? 512, slidingWindowPattern: 6,
            maxPositionEmbeddings: try int("context_length"), queryPreAttentionScalar: Float(keyLength),
            bosTokenId: file.metadata["tokenizer.ggml.bos_token_id"]?.int,
            eosTokenIds: [file.metadata["tokenizer.ggml.eos_token_id"]?.int, file.metadata["tokenizer.ggml.eot_token_id"]?.int].compactMap { $0 })
        guard vocabulary == [config.vocabSize, config.hiddenSize] else {
            throw WeightFileError(file.name, "token_embd.weight is \(vocabulary), expected [vocabulary, \(config.hiddenSize)]")
        }
        guard heads % config.numKeyValueHeads == 0 else {
            throw WeightFileError(file.name, "\(heads) heads do not group over \(config.numKeyValueHeads) key/value heads")
        }
        if let scaling = file.metadata["gemma3.rope.scaling.type"]?.string, scaling != "none" {
            throw WeightFileError(file.name, "RoPE scaling '\(scaling)' is not supported for Gemma 3 yet")
        }
        return config
    }

    /// transformers' name → llama.cpp's.
    public static func names(_ config: Gemma3Config) -> [String: String] {
        var names = ["model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight"]
        let parts = ["input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
                     "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "self_attn.q_norm": "attn_q_norm",
                     "self_attn.k_norm": "attn_k_norm", "post_attention_layernorm": "post_attention_norm",
                     "pre_feedforward_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
                     "mlp.down_proj": "ffn_down", "post_feedforward_layernorm": "post_ffw_norm"]
        for layer in 0..<config.numHiddenLayers {
            for (hf, gguf) in parts { names["model.layers.\(layer).\(hf).weight"] = "blk.\(layer).\(gguf).weight" }
        }
        return names
    }

    /// Gemma 3's chat format (the template of its Hugging Face tokenizer, for string contents): a system
    /// message goes before the first user turn; the assistant's role is "model".
    public static let chatTemplate = """
        {{ bos_token }}
        {%- if messages[0]['role'] == 'system' -%}
            {%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}
            {%- set loop_messages = messages[1:] -%}
        {%- else -%}
            {%- set first_user_prefix = "" -%}
            {%- set loop_messages = messages -%}
        {%- endif -%}
        {%- for message in loop_messages -%}
            {%- if message['role'] == 'assistant' -%}
                {%- set role = "model" -%}
            {%- else -%}
                {%- set role = message['role'] -%}
            {%- endif -%}
            {{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else "") }}
            {{- message['content'] | trim }}
            {{- '<end_of_turn>\\n' -}}
        {%- endfor -%}
        {%- if add_generation_prompt -%}
            {{ '<start_of_turn>model\\n' }}
        {%- endif -%}
        """
}
