import ChorusText
import Foundation

/// One message of a conversation, as OpenAI's and transformers' chat formats give it: a role and
/// parts that are text or an image (the images themselves travel separately, in order).
public struct ChatMessage: Sendable, Equatable {
    public enum Part: Sendable, Equatable {
        case text(String)
        case image
    }

    public var role: String
    public var parts: [Part]

    public init(role: String, parts: [Part]) {
        self.role = role
        self.parts = parts
    }

    public static let roles: Set<String> = ["system", "user", "assistant"]
}

/// A request the model cannot take, said in the caller's terms (the service answers INVALID_ARGUMENT).
public struct LlavaRequestError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension LlavaPipeline {
    /// The prompt text of a conversation, through the folder's chat template when it has one, else
    /// in the llava-1.5 format that template writes: `USER: <image>\n… ASSISTANT:`.
    public func promptText(_ messages: [ChatMessage], addGenerationPrompt: Bool = true) throws -> String {
        guard !messages.isEmpty else { throw LlavaRequestError("the conversation has no messages") }
        for (i, message) in messages.enumerated() where !ChatMessage.roles.contains(message.role) {
            throw LlavaRequestError("message \(i) has role '\(message.role)'; roles are system, user and assistant")
        }
        guard let chatTemplate else { return Self.llava15Prompt(messages, addGenerationPrompt: addGenerationPrompt) }
        let context = ChatTemplate.messagesContext(
            messages: messages.map { message in
                ["role": .string(message.role),
                 "content": .array(message.parts.map { part in
                     switch part {
                     case .text(let text): return .object(["type": .string("text"), "text": .string(text)])
                     case .image: return .object(["type": .string("image")])
                     }
                 })]
            },
            addGenerationPrompt: addGenerationPrompt,
            extra: ["bos_token": .string(bosToken ?? ""), "eos_token": .string(eosToken ?? "")])
        do {
            return try chatTemplate.render(context)
        } catch {
            throw LlavaRequestError("the model's chat template refused the conversation: \(error)")
        }
    }

    static func llava15Prompt(_ messages: [ChatMessage], addGenerationPrompt: Bool) -> String {
        var text = ""
        for message in messages {
            if message.role != "system" { text += message.role.uppercased() + ": " }
            for part in message.parts where part == .image { text += "<image>\n" }
            for case .text(let content) in message.parts { text += content + " " }
        }
        return addGenerationPrompt ? text + "ASSISTANT:" : text
    }

    /// Prompt text → ids, BOS first (unless the template wrote it), each image token repeated once
    /// per image feature, as LlavaProcessor expands them. A prompt that could not fit the context is
    /// refused before the expansion: "<image>" typed 150,000 times would otherwise be 86 M ids.
    public func promptIDs(_ text: String) throws -> [Int] {
        let writesBOS = bosToken.map { !$0.isEmpty && text.hasPrefix($0) } ?? false
        let ids = tokenizer.encode(text, addSpecialTokens: !writesBOS)
        let image = model.config.imageTokenIndex
        let placeholders = ids.count { $0 == image }
        let expanded = ids.count - placeholders + placeholders * model.imageTokens
        let context = model.config.text.maxPositionEmbeddings
        guard expanded < context else {
            throw LlavaRequestError("the prompt is \(expanded) tokens (\(placeholders) image placeholders of \(model.imageTokens) tokens each); the model's context is \(context)")
        }
        return ids.flatMap { $0 == image ? Array(repeating: image, count: model.imageTokens) : [$0] }
    }
}
