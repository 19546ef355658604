import ChorusAPI
import ChorusLLM
import ChorusMedia
import ChorusServiceKit
import ChorusWire
import Foundation

/// A streamed piece of a completion: the token and the text it completes.
struct StreamedToken: Sendable {
    let id: Int
    let text: String
}

/// What every chat model of the service shares: the limits on a request, the wire's generation options
/// checked against them, and running a generation on a compute thread under the service's concurrency
/// limit while its tokens stream back.
struct ChatLimits: Sendable {
    var maxImages: Int
    var defaultMaxNewTokens: Int
    var maxNewTokens: Int
    var maxStops: Int
    var image: ImageLimits
}

struct GenerationSettings {
    var maxNewTokens: Int
    var sampling: SamplingOptions
    var stop: [String]

    init(_ options: GenerationOptions?, limits: ChatLimits) throws {
        let o = options ?? GenerationOptions()
        guard o.maxNewTokens <= limits.maxNewTokens else {
            throw WireStatus(.invalidArgument, "max_new_tokens \(o.maxNewTokens) is above the limit of \(limits.maxNewTokens)")
        }
        guard o.temperature.isFinite, (0...5).contains(o.temperature) else {
            throw WireStatus(.invalidArgument, "temperature \(o.temperature) is outside 0 ... 5")
        }
        guard o.topP.isFinite, (0...1).contains(o.topP) else { throw WireStatus(.invalidArgument, "top_p \(o.topP) is outside 0 ... 1") }
        guard o.repetitionPenalty.isFinite, o.repetitionPenalty >= 0 else {
            throw WireStatus(.invalidArgument, "repetition_penalty \(o.repetitionPenalty) must be positive (1 = off)")
        }
        guard o.stop.count <= limits.maxStops else {
            throw WireStatus(.invalidArgument, "\(o.stop.count) stop strings; the limit is \(limits.maxStops)")
        }
        // Zeros are the wire's "unset": the defaults are greedy, no top-p, no penalty.
        maxNewTokens = o.maxNewTokens == 0 ? limits.defaultMaxNewTokens : Int(truncatingIfNeeded: o.maxNewTokens)
        sampling = SamplingOptions(temperature: o.temperature, topP: o.topP == 0 ? 1 : o.topP, topK: Int(truncatingIfNeeded: o.topK),
                                   repetitionPenalty: o.repetitionPenalty == 0 ? 1 : o.repetitionPenalty, seed: o.seed)
        stop = o.stop
    }
}

/// A model the Chat, Caption and Ask methods can run.
protocol ChatModel: Sendable {
    /// Whether its conversations may hold images.
    var readsImages: Bool { get }
    /// A reply to the conversation, through the model's chat template.
    func chat(_ messages: [ChatTurn], options: GenerationOptions?,
              onToken: @escaping @Sendable (StreamedToken) async throws -> Void) async throws -> Completion
    /// The text continued as it is, no template (a Chat request with `prompt`: /v1/completions).
    func complete(_ prompt: String, options: GenerationOptions?,
                  onToken: @escaping @Sendable (StreamedToken) async throws -> Void) async throws -> Completion
}

enum StreamedGeneration {
    /// Runs `generate` (given a cancellation check and a token callback) on the compute queue under the
    /// limiter, passing each token to `onToken` as it comes; the caller going away cancels the work.
    static func run(limiter: ConcurrencyLimiter, compute: ComputeQueue,
                    onToken: @escaping @Sendable (StreamedToken) async throws -> Void,
                    generate: @escaping @Sendable (_ isCancelled: () -> Bool, _ emit: (Int, String) -> Void) throws -> Completion) async throws -> Completion {
        let (tokens, continuation) = AsyncStream<StreamedToken>.makeStream()
        let work = Task {
            defer { continuation.finish() }
            return try await limiter.run {
                try await compute.run { flag -> Completion in
                    try generate({ flag.isCancelled }, { id, text in continuation.yield(StreamedToken(id: id, text: text)) })
                }
            }
        }
        do {
            for await token in tokens { try await onToken(token) }
        } catch {
            work.cancel()
            throw error
        }
        return try await withTaskCancellationHandler { try await work.value } onCancel: { work.cancel() }
    }
}

extension Completion {
    var usage: Usage {
        Usage(promptTokens: UInt32(clamping: promptTokens), completionTokens: UInt32(clamping: tokenIDs.count), cachedPromptTokens: UInt32(clamping: reusedPromptTokens))
    }
}
