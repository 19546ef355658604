import ChorusAPI
import ChorusLLM
import ChorusLLaVA
import ChorusMedia
import ChorusServiceKit
import ChorusWire
import Foundation

/// A LLaVA model as the vision service serves it: turns wire conversations into prompts and images, and runs generation on
/// a compute thread under the service's concurrency limit, streaming tokens back as they come.
final class ServedLLaVA: Sendable {
    struct Limits: Sendable {
        var maxImages: Int
        var defaultMaxNewTokens: Int
        var maxNewTokens: Int
        var maxStops: Int
        var image: ImageLimits
    }

    let generator: LlavaGenerator
    private let limiter: ConcurrencyLimiter
    private let compute: ComputeQueue
    let limits: Limits

    init(generator: LlavaGenerator, limiter: ConcurrencyLimiter, compute: ComputeQueue, limits: Limits) {
        self.generator = generator
        self.limiter = limiter
        self.compute = compute
        self.limits = limits
    }

    var pipeline: LlavaPipeline { generator.pipeline }

    /// A streamed piece of the completion.
    struct Token: Sendable {
        let id: Int
        let text: String
    }

    /// Runs a conversation, calling `onToken` as tokens arrive, and returns the whole completion.
    func chat(_ messages: [ChatTurn], options: GenerationOptions?,
              onToken: @escaping @Sendable (Token) async throws -> Void) async throws -> Completion {
        let (conversation, encodedImages) = try Self.conversation(messages)
        guard encodedImages.count <= limits.maxImages else {
            throw WireStatus(.invalidArgument, "\(encodedImages.count) images in one conversation; the limit is \(limits.maxImages)")
        }
        let settings = try generationSettings(options)
        let pipeline = self.pipeline, generator = self.generator, imageLimits = limits.image
        let (tokens, continuation) = AsyncStream<Token>.makeStream()
        let work = Task {
            defer { continuation.finish() }
            return try await limiter.run {
                try await compute.run { flag -> Completion in
                    let images = try encodedImages.enumerated().map { i, bytes in
                        do {
                            return try pipeline.pixelValues(ImageCodec.decode(bytes, limits: imageLimits))
                        } catch let error as MediaError {
                            throw WireStatus(.invalidArgument, encodedImages.count == 1 ? "image: \(error)" : "image \(i): \(error)")
                        }
                    }
                    do {
                        let request = GenerationRequest(promptIDs: try pipeline.promptIDs(try pipeline.promptText(conversation)), images: images,
                                                        maxNewTokens: settings.maxNewTokens, sampling: settings.sampling, stop: settings.stop)
                        return try generator.generate(request, isCancelled: { flag.isCancelled },
                                                      onToken: { id, text in continuation.yield(Token(id: id, text: text)) })
                    } catch let error as LlavaRequestError {
                        throw WireStatus(.invalidArgument, error.description)
                    }
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

    struct Settings {
        var maxNewTokens: Int
        var sampling: SamplingOptions
        var stop: [String]
    }

    func generationSettings(_ options: GenerationOptions?) throws -> Settings {
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
        return Settings(maxNewTokens: o.maxNewTokens == 0 ? limits.defaultMaxNewTokens : Int(o.maxNewTokens),
                        sampling: SamplingOptions(temperature: o.temperature, topP: o.topP == 0 ? 1 : o.topP, topK: Int(o.topK),
                                                  repetitionPenalty: o.repetitionPenalty == 0 ? 1 : o.repetitionPenalty, seed: o.seed),
                        stop: o.stop)
    }

    /// Wire messages → the engine's messages and the encoded images in the order they appear.
    static func conversation(_ messages: [ChatTurn]) throws -> ([ChatMessage], [[UInt8]]) {
        guard !messages.isEmpty else { throw WireStatus(.invalidArgument, "the conversation has no messages") }
        var images: [[UInt8]] = []
        let converted = try messages.enumerated().map { i, message -> ChatMessage in
            guard ChatMessage.roles.contains(message.role) else {
                throw WireStatus(.invalidArgument, "message \(i) has role '\(message.role)'; roles are system, user and assistant")
            }
            var parts: [ChatMessage.Part] = []
            for part in message.parts {
                if let image = part.image {
                    guard !image.data.isEmpty else { throw WireStatus(.invalidArgument, "message \(i) has an image part without data") }
                    images.append([UInt8](image.data))
                    parts.append(.image)
                }
                if !part.text.isEmpty { parts.append(.text(part.text)) }
            }
            guard !parts.isEmpty else { throw WireStatus(.invalidArgument, "message \(i) has neither text nor images") }
            return ChatMessage(role: message.role, parts: parts)
        }
        guard converted.last?.role != "assistant" else {
            throw WireStatus(.invalidArgument, "the last message is the assistant's; end with a user message to get a reply")
        }
        return (converted, images)
    }
}

extension Completion {
    var usage: Usage {
        Usage(promptTokens: UInt32(promptTokens), completionTokens: UInt32(tokenIDs.count), cachedPromptTokens: UInt32(reusedPromptTokens))
    }
}
