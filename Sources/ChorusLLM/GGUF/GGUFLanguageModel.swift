import ChorusTensor
import ChorusText
import Foundation

/// A language model from one GGUF file, with everything the file carries to run it: the network (Llama
/// or Gemma 3, by `general.architecture`), its tokenizer, its chat template and its special tokens.
public struct GGUFLanguageModel: Sendable {
    public let name: String
    public let architecture: String
    public let model: any CausalLanguageModel
    public let tokenizer: any SpecialTokenParsing
    /// `tokenizer.chat_template` parsed, or the architecture's own format when the file has none.
    public let chatTemplate: ChatTemplate?
    /// Where the template came from: "from the file", the architecture's built-in format, or "none".
    public let chatTemplateOrigin: String
    /// llama.cpp puts BOS before a prompt when `tokenizer.ggml.add_bos_token` says so.
    public let addsBOS: Bool
    public let bosTokenId: Int?
    /// The tokens that end a reply (EOS and, where the file names one, end of turn).
    public private(set) var eosTokenIds: [Int]
    public let contextLength: Int
    public let layers: Int
    public let width: Int

    public init(path: String) throws {
        let file = try GGUFFile(path: path)
        architecture = try file.required("general.architecture").string ?? ""
        tokenizer = try GGUFTokenizer.make(file)
        var templateSource = file.metadata["tokenizer.chat_template"]?.string
        switch architecture {
        case "llama":
            let config = try GGUFLlama.config(file)
            model = try LlamaModel(GGUFLlama.weights(file, config: config), prefix: "model",
                                   lmHead: config.tieWordEmbeddings ? nil : "lm_head.weight", config: config)
            (bosTokenId, eosTokenIds, contextLength) = (config.bosTokenId, config.eosTokenIds, config.maxPositionEmbeddings)
            (layers, width) = (config.numHiddenLayers, config.hiddenSize)
        case "gemma3":
            let config = try GGUFGemma3.config(file)
            model = try Gemma3Model(RenamedWeights(file, mapping: GGUFGemma3.names(config)), config: config)
            (bosTokenId, eosTokenIds, contextLength) = (config.bosTokenId, config.eosTokenIds, config.maxPositionEmbeddings)
            (layers, width) = (config.numHiddenLayers, config.hiddenSize)
            templateSource = templateSource ?? GGUFGemma3.chatTemplate
        default:
            throw WeightFileError(file.name, "architecture '\(architecture)' is not supported (llama and gemma3 are)")
        }
        // A reply also ends at the end-of-turn tokens llama.cpp stops on (Gemma's <end_of_turn> ...).
        let tokenizer = self.tokenizer, eos = eosTokenIds
        eosTokenIds = eos + GGUFTokenizer.endOfGenerationNames.compactMap { tokenizer.tokenID($0) }.filter { !eos.contains($0) }.sorted()
        chatTemplateOrigin = file.metadata["tokenizer.chat_template"] != nil ? "from the file"
            : templateSource != nil ? "\(architecture) built in" : "none"
        chatTemplate = try templateSource.map { source in
            do { return try ChatTemplate(source) } catch { throw WeightFileError(file.name, "chat template: \(error)") }
        }
        addsBOS = file.metadata["tokenizer.ggml.add_bos_token"]?.bool ?? false
        name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
    }

    public var vocabularySize: Int { model.vocabularySize }

    /// A conversation ([role, content] turns) rendered by the chat template, ready for the answer.
    public func chatPrompt(_ turns: [(role: String, content: String)]) throws -> String {
        guard let chatTemplate else { throw WeightFileError(name, "has no chat template") }
        let messages = turns.map { ["role": TemplateValue.string($0.role), "content": .string($0.content)] }
        let token = { (id: Int?) in id.flatMap { self.tokenizer.token($0) }.map(TemplateValue.string) ?? .string("") }
        return try chatTemplate.render(ChatTemplate.messagesContext(messages: messages, addGenerationPrompt: true,
                                                                    extra: ["bos_token": token(bosTokenId), "eos_token": token(eosTokenIds.first)]))
    }

    /// The prompt's ids as llama.cpp feeds them: special tokens written in it parsed, BOS first when the
    /// file asks for it (and the text does not start with it already).
    public func promptIDs(_ text: String) -> [Int] {
        let ids = tokenizer.encode(text)
        guard addsBOS, let bos = bosTokenId, ids.first != bos else { return ids }
        return [bos] + ids
    }

    /// Logits [T, vocabulary] of `ids` continuing `cache`.
    public func logits(_ ids: [Int], cache: inout LlamaCache) -> Tensor {
        model.logits(model.forward(model.embed(ids), cache: &cache))
    }

    /// The logits of the last of `ids` only (what decoding needs: the head over every prompt position
    /// would cost T × vocabulary × width, 262 144 rows for Gemma).
    public func lastLogits(_ ids: [Int], cache: inout LlamaCache) -> [Float] {
        let hidden = model.forward(model.embed(ids), cache: &cache), h = model.hiddenSize, t = hidden.shape[0]
        return model.logits(Tensor(shape: [1, h], storage: Array(hidden.storage[((t - 1) * h)..<(t * h)]))).storage
    }
}
