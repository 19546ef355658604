import ChorusTensor
import ChorusText
import Foundation

/// A language model from one GGUF file, with everything the file carries to run it: the network, its
/// tokenizer, its chat template and its special tokens.
public struct GGUFLanguageModel: Sendable {
    public let name: String
    public let model: LlamaModel
    public let tokenizer: PipelineTokenizer
    /// `tokenizer.chat_template`, parsed, when the file has one.
    public let chatTemplate: ChatTemplate?
    /// llama.cpp puts BOS before a prompt when `tokenizer.ggml.add_bos_token` says so.
    public let addsBOS: Bool
    public var config: LlamaConfig { model.config }

    public init(path: String) throws {
        let file = try GGUFFile(path: path)
        let architecture = try file.required("general.architecture").string ?? ""
        guard architecture == "llama" else {
            throw WeightFileError(file.name, "architecture '\(architecture)' is not supported yet (llama is)")
        }
        let config = try GGUFLlama.config(file)
        model = try LlamaModel(GGUFLlama.weights(file, config: config), prefix: "model",
                               lmHead: config.tieWordEmbeddings ? nil : "lm_head.weight", config: config)
        tokenizer = try GGUFTokenizer.make(file)
        chatTemplate = try file.metadata["tokenizer.chat_template"]?.string.map { source in
            do { return try ChatTemplate(source) } catch { throw WeightFileError(file.name, "tokenizer.chat_template: \(error)") }
        }
        addsBOS = file.metadata["tokenizer.ggml.add_bos_token"]?.bool ?? false
        name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
    }

    /// A conversation ([role, content] turns) rendered by the file's chat template, ready for the answer.
    public func chatPrompt(_ turns: [(role: String, content: String)]) throws -> String {
        guard let chatTemplate else { throw WeightFileError(name, "has no chat template") }
        let messages = turns.map { ["role": TemplateValue.string($0.role), "content": .string($0.content)] }
        let token = { (id: Int?) in id.flatMap { self.tokenizer.token($0) }.map(TemplateValue.string) ?? .string("") }
        return try chatTemplate.render(ChatTemplate.messagesContext(messages: messages, addGenerationPrompt: true,
                                                                    extra: ["bos_token": token(config.bosTokenId), "eos_token": token(config.eosTokenIds.first)]))
    }

    /// The prompt's ids as llama.cpp would feed them: BOS first when the file asks for it.
    public func promptIDs(_ text: String) -> [Int] {
        let ids = tokenizer.encode(text, addSpecialTokens: false)
        guard addsBOS, let bos = config.bosTokenId, ids.first != bos else { return ids }
        return [bos] + ids
    }

    /// Logits [T, vocabulary] of `ids` continuing `cache`.
    public func logits(_ ids: [Int], cache: inout LlamaCache) -> Tensor {
        model.logits(model.forward(model.embed(ids), cache: &cache))
    }
}
