import ChorusAPI
import ChorusLLM
import ChorusServiceKit
import ChorusWire
import Foundation

/// A text-only language model from a GGUF file (SmolLM2, Gemma 3 ...), as the vision service serves it: a wire
/// conversation through the file's chat template, generation with the shared decoding loop and prefix
/// cache, tokens streamed back.
final class ServedLanguageModel: ChatModel {
    let name: String
    let model: GGUFLanguageModel
    let generator: TextGenerator
    private let limiter: ConcurrencyLimiter
    private let compute: ComputeQueue
    let limits: ChatLimits
    var readsImages: Bool { false }

    init(name: String, model: GGUFLanguageModel, cachedConversations: Int, limiter: ConcurrencyLimiter, compute: ComputeQueue, limits: ChatLimits) {
        self.name = name
        self.model = model
        generator = TextGenerator(model: model.model, tokenizer: model.tokenizer, eosTokenIds: Set(model.eosTokenIds),
                                  contextLength: model.contextLength, cachedConversations: cachedConversations)
        self.limiter = limiter
        self.compute = compute
        self.limits = limits
    }

    func chat(_ messages: [ChatTurn], options: GenerationOptions?,
              onToken: @escaping @Sendable (StreamedToken) async throws -> Void) async throws -> Completion {
        let turns = try conversation(messages)
        return try await generate(options: options, onToken: onToken) { model in model.promptIDs(try model.chatPrompt(turns)) }
    }

    func complete(_ prompt: String, options: GenerationOptions?,
                  onToken: @escaping @Sendable (StreamedToken) async throws -> Void) async throws -> Completion {
        try await generate(options: options, onToken: onToken) { model in model.promptIDs(prompt) }
    }

    /// Tokenizes on the compute thread (a long prompt is work too), then decodes.
    private func generate(options: GenerationOptions?, onToken: @escaping @Sendable (StreamedToken) async throws -> Void,
                          promptIDs: @escaping @Sendable (GGUFLanguageModel) throws -> [Int]) async throws -> Completion {
        let settings = try GenerationSettings(options, limits: limits)
        let model = self.model, generator = self.generator
        return try await StreamedGeneration.run(limiter: limiter, compute: compute, onToken: onToken) { isCancelled, emit in
            do {
                return try generator.generate(promptIDs: try promptIDs(model), maxNewTokens: settings.maxNewTokens, sampling: settings.sampling,
                                              stop: settings.stop, isCancelled: isCancelled, onToken: emit)
            } catch let error as TextRequestError {
                throw WireStatus(.invalidArgument, "\(model.name): \(error.description)")
            }
        }
    }

    /// Wire messages → role and text; a language model reads no images.
    func conversation(_ messages: [ChatTurn]) throws -> [(role: String, content: String)] {
        guard !messages.isEmpty else { throw WireStatus(.invalidArgument, "the conversation has no messages") }
        let turns = try messages.enumerated().map { i, message -> (role: String, content: String) in
            guard ["system", "user", "assistant"].contains(message.role) else {
                throw WireStatus(.invalidArgument, "message \(i) has role '\(message.role)'; roles are system, user and assistant")
            }
            guard !message.parts.contains(where: { $0.image != nil }) else {
                throw WireStatus(.invalidArgument, "message \(i) has an image; '\(name)' is a language model and reads text only")
            }
            return (message.role, message.parts.map(\.text).joined())
        }
        guard turns.last?.role != "assistant" else {
            throw WireStatus(.invalidArgument, "the last message is the assistant's; end with a user message to get a reply")
        }
        return turns
    }
}
