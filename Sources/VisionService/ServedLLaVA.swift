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
        return try await generate(encodedImages.map { .encoded($0) }, maxImages: limits.maxImages, options: options, onToken: onToken) { pipeline in
            try pipeline.promptIDs(try pipeline.promptText(conversation))
        }
    }

    /// A conversation whose images are already decoded (a video's frames), up to `maxImages` of them.
    func chat(_ conversation: [ChatMessage], images: [Image], maxImages: Int, options: GenerationOptions?,
              onToken: @escaping @Sendable (StreamedToken) async throws -> Void) async throws -> Completion {
        try await generate(images.map { .decoded($0) }, maxImages: maxImages, options: options, onToken: onToken) { pipeline in
            try pipeline.promptIDs(try pipeline.promptText(conversation))
        }
    }

    /// The prompt's length in tokens, images expanded; nil when it cannot fit the context at all.
    func promptLength(_ conversation: [ChatMessage]) -> Int? {
        try? pipeline.promptIDs(try pipeline.promptText(conversation)).count
    }

    var contextLength: Int { pipeline.model.config.text.maxPositionEmbeddings }

    /// The text continued as it is; an `<image>` in it has no image to stand for, and is refused.
    func complete(_ prompt: String, options: GenerationOptions?,
                  onToken: @escaping @Sendable (StreamedToken) async throws -> Void) async throws -> Completion {
        try await generate([], maxImages: 0, options: options, onToken: onToken) { pipeline in try pipeline.promptIDs(prompt) }
    }

    /// An image of a conversation: bytes as a client sent them, or pixels the service decoded itself.
    enum ConversationImage: Sendable {
        case encoded([UInt8])
        case decoded(Image)
    }

    private func generate(_ givenImages: [ConversationImage], maxImages: Int, options: GenerationOptions?,
                          onToken: @escaping @Sendable (StreamedToken) async throws -> Void,
                          promptIDs: @escaping @Sendable (LlavaPipeline) throws -> [Int]) async throws -> Completion {
        guard givenImages.count <= maxImages else {
            throw WireStatus(.invalidArgument, "\(givenImages.count) images in one conversation; the limit is \(maxImages)")
        }
        let settings = try GenerationSettings(options, limits: limits)
        let pipeline = self.pipeline, generator = self.generator, imageLimits = limits.image
        return try await StreamedGeneration.run(limiter: limiter, compute: compute, onToken: onToken) { isCancelled, emit in
            let images = try givenImages.enumerated().map { i, image in
                do {
                    switch image {
                    case .encoded(let bytes): return try pipeline.pixelValues(ImageCodec.decode(bytes, limits: imageLimits))
                    case .decoded(let pixels): return try pipeline.pixelValues(pixels)
                    }
                } catch let error as MediaError {
                    throw WireStatus(.invalidArgument, givenImages.count == 1 ? "image: \(error)" : "image \(i): \(error)")
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
