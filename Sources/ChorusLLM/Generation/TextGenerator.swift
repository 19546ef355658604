import ChorusTensor
import ChorusText
import Foundation

/// What a generation made, and why it stopped.
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

/// A request a text-only model can fail on, in words a caller can act on (the prompt is too long ...).
public struct TextRequestError: Error, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}

/// Decoding over a Llama: continue a cached prefix where one matches, prefill the rest, then one token at
/// a time, streaming text as it becomes whole. LLaVA runs the same loop with image features in its prefill.
public final class TextGenerator: Sendable {
    public let model: any CausalLanguageModel
    public let tokenizer: any Tokenizer
    public let eosTokenIds: Set<Int>
    public let contextLength: Int
    let prefixes: PrefixCache

    /// `cachedConversations`: how many finished conversations keep their KV cache for a next turn.
    public init(model: any CausalLanguageModel, tokenizer: any Tokenizer, eosTokenIds: Set<Int>, contextLength: Int, cachedConversations: Int = 4) {
        self.model = model
        self.tokenizer = tokenizer
        self.eosTokenIds = eosTokenIds
        self.contextLength = contextLength
        prefixes = PrefixCache(capacity: cachedConversations)
    }

    /// Generates from a text prompt's ids.
    public func generate(promptIDs ids: [Int], maxNewTokens: Int, sampling: SamplingOptions = .init(), stop: [String] = [],
                         isCancelled: () -> Bool = { false }, onToken: (Int, String) -> Void = { _, _ in }) throws -> Completion {
        guard !ids.isEmpty else { throw TextRequestError("the prompt has no tokens") }
        guard ids.count < contextLength else {
            throw TextRequestError("the prompt is \(ids.count) tokens; the model's context is \(contextLength)")
        }
        if let bad = ids.first(where: { !(0..<model.vocabularySize).contains($0) }) {
            throw TextRequestError("token id \(bad) is outside the vocabulary of \(model.vocabularySize)")
        }
        return run(ids: ids, keys: ids.map(Int64.init), maxNewTokens: maxNewTokens, sampling: sampling, stop: stop,
                   isCancelled: isCancelled, onToken: onToken) { reused in model.embed(Array(ids[reused...])) }
    }

    /// The loop itself. `keys` say what each prompt position holds (for matching a cached prefix);
    /// `prefill(reused)` embeds the prompt from position `reused` on.
    public func run(ids: [Int], keys promptKeys: [Int64], maxNewTokens: Int, sampling: SamplingOptions, stop: [String],
                    isCancelled: () -> Bool, onToken: (Int, String) -> Void, prefill: (Int) -> Tensor) -> Completion {
        var keys = promptKeys
        var (cache, reused) = prefixes.take(longestPrefixOf: keys) ?? (model.newCache(), 0)
        // The last prompt position is always computed: its logits choose the first token. It goes through
        // alone, after the rest of the prompt, whether that rest was cached or not: a cached and a fresh
        // prompt then compute its logits in one order, so a seeded draw repeats (one token through the
        // decode kernels and a batch through the prompt kernels round differently).
        reused = min(reused, ids.count - 1)
        cache.truncate(to: reused)
        let embedded = prefill(reused)
        let rows = embedded.shape[0], width = embedded.count / max(1, rows)
        if rows > 1 {
            _ = model.forward(Tensor(shape: [rows - 1, width], storage: Array(embedded.storage[..<((rows - 1) * width)])), cache: &cache)
        }
        var hidden = model.forward(Tensor(shape: [1, width], storage: Array(embedded.storage[((rows - 1) * width)...])), cache: &cache)
        var stream = TextStream(tokenizer: tokenizer, stops: stop)
        var sampler = Sampler(sampling)
        var generated: [Int] = []
        let budget = min(maxNewTokens, contextLength - ids.count)
        var finish = Completion.FinishReason.length
        while generated.count < budget {
            if isCancelled() { finish = .cancelled; break }
            let last = hidden.shape[0] - 1, h = model.hiddenSize
            let logits = model.logits(Tensor(shape: [1, h], storage: Array(hidden.storage[(last * h)..<((last + 1) * h)])))
            let token = sampler.next(logits.storage, history: ids + generated)
            if eosTokenIds.contains(token) { finish = .stop; break }
            generated.append(token)
            let (piece, stopped) = stream.append(token)
            onToken(token, piece)
            if stopped { finish = .stop; break }
            guard generated.count < budget else { break }
            hidden = model.forward(model.embed([token]), cache: &cache)
            keys.append(Int64(token))
        }
        let tail = finish == .stop ? "" : stream.flush()
        prefixes.put(keys: Array(keys.prefix(cache.length)), cache: cache)
        return Completion(text: stream.released, tail: tail, tokenIDs: generated, finishReason: finish,
                          promptTokens: ids.count, reusedPromptTokens: reused)
    }
}
