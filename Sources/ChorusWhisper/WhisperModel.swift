import ChorusTensor
import Foundation

/// Whisper (Radford et al. 2022) as transformers' WhisperForConditionalGeneration lays it out: the types
/// mirror the checkpoint's module tree, so `model.decoder.layers.3.encoder_attn.k_proj.weight` is
/// `decoder.layers[3].encoderAttention.key.weight`.
package struct WhisperAttention: Sendable {
    package let query: Linear, key: Linear, value: Linear, out: Linear
    package let heads: Int

    package init(_ w: WeightSource, _ prefix: String, heads: Int) throws {
        query = try Linear(w, "\(prefix).q_proj")
        key = try Linear(w, "\(prefix).k_proj", bias: false)  // Whisper's key projection has no bias
        value = try Linear(w, "\(prefix).v_proj")
        out = try Linear(w, "\(prefix).out_proj")
        self.heads = heads
    }

    private init(query: Linear, key: Linear, value: Linear, out: Linear, heads: Int) {
        (self.query, self.key, self.value, self.out, self.heads) = (query, key, value, out, heads)
    }

    /// The projections a decoder step runs on one row per sequence, kept as halves too (Linear.keepingHalves).
    /// Cross-attention's keys and values are made once per window from 1500 rows, so they stay float32.
    package func keepingHalves(keysAndValues: Bool) -> WhisperAttention {
        WhisperAttention(query: query.keepingHalves(), key: keysAndValues ? key.keepingHalves() : key,
                         value: keysAndValues ? value.keepingHalves() : value, out: out.keepingHalves(), heads: heads)
    }
}

package struct WhisperEncoderLayer: Sendable {
    package let selfAttention: WhisperAttention
    package let selfAttentionNorm: LayerNorm
    package let fc1: Linear, fc2: Linear
    package let finalNorm: LayerNorm

    package init(_ w: WeightSource, _ prefix: String, heads: Int) throws {
        selfAttention = try WhisperAttention(w, "\(prefix).self_attn", heads: heads)
        selfAttentionNorm = try LayerNorm(w, "\(prefix).self_attn_layer_norm")
        fc1 = try Linear(w, "\(prefix).fc1")
        fc2 = try Linear(w, "\(prefix).fc2")
        finalNorm = try LayerNorm(w, "\(prefix).final_layer_norm")
    }

    /// h = x + attention(norm(x)); out = h + mlp(norm(h))
    package func callAsFunction(_ x: Tensor) -> Tensor {
        let n = selfAttentionNorm(x)
        let a = selfAttention.out(Attention.attend(query: selfAttention.query(n), key: selfAttention.key(n), value: selfAttention.value(n),
                                                   heads: selfAttention.heads))
        let h = x + a
        return h + fc2(fc1(finalNorm(h)).applying(.gelu))
    }
}

package struct WhisperEncoder: Sendable {
    package let conv1: Linear, conv2: Linear  // weight [d, in, 3]; Linear only to hold weight and bias
    package let positions: Tensor
    package let layers: [WhisperEncoderLayer]
    package let layerNorm: LayerNorm

    package init(_ w: WeightSource, config: WhisperConfig) throws {
        conv1 = try Linear(w, "model.encoder.conv1")
        conv2 = try Linear(w, "model.encoder.conv2")
        positions = try w.tensor("model.encoder.embed_positions.weight")
        layers = try (0..<config.encoderLayers).map { try WhisperEncoderLayer(w, "model.encoder.layers.\($0)", heads: config.encoderHeads) }
        layerNorm = try LayerNorm(w, "model.encoder.layer_norm")
    }

    /// mel [mels, 3000] → [1, 1500, d]
    package func callAsFunction(_ mel: Tensor) -> Tensor {
        var x = Convolution.conv1d(mel.reshaped([1] + mel.shape), weight: conv1.weight, bias: conv1.bias, padding: 1).applying(.gelu)
        x = Convolution.conv1d(x, weight: conv2.weight, bias: conv2.bias, stride: 2, padding: 1).applying(.gelu)
        let frames = x.shape[2]
        x = x.permuted([0, 2, 1]) + positions.slice(axis: 0, 0..<frames).reshaped([1, frames, -1])
        for layer in layers { x = layer(x) }
        return layerNorm(x)
    }
}

