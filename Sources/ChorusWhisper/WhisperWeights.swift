import ChorusTensor
import Foundation

/// Where a Whisper model's weights come from: a Hugging Face folder (safetensors, canonical names), or a
/// CTranslate2 model.bin whose names are mapped to the Hugging Face ones here, splitting its fused
/// attention projections, so the model code knows one naming only.
package enum WhisperWeights {
    static func open(folder: String) throws -> (WeightSource, WhisperConfig) {
        let fm = FileManager.default
        let url = URL(fileURLWithPath: folder)
        if fm.fileExists(atPath: url.appendingPathComponent("model.bin").path) {
            let model = try CTranslate2Model(path: url.appendingPathComponent("model.bin").path)
            guard model.spec == "WhisperSpec" else {
                throw WeightFileError("model.bin", "is a CTranslate2 \(model.spec), not a Whisper model")
            }
            let source = CTranslate2Whisper(model)
            return (source, try WhisperConfig(ctranslate2: model, source: source))
        }
        let checkpoint = try SafeTensorsCheckpoint(folder: folder)
        let config = try JSONConfig.load(WhisperConfig.self, from: url.appendingPathComponent("config.json").path)
        return (checkpoint, config)
    }
}

/// CTranslate2 Whisper variables under Hugging Face names.
package struct CTranslate2Whisper: WeightSource {
    package let model: CTranslate2Model

    package init(_ model: CTranslate2Model) {
        self.model = model
    }

    package var names: [String] { [] }  // answered by name; see tensor(_:)

    package func tensor(_ name: String) throws -> Tensor {
        var parts = name.split(separator: ".").map(String.init)
        if parts.first == "model" { parts.removeFirst() }
        let key = parts.joined(separator: ".")
        switch key {
        case "proj_out.weight": return try model.tensor("decoder/projection/weight")
        case "encoder.embed_positions.weight": return try model.tensor("encoder/position_encodings/encodings")
        case "decoder.embed_positions.weight": return try model.tensor("decoder/position_encodings/encodings")
        case "decoder.embed_tokens.weight": return try model.tensor("decoder/embeddings/weight")
        default: break
        }
        // side.layers.N.module.leaf...
        guard parts.count >= 3 else { return try model.tensor(Self.leafPath(parts)) }
        if parts[1] != "layers" { return try model.tensor(Self.leafPath(parts)) }
        let side = parts[0], layer = "\(side)/layer_\(parts[2])"
        let module = parts[3], rest = Array(parts[4...])
        func norm(_ scope: String) throws -> Tensor {
            try model.tensor("\(layer)/\(scope)/layer_norm/\(rest.last == "weight" ? "gamma" : "beta")")
        }
        switch module {
        case "self_attn_layer_norm": return try norm("self_attention")
        case "encoder_attn_layer_norm": return try norm("attention")
        case "final_layer_norm": return try norm("ffn")
        case "fc1": return try model.tensor("\(layer)/ffn/linear_0/\(rest[0])")
        case "fc2": return try model.tensor("\(layer)/ffn/linear_1/\(rest[0])")
        case "self_attn":
            let (projection, leaf) = (rest[0], rest[1])
            if projection == "out_proj" { return try model.tensor("\(layer)/self_attention/linear_1/\(leaf)") }
            let fused = try model.tensor("\(layer)/self_attention/linear_0/\(leaf)")
            return Self.slice(fused, index: ["q_proj": 0, "k_proj": 1, "v_proj": 2][projection]!, of: 3)
        case "encoder_attn":
            let (projection, leaf) = (rest[0], rest[1])
            switch projection {
            case "q_proj": return try model.tensor("\(layer)/attention/linear_0/\(leaf)")
            case "out_proj": return try model.tensor("\(layer)/attention/linear_2/\(leaf)")
            default:
                let fused = try model.tensor("\(layer)/attention/linear_1/\(leaf)")
                return Self.slice(fused, index: projection == "k_proj" ? 0 : 1, of: 2)
            }
        default:
            throw WeightFileError("model.bin", "no CTranslate2 variable for '\(name)'")
        }
    }

    /// "encoder.conv1.weight" → "encoder/conv1/weight"; layer norms use gamma/beta.
    private static func leafPath(_ parts: [String]) -> String {
        var path = parts
        if path.count >= 2 && path[path.count - 2] == "layer_norm" {
            path[path.count - 1] = path.last == "weight" ? "gamma" : "beta"
        }
        return path.joined(separator: "/")
    }

    /// Part `index` of `count` equal parts along the first dimension.
    private static func slice(_ fused: Tensor, index: Int, of count: Int) -> Tensor {
        let rows = fused.shape[0] / count
        return fused.slice(axis: 0, (index * rows)..<((index + 1) * rows))
    }
}
