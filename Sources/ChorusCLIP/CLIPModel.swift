import ChorusMedia
import ChorusTensor
import ChorusText
import Foundation

/// transformers' `CLIPModel`: both towers, their projections into the shared embedding space, and the
/// learned temperature. Loaded from a Hugging Face folder (config.json, model.safetensors, tokenizer,
/// preprocessor_config.json).
public final class CLIPModel: Sendable {
    public let config: CLIPConfig
    public let textModel: CLIPTextTransformer
    public let visionModel: CLIPVisionTransformer
    let textProjection: Linear
    let visualProjection: Linear
    /// exp(logit_scale): the factor on cosine similarities that makes them logits.
    public let logitScale: Float

    public init(weights w: WeightSource, config: CLIPConfig, file: String = "model.safetensors") throws {
        self.config = config
        textModel = try CLIPTextTransformer(w, config: config.text, file: file)
        visionModel = try CLIPVisionTransformer(w, config: config.vision, file: file)
        textProjection = try Linear(w, "text_projection", bias: false)
        visualProjection = try Linear(w, "visual_projection", bias: false)
        logitScale = expf(try w.tensor("logit_scale").storage.first ?? 0)
    }

    public var dimension: Int { config.projectionDim }

    /// pixel_values [B, 3, S, S] → L2-normalised image embeddings [B, projection].
    public func imageEmbeddings(_ pixels: Tensor) -> Tensor {
        visualProjection(visionModel(pixels).pooled).l2NormalizedRows()
    }

    /// Padded ids and masks → L2-normalised text embeddings [B, projection].
    public func textEmbeddings(ids: [[Int]], attentionMask: [[Int]]? = nil) -> Tensor {
        textProjection(textModel(ids: ids, attentionMask: attentionMask).pooled).l2NormalizedRows()
    }
}

/// A CLIP model with what turns requests into its inputs: the tokenizer and the image preprocessor.
public final class CLIPPipeline: Sendable {
    public let model: CLIPModel
    public let tokenizer: any Tokenizer
    public let preprocessor: CLIPImagePreprocessor

    public init(model: CLIPModel, tokenizer: any Tokenizer, preprocessor: CLIPImagePreprocessor) {
        self.model = model
        self.tokenizer = tokenizer
        self.preprocessor = preprocessor
    }

    /// A Hugging Face CLIPModel folder.
    public convenience init(folder: String) throws {
        let url = URL(fileURLWithPath: folder)
        let config = try JSONConfig.load(CLIPConfig.self, from: url.appendingPathComponent("config.json").path)
        let model = try CLIPModel(weights: SafeTensorsCheckpoint(folder: folder), config: config)
        let tokenizer = try TokenizerLoader.load(folder: url)
        var processor = CLIPImageProcessorConfig()
        for name in ["preprocessor_config.json", "processor_config.json"] {
            if let data = FileManager.default.contents(atPath: url.appendingPathComponent(name).path) {
                processor = try CLIPImageProcessorConfig.load(json: data)
                break
            }
        }
        guard processor.cropSize.width ?? config.vision.imageSize == config.vision.imageSize else {
            throw WeightFileError(folder, "the preprocessor crops to \(processor.cropSize.width ?? 0) pixels but the model takes \(config.vision.imageSize)")
        }
        self.init(model: model, tokenizer: tokenizer, preprocessor: CLIPImagePreprocessor(config: processor))
    }

    /// Token ids for each text, truncated to the model's context with the end-of-text token kept,
    /// padded with the pad token to the longest, and their attention masks.
    public func tokenize(_ texts: [String]) -> (ids: [[Int]], mask: [[Int]]) {
        let limit = model.textModel.maxTokens
        let encoded = texts.map { text -> [Int] in
            let ids = tokenizer.encode(text)
            guard ids.count > limit, let last = ids.last else { return ids }
            return Array(ids.prefix(limit - 1)) + [last]
        }
        let length = encoded.map(\.count).max() ?? 0
        // transformers' CLIP tokenizer pads with <|endoftext|>, the last id of every encoded text.
        let pad = encoded.first?.last ?? model.config.text.padTokenId
        return (encoded.map { $0 + Array(repeating: pad, count: length - $0.count) },
                encoded.map { Array(repeating: 1, count: $0.count) + Array(repeating: 0, count: length - $0.count) })
    }

    /// L2-normalised embeddings [texts, projection] and the token count.
    public func embed(texts: [String]) -> (embeddings: Tensor, tokens: Int) {
        let (ids, mask) = tokenize(texts)
        return (model.textEmbeddings(ids: ids, attentionMask: mask), mask.reduce(0) { $0 + $1.reduce(0, +) })
    }

    /// Decoded images → pixel_values [B, 3, S, S].
    public func pixelValues(_ images: [Image]) throws -> Tensor {
        let side = model.config.vision.imageSize
        var values: [Float] = []
        values.reserveCapacity(images.count * 3 * side * side)
        for image in images {
            let (planes, width, height) = try preprocessor.pixelValues(image)
            guard width == side && height == side else {
                throw MediaError.invalidImage("preprocessing gave \(width)×\(height), the model takes \(side)×\(side)")
            }
            values += planes
        }
        return Tensor(shape: [images.count, 3, side, side], storage: values)
    }

    /// L2-normalised embeddings [images, projection].
    public func embed(images: [Image]) throws -> Tensor {
        model.imageEmbeddings(try pixelValues(images))
    }
}

extension Tensor {
    /// Each row divided by its L2 norm (rows of zeros stay zero).
    public func l2NormalizedRows() -> Tensor {
        let width = shape.last ?? 1
        var out = self
        out.storage.withUnsafeMutableBufferPointer { p in
            for row in 0..<(count / Swift.max(width, 1)) {
                var sum: Float = 0
                for i in 0..<width { sum += p[row * width + i] * p[row * width + i] }
                guard sum > 0 else { continue }
                let scale = 1 / sum.squareRoot()
                for i in 0..<width { p[row * width + i] *= scale }
            }
        }
        return out
    }
}
