import ChorusLLM
import ChorusTensor
import Foundation

/// What to generate from: the expanded prompt ids, the images in the order of their tokens (pixel
/// values from `LlavaPipeline.pixelValues`) and when to stop.
public struct GenerationRequest: Sendable {
    public var promptIDs: [Int]
    public var images: [[Float]]
    public var maxNewTokens: Int
    public var sampling: SamplingOptions
    public var stop: [String]

    public init(promptIDs: [Int], images: [[Float]], maxNewTokens: Int = 256, sampling: SamplingOptions = .init(), stop: [String] = []) {
        self.promptIDs = promptIDs
        self.images = images
        self.maxNewTokens = maxNewTokens
        self.sampling = sampling
        self.stop = stop
    }
}

/// Runs LLaVA generation: image features, prefill (continuing a cached prefix where one matches),
/// then one token at a time, streaming text as it becomes whole.
public final class LlavaGenerator: Sendable {
    public let pipeline: LlavaPipeline
    /// The language half's decoding, shared with the text-only models.
    let text: TextGenerator

    /// `cachedConversations`: how many finished conversations keep their KV cache for a next turn.
    public init(pipeline: LlavaPipeline, cachedConversations: Int = 4) {
        self.pipeline = pipeline
        text = TextGenerator(model: pipeline.model.languageModel, tokenizer: pipeline.tokenizer, eosTokenIds: pipeline.eosTokenIds,
                             contextLength: pipeline.model.config.text.maxPositionEmbeddings, cachedConversations: cachedConversations)
    }

    var model: LlavaModel { pipeline.model }
    public var contextLength: Int { model.config.text.maxPositionEmbeddings }

    /// Checks the request against the model: the images match the image tokens, the prompt fits.
    public func validate(_ request: GenerationRequest) throws {
        let imageTokens = request.promptIDs.filter { $0 == model.config.imageTokenIndex }.count
        guard imageTokens == request.images.count * model.imageTokens else {
            throw LlavaRequestError("the prompt has \(imageTokens / max(model.imageTokens, 1)) image placeholders but \(request.images.count) images were given")
        }
        let side = model.config.vision.imageSize
        if let bad = request.images.firstIndex(where: { $0.count != 3 * side * side }) {
            throw LlavaRequestError("image \(bad) has \(request.images[bad].count) pixel values, the vision tower takes 3×\(side)×\(side)")
        }
        guard request.promptIDs.count < contextLength else {
            throw LlavaRequestError("the prompt is \(request.promptIDs.count) tokens (\(imageTokens) of them image tokens); the model's context is \(contextLength)")
        }
    }

    /// Generates, calling `onToken` with each id and the text it completes (often empty mid-character
    /// or while a stop string may be forming). `isCancelled` is polled before every token.
    public func generate(_ request: GenerationRequest, isCancelled: () -> Bool = { false },
                         onToken: (Int, String) -> Void = { _, _ in }) throws -> Completion {
        try validate(request)
        let ids = request.promptIDs
        return text.run(ids: ids, keys: positionKeys(ids, images: request.images), maxNewTokens: request.maxNewTokens,
                        sampling: request.sampling, stop: request.stop, isCancelled: isCancelled, onToken: onToken) { reused in
            model.embed(ids: Array(ids[reused...]), imageFeatures: imageFeatures(request, from: reused))
        }
    }

    /// Features of the images whose tokens lie at or after `start`, as rows for those positions.
    func imageFeatures(_ request: GenerationRequest, from start: Int) -> Tensor? {
        let positions = request.promptIDs.indices.filter { request.promptIDs[$0] == model.config.imageTokenIndex }
        let pending = positions.filter { $0 >= start }.count
        guard pending > 0 else { return nil }
        let perImage = model.imageTokens, side = model.config.vision.imageSize
        // Images are whole runs of tokens: the pending rows are the tail of the last images' features.
        let images = Array(request.images.suffix((pending + perImage - 1) / perImage))
        let features = model.imageFeatures(Tensor(shape: [images.count, 3, side, side], storage: images.flatMap { $0 }))
        let h = features.shape[1]
        return Tensor(shape: [pending, h], storage: Array(features.storage.suffix(pending * h)))
    }

    /// What each position holds, for matching a cached prefix: the token id, or for image tokens a
    /// negative digest of the image's pixels (the same placeholder id stands for different images).
    func positionKeys(_ ids: [Int], images: [[Float]]) -> [Int64] {
        let digests = images.map { pixels -> Int64 in
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for value in pixels { hash = (hash ^ UInt64(value.bitPattern)) &* 0x100_0000_01b3 }
            return -Int64(hash >> 1) - 1
        }
        var imageToken = 0
        return ids.map { id in
            guard id == model.config.imageTokenIndex else { return Int64(id) }
            defer { imageToken += 1 }
            return digests[imageToken / model.imageTokens]
        }
    }
}
