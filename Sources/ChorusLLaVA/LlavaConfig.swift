import ChorusCLIP
import ChorusLLM
import ChorusTensor
import Foundation

/// A Hugging Face `LlavaConfig`: the CLIP vision tower, which of its layers feed the projector, and
/// the Llama text model.
public struct LlavaConfig: Decodable, Sendable {
    public var vision = CLIPConfig.Vision()
    public var text = LlamaConfig()
    public var imageTokenIndex = 32000
    /// transformers' `hidden_states` indices (negative from the end); several are concatenated.
    public var visionFeatureLayers = [-2]
    /// "default" drops the class token, "full" keeps it.
    public var visionFeatureSelectStrategy = "default"
    public var projectorHiddenAct = "gelu"
    public var multimodalProjectorBias = true
    public var tieWordEmbeddings = false

    enum CodingKeys: String, CodingKey {
        case vision = "vision_config", text = "text_config", imageTokenIndex = "image_token_index", imageTokenId = "image_token_id"
        case visionFeatureLayer = "vision_feature_layer", visionFeatureSelectStrategy = "vision_feature_select_strategy"
        case projectorHiddenAct = "projector_hidden_act", multimodalProjectorBias = "multimodal_projector_bias"
        case tieWordEmbeddings = "tie_word_embeddings"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        vision = try c.decodeIfPresent(CLIPConfig.Vision.self, forKey: .vision) ?? vision
        text = try c.decodeIfPresent(LlamaConfig.self, forKey: .text) ?? text
        imageTokenIndex = try c.decodeIfPresent(Int.self, forKey: .imageTokenIndex)
            ?? c.decodeIfPresent(Int.self, forKey: .imageTokenId) ?? imageTokenIndex
        if let layers = try? c.decodeIfPresent([Int].self, forKey: .visionFeatureLayer) {
            visionFeatureLayers = layers
        } else if let layer = try c.decodeIfPresent(Int.self, forKey: .visionFeatureLayer) {
            visionFeatureLayers = [layer]
        }
        try c.read(.visionFeatureSelectStrategy, into: &visionFeatureSelectStrategy)
        try c.read(.projectorHiddenAct, into: &projectorHiddenAct)
        try c.read(.multimodalProjectorBias, into: &multimodalProjectorBias)
        try c.read(.tieWordEmbeddings, into: &tieWordEmbeddings)
        text.tieWordEmbeddings = text.tieWordEmbeddings || tieWordEmbeddings
    }

    /// Image tokens per image: the patches, plus the class token under "full".
    public var imageTokens: Int {
        let side = vision.imageSize / vision.patchSize
        return side * side + (visionFeatureSelectStrategy == "full" ? 1 : 0)
    }
}
