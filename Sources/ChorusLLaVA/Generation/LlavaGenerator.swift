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

public struct Completion: Sendable, Equatable {
    public enum FinishReason: String, Sendable {
        /// EOS or a stop string.
        case stop
        /// max_new_tokens or the end of the model's context.
        case length
        case cancelled
    }

    public var text: String
    /// The end of `text` no token released (a character still incomplete, a held-back beginning of
    /// a stop string): streams send it with their closing event.
    public var tail: String
    public var tokenIDs: [Int]
    public var finishReason: FinishReason
    public var promptTokens: Int
    /// Prompt positions taken from an earlier turn's cache instead of computed.
    public var reusedPromptTokens: Int
}

/// Runs LLaVA generation: image features, prefill (continuing a cached prefix where one matches),
/// then one token at a time, streaming text as it becomes whole.
public final class LlavaGenerator: Sendable {
    public let pipeline: LlavaPipeline
    let prefixes: PrefixCache

    /// `cachedConversations`: how many finished conversations keep their KV cache for a next turn.
    public init(pipeline: LlavaPipeline, cachedConversations: Int = 4) {
        self.pipeline = pipeline
        prefixes = PrefixCache(capacity: cachedConversations)
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
        var keys = positionKeys(ids, images: request.images)
        var (cache, reused) = prefixes.take(longestPrefixOf: keys) ?? (model.languageModel.newCache(), 0)
        // The last prompt position is always computed: its logits choose the first token.
        reused = min(reused, ids.count - 1)
        cache.truncate(to: reused)

        let lm = model.languageModel
        var hidden = lm.forward(model.embed(ids: Array(ids[reused...]), imageFeatures: imageFeatures(request, from: reused)), cache: &cache)
        var stream = TextStream(tokenizer: pipeline.tokenizer, stops: request.stop)
        var sampler = Sampler(request.sampling)
        var generated: [Int] = []
        let budget = min(request.maxNewTokens, contextLength - ids.count)
        var finish = Completion.FinishReason.length
        while generated.count < budget {
            if isCancelled() { finish = .cancelled; break }
            let last = hidden.shape[0] - 1, h = lm.hiddenSize
            let logits = lm.logits(Tensor(shape: [1, h], storage: Array(hidden.storage[(last * h)..<((last + 1) * h)])))
            let token = sampler.next(logits.storage, history: ids + generated)
            if pipeline.eosTokenIds.contains(token) { finish = .stop; break }
            generated.append(token)
            let (piece, stopped) = stream.append(token)
            onToken(token, piece)
            if stopped { finish = .stop; break }
            guard generated.count < budget else { break }
            hidden = lm.forward(lm.embed([token]), cache: &cache)
            keys.append(Int64(token))
        }
        let tail = finish == .stop ? "" : stream.flush()
        prefixes.put(keys: Array(keys.prefix(cache.length)), cache: cache)
        return Completion(text: stream.released, tail: tail, tokenIDs: generated, finishReason: finish,
                          promptTokens: ids.count, reusedPromptTokens: reused)
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
