import ChorusAPI
import ChorusLLM
import ChorusLLaVA
import ChorusMedia
import ChorusServiceKit
import ChorusWire
import Foundation

/// A LLaVA model as the vision service serves it: turns wire conversations into prompts and images, and runs generation on
/// a compute thread under the service's concurrency limit, streaming tokens back as they come.
final class ServedLLaVA: ChatModel {
    let generator: LlavaGenerator
    private let limiter: ConcurrencyLimiter
    private let compute: ComputeQueue
    let limits: ChatLimits
    var readsImages: Bool { true }

    init(generator: LlavaGenerator, limiter: ConcurrencyLimiter, compute: ComputeQueue, limits: ChatLimits) {
        self.generator = generator
        self.limiter = limiter
        self.compute = compute
        self.limits = limits
    }

    var pipeline: LlavaPipeline { generator.pipeline }

    /// Runs a conversation, calling `onToken` as tokens arrive, and returns the whole completion.
    func chat(_ messages: [ChatTurn], options: GenerationOptions?,
              onToken: @escaping @Sendable (StreamedToken) async throws -> Void) async throws -> Completion {
        let (conversation, encodedImages) = try Self.conversation(messages)
        return try await generate(encodedImages, options: options, onToken: onToken) { pipeline in
            try pipeline.promptIDs(try pipeline.promptText(conversation))
        }
    }

    /// The text continued as it is; an `<image>` in it has no image to stand for, and is refused.
    func complete(_ prompt: String, options: GenerationOptions?,
                  onToken: @escaping @Sendable (StreamedToken) async throws -> Void) async throws -> Completion {
        try await generate([], options: options, onToken: onToken) { pipeline in try pipeline.promptIDs(prompt) }
    }

    private func generate(_ encodedImages: [[UInt8]], options: GenerationOptions?, onToken: @escaping @Sendable (StreamedToken) async throws -> Void,
                          promptIDs: @escaping @Sendable (LlavaPipeline) throws -> [Int]) async throws -> Completion {
        guard encodedImages.count <= limits.maxImages else {
            throw WireStatus(.invalidArgument, "\(encodedImages.count) images in one conversation; the limit is \(limits.maxImages)")
        }
        let settings = try GenerationSettings(options, limits: limits)
        let pipeline = self.pipeline, generator = self.generator, imageLimits = limits.image
        return try await StreamedGeneration.run(limiter: limiter, compute: compute, onToken: onToken) { isCancelled, emit in
            let images = try encodedImages.enumerated().map { i, bytes in
                do {
                    return try pipeline.pixelValues(ImageCodec.decode(bytes, limits: imageLimits))
                } catch let error as MediaError {
                    throw WireStatus(.invalidArgument, encodedImages.count == 1 ? "image: \(error)" : "image \(i): \(error)")
                }
            }
            do {
                let request = GenerationRequest(promptIDs: try promptIDs(pipeline), images: images,
                                                maxNewTokens: settings.maxNewTokens, sampling: settings.sampling, stop: settings.stop)
                return try generator.generate(request, isCancelled: isCancelled, onToken: emit)
            } catch let error as LlavaRequestError {
                throw WireStatus(.invalidArgument, error.description)
            }
        }
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
