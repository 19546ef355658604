import ChorusCLIP
import ChorusLLM
import ChorusTensor
import Foundation

/// transformers' `LlavaForConditionalGeneration`: a CLIP vision tower whose chosen hidden layer is
/// projected into the Llama embedding space and put in place of the `<image>` tokens.
public final class LlavaModel: Sendable {
    public let config: LlavaConfig
    let visionTower: CLIPVisionTransformer
    let multiModalProjector: LlavaMultiModalProjector
    public let languageModel: LlamaModel

    /// Accepts the llava-hf layout (`vision_tower.vision_model.*`, `language_model.model.*`,
    /// `language_model.lm_head`), transformers 5's (`model.vision_tower.*`, `model.language_model.*`,
    /// `lm_head`) and the mixtures between them: each part is found by the name of one of its tensors.
    public init(weights w: WeightSource, config: LlavaConfig, file: String = "model.safetensors") throws {
        let names = w.names
        func prefix(of suffix: String, _ part: String) throws -> String {
            guard let name = names.first(where: { $0 == suffix || $0.hasSuffix("." + suffix) }) else {
                throw WeightFileError(file, "has no \(part) (no tensor named *\(suffix))")
            }
            return name == suffix ? "" : String(name.dropLast(suffix.count + 1))
        }
        func join(_ a: String, _ b: String) -> String { a.isEmpty ? b : a + "." + b }
        let vision = try prefix(of: "embeddings.patch_embedding.weight", "vision tower")
        let projector = join(try prefix(of: "multi_modal_projector.linear_1.weight", "multi_modal_projector"), "multi_modal_projector")
        let language = try prefix(of: "embed_tokens.weight", "language model")
        let lmHead = ["lm_head.weight", "language_model.lm_head.weight", "model.lm_head.weight"].first(where: names.contains)
        guard lmHead != nil || config.text.tieWordEmbeddings else {
            throw WeightFileError(file, "has no lm_head.weight and the config does not tie it to the embeddings")
        }
        self.config = config
        visionTower = try CLIPVisionTransformer(w, vision, config: config.vision, file: file)
        multiModalProjector = try LlavaMultiModalProjector(w, projector, config: config)
        languageModel = try LlamaModel(w, prefix: language, lmHead: lmHead, config: config.text)
        for layer in config.visionFeatureLayers where !(-(visionTower.layerCount + 1)...visionTower.layerCount).contains(layer) {
            throw WeightFileError("config.json", "vision_feature_layer \(layer) is outside the tower's \(visionTower.layerCount + 1) hidden states")
        }
        guard ["default", "full"].contains(config.visionFeatureSelectStrategy) else {
            throw WeightFileError("config.json", "vision_feature_select_strategy '\(config.visionFeatureSelectStrategy)' is neither default nor full")
        }
    }

    public var imageTokens: Int { config.imageTokens }

    /// pixel_values [N, 3, S, S] → features [N · imageTokens, hidden], image after image.
    public func imageFeatures(_ pixels: Tensor) -> Tensor {
        let images = pixels.shape[0], width = visionTower.width
        let states = config.visionFeatureLayers.map { layer in
            visionTower.hiddenState(pixels, layer: layer < 0 ? visionTower.layerCount + 1 + layer : layer)
        }
        let tokens = states[0].shape[1], skip = config.visionFeatureSelectStrategy == "default" ? 1 : 0
        let kept = tokens - skip, features = width * states.count
        // Several layers are concatenated along the features, as transformers' torch.cat(dim=-1).
        var selected = [Float](repeating: 0, count: images * kept * features)
        for (s, state) in states.enumerated() {
            state.storage.withUnsafeBufferPointer { src in
                selected.withUnsafeMutableBufferPointer { dst in
                    for n in 0..<images {
                        for t in 0..<kept {
                            (dst.baseAddress! + (n * kept + t) * features + s * width)
                                .update(from: src.baseAddress! + (n * tokens + t + skip) * width, count: width)
                        }
                    }
                }
            }
        }
        return multiModalProjector(Tensor(shape: [images * kept, features], storage: selected))
    }

    /// Token embeddings with the rows of image tokens replaced, in order, by `imageFeatures` rows.
    public func embed(ids: [Int], imageFeatures: Tensor?) -> Tensor {
        var embeddings = languageModel.embed(ids.map { $0 == config.imageTokenIndex ? 0 : $0 })
        let h = languageModel.hiddenSize
        let positions = ids.indices.filter { ids[$0] == config.imageTokenIndex }
        guard !positions.isEmpty else { return embeddings }
        guard let features = imageFeatures, features.shape == [positions.count, h] else {
            preconditionFailure("\(positions.count) image tokens but image features \(imageFeatures?.shape ?? [])")
        }
        features.storage.withUnsafeBufferPointer { src in
            embeddings.storage.withUnsafeMutableBufferPointer { dst in
                for (row, t) in positions.enumerated() {
                    (dst.baseAddress! + t * h).update(from: src.baseAddress! + row * h, count: h)
                }
            }
        }
        return embeddings
    }
}