package struct WhisperDecoderLayer: Sendable {
    package let selfAttention: WhisperAttention
    package let selfAttentionNorm: LayerNorm
    package let encoderAttention: WhisperAttention
    package let encoderAttentionNorm: LayerNorm
    package let fc1: Linear, fc2: Linear
    package let finalNorm: LayerNorm

    package init(_ w: WeightSource, _ prefix: String, heads: Int) throws {
        // A decoder step reads every weight for one row per sequence: halves, when the checkpoint is float16.
        selfAttention = try WhisperAttention(w, "\(prefix).self_attn", heads: heads).keepingHalves(keysAndValues: true)
        selfAttentionNorm = try LayerNorm(w, "\(prefix).self_attn_layer_norm")
        encoderAttention = try WhisperAttention(w, "\(prefix).encoder_attn", heads: heads).keepingHalves(keysAndValues: false)
        encoderAttentionNorm = try LayerNorm(w, "\(prefix).encoder_attn_layer_norm")
        fc1 = try Linear(w, "\(prefix).fc1").keepingHalves()
        fc2 = try Linear(w, "\(prefix).fc2").keepingHalves()
        finalNorm = try LayerNorm(w, "\(prefix).final_layer_norm")
    }
}

package struct WhisperDecoder: Sendable {
    package let tokens: Tensor
    package let positions: Tensor
    package let layers: [WhisperDecoderLayer]
    package let layerNorm: LayerNorm
    /// The output projection (`proj_out`), tied to `tokens` when the checkpoint has none; kept as halves
    /// too when the checkpoint is float16, for the 80 MB a tiny.en step would read in float32.
    package let projection: Linear

    package init(_ w: WeightSource, config: WhisperConfig) throws {
        tokens = try w.tensor("model.decoder.embed_tokens.weight")
        positions = try w.tensor("model.decoder.embed_positions.weight")
        layers = try (0..<config.decoderLayers).map { try WhisperDecoderLayer(w, "model.decoder.layers.\($0)", heads: config.decoderHeads) }
        layerNorm = try LayerNorm(w, "model.decoder.layer_norm")
        if let own = try? w.linearWeight("proj_out.weight") {
            projection = Linear(weight: own, bias: nil).keepingHalves()
        } else {
            // Tied to the embedding, already loaded: float32 shares its table; int8 keeps codes of its own.
            let tied = Linear(weight: tokens, bias: nil)
            projection = w is Int8Weights ? tied.quantizedToInt8() : tied.keepingHalves()
        }
    }
}

/// The decoder's memory of one transcription: per layer the self-attention cache and the cross-attention
/// keys and values of the audio (computed once per window).
package struct WhisperDecoderState: Sendable {
    package var selfCaches: [KVCache]
    package let crossKeys: [Tensor]
    package let crossValues: [Tensor]
    package var length: Int { selfCaches.first?.length ?? 0 }
    /// Sequences decoded side by side (beams); they share the audio's cross-attention keys and values.
    package var batch: Int { selfCaches.first?.batch ?? 1 }

    /// Sequence b continues the history of sequence sources[b].
    package mutating func reorder(_ sources: [Int]) {
        for i in selfCaches.indices { selfCaches[i].reorder(sources) }
    }
}

public final class WhisperModel: Sendable {
    package let config: WhisperConfig
    package let encoder: WhisperEncoder
    package let decoder: WhisperDecoder

    package init(weights: WeightSource, config: WhisperConfig) throws {
        self.config = config
        encoder = try WhisperEncoder(weights, config: config)
        decoder = try WhisperDecoder(weights, config: config)
    }

    /// A Hugging Face Whisper folder or a CTranslate2 one, its linears in `precision` (int8 where it runs here).
    public convenience init(folder: String, precision: Precision = .float32) throws {
        let (weights, config) = try WhisperWeights.open(folder: folder)
        try self.init(weights: precision.weights(weights), config: config)
    }

    public var melBins: Int { config.melBins }
    public var vocabularySize: Int { decoder.projection.outFeatures }
    /// int8 when the linears run on int8 weights.
    public var precision: Precision { decoder.projection.isInt8 ? .int8 : .float32 }
    public var maxTokens: Int { config.maxTargetPositions }

    /// mel [mels, 3000] → audio features [1, 1500, d].
    public func encode(_ mel: Tensor) -> Tensor {
        encoder(mel)
    }

    package func startDecoding(_ audio: Tensor) -> WhisperDecoderState {
        let width = config.dModel
        var keys: [Tensor] = [], values: [Tensor] = []
        for layer in decoder.layers {
            keys.append(layer.encoderAttention.key(audio))
            values.append(layer.encoderAttention.value(audio))
        }
        return WhisperDecoderState(selfCaches: decoder.layers.map { _ in KVCache(batch: 1, width: width, capacity: 32) },
                                   crossKeys: keys, crossValues: values)
    }

