import ChorusTensor
import Foundation

/// The dimensions of a Whisper model, with the Hugging Face config.json names.
package struct WhisperConfig: Decodable, Sendable {
    package var dModel: Int
    package var encoderLayers: Int
    package var decoderLayers: Int
    package var encoderHeads: Int
    package var decoderHeads: Int
    package var melBins: Int
    package var vocabularySize: Int
    package var maxTargetPositions: Int
    /// [layer, head] pairs whose cross-attention follows the audio (word timestamps).
    package var alignmentHeads: [[Int]]?
    package var suppressTokens: [Int]?
    package var beginSuppressTokens: [Int]?

    package enum CodingKeys: String, CodingKey {
        case dModel = "d_model", encoderLayers = "encoder_layers", decoderLayers = "decoder_layers"
        case encoderHeads = "encoder_attention_heads", decoderHeads = "decoder_attention_heads"
        case melBins = "num_mel_bins", vocabularySize = "vocab_size", maxTargetPositions = "max_target_positions"
        case alignmentHeads = "alignment_heads", suppressTokens = "suppress_tokens", beginSuppressTokens = "begin_suppress_tokens"
    }

    /// A CTranslate2 model carries its dimensions in its variables, and decoding settings in config.json.
    package init(ctranslate2 model: CTranslate2Model, source: WeightSource) throws {
        let embeddings = try model.variable("decoder/embeddings/weight").shape
        dModel = embeddings[1]
        vocabularySize = embeddings[0]
        melBins = try model.variable("encoder/conv1/weight").shape[1]
        encoderHeads = try model.scalar("encoder/num_heads")
        decoderHeads = try model.scalar("decoder/num_heads")
        encoderLayers = Set(model.variables.keys.compactMap { Self.layerIndex($0, side: "encoder") }).count
        decoderLayers = Set(model.variables.keys.compactMap { Self.layerIndex($0, side: "decoder") }).count
        maxTargetPositions = try model.variable("decoder/position_encodings/encodings").shape[0]
        let folder = (model.path as NSString).deletingLastPathComponent
        let settings = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder).appendingPathComponent("config.json")))) as? [String: Any] ?? [:]
        alignmentHeads = settings["alignment_heads"] as? [[Int]]
        suppressTokens = settings["suppress_ids"] as? [Int]
        beginSuppressTokens = settings["suppress_ids_begin"] as? [Int]
    }

    private static func layerIndex(_ name: String, side: String) -> Int? {
        guard name.hasPrefix("\(side)/layer_") else { return nil }
        return Int(name.dropFirst("\(side)/layer_".count).prefix { $0.isNumber })
    }
}