    /// Runs `tokens` after what the state has seen; returns logits [tokens.count, vocabulary].
    package func decode(_ tokens: [Int], state: inout WhisperDecoderState) -> Tensor {
        let start = state.length
        precondition(start + tokens.count <= decoder.positions.shape[0], "Whisper decodes at most \(decoder.positions.shape[0]) tokens")
        var x = decoder.tokens.embedding(tokens) + decoder.positions.slice(axis: 0, start..<(start + tokens.count))
        x = x.reshaped([1, tokens.count, config.dModel])
        for (i, layer) in decoder.layers.enumerated() {
            let n = layer.selfAttentionNorm(x)
            state.selfCaches[i].append(keys: layer.selfAttention.key(n), values: layer.selfAttention.value(n))
            x = x + layer.selfAttention.out(state.selfCaches[i].attend(query: layer.selfAttention.query(n), heads: layer.selfAttention.heads))
            let c = layer.encoderAttentionNorm(x)
            x = x + layer.encoderAttention.out(Attention.attend(query: layer.encoderAttention.query(c), key: state.crossKeys[i],
                                                               value: state.crossValues[i], heads: layer.encoderAttention.heads))
            x = x + layer.fc2(layer.fc1(layer.finalNorm(x)).applying(.gelu))
        }
        let h = decoder.layerNorm(x).reshaped([tokens.count, config.dModel])
        return decoder.projection(h)
    }
}

extension WhisperModel {
    /// One step for every sequence of the state at once (beam search): token b extends sequence b.
    /// The projections run as one product over all beams, so the weights are read once per step, and
    /// the cross-attention treats the beams as rows of one query over the shared audio keys.
    /// Returns logits [beams, vocabulary].
    package func decodeStep(_ tokens: [Int], state: inout WhisperDecoderState) -> Tensor {
        let beams = tokens.count, start = state.length, width = config.dModel
        precondition(beams == state.batch, "decodeStep: \(beams) tokens for \(state.batch) sequences")
        precondition(start < decoder.positions.shape[0], "Whisper decodes at most \(decoder.positions.shape[0]) tokens")
        var x = decoder.tokens.embedding(tokens) + decoder.positions.slice(axis: 0, start..<(start + 1))
        x = x.reshaped([beams, 1, width])
        for (i, layer) in decoder.layers.enumerated() {
            let n = layer.selfAttentionNorm(x)
            state.selfCaches[i].append(keys: layer.selfAttention.key(n), values: layer.selfAttention.value(n))
            x = x + layer.selfAttention.out(state.selfCaches[i].attend(query: layer.selfAttention.query(n), heads: layer.selfAttention.heads))
            let c = layer.encoderAttentionNorm(x)
            let q = layer.encoderAttention.query(c).reshaped([1, beams, width])
            let a = Attention.attend(query: q, key: state.crossKeys[i], value: state.crossValues[i], heads: layer.encoderAttention.heads)
            x = x + layer.encoderAttention.out(a.reshaped([beams, 1, width]))
            x = x + layer.fc2(layer.fc1(layer.finalNorm(x)).applying(.gelu))
        }
        let h = decoder.layerNorm(x).reshaped([beams, width])
        return decoder.projection(h)
    }

    /// A full decoder pass over `tokens` that also returns, for each (layer, head) of `heads`, the raw
    /// cross-attention scores q·k/√d [tokens, frames] (for word timestamps).
    package func crossAttentionScores(audio: Tensor, tokens: [Int], heads: [[Int]]) -> (scores: [Tensor], logits: Tensor) {
        var state = startDecoding(audio)
        var x = decoder.tokens.embedding(tokens) + decoder.positions.slice(axis: 0, 0..<tokens.count)
        x = x.reshaped([1, tokens.count, config.dModel])
        var scores: [Tensor] = []
        let frames = audio.shape[1]
        for (i, layer) in decoder.layers.enumerated() {
            let n = layer.selfAttentionNorm(x)
            state.selfCaches[i].append(keys: layer.selfAttention.key(n), values: layer.selfAttention.value(n))
            x = x + layer.selfAttention.out(state.selfCaches[i].attend(query: layer.selfAttention.query(n), heads: layer.selfAttention.heads))
            let c = layer.encoderAttentionNorm(x)
            let q = layer.encoderAttention.query(c)
            let headWidth = config.dModel / layer.encoderAttention.heads
            for pair in heads where pair.count == 2 && pair[0] == i {
                let h = pair[1]
                let qh = q.reshaped([tokens.count, config.dModel]).slice(axis: 1, (h * headWidth)..<((h + 1) * headWidth))
                let kh = state.crossKeys[i].reshaped([frames, config.dModel]).slice(axis: 1, (h * headWidth)..<((h + 1) * headWidth))
                scores.append(MatMul.matmul(qh, kh, transposeB: true) * (1 / Float(headWidth).squareRoot()))
            }
            x = x + layer.encoderAttention.out(Attention.attend(query: q, key: state.crossKeys[i], value: state.crossValues[i],
                                                               heads: layer.encoderAttention.heads))
            x = x + layer.fc2(layer.fc1(layer.finalNorm(x)).applying(.gelu))
        }
        let h = decoder.layerNorm(x).reshaped([tokens.count, config.dModel])
        return (scores, decoder.projection(h))
    }
}
