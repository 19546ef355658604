import ChorusCLIP
import ChorusMedia
import ChorusTensor
import ChorusText
import Foundation

/// A LLaVA folder ready to chat: the model, its tokenizer, the CLIP image preprocessor, the chat
/// template, and the defaults of generation_config.json.
public final class LlavaPipeline: Sendable {
    public let model: LlavaModel
    public let tokenizer: PipelineTokenizer
    public let preprocessor: CLIPImagePreprocessor
    /// The folder's chat template, or nil for LLaVA-1.5's `USER: <image>\n… ASSISTANT:` format.
    public let chatTemplate: ChatTemplate?
    public let eosTokenIds: Set<Int>
    let bosToken: String?
    let eosToken: String?

    public init(model: LlavaModel, tokenizer: PipelineTokenizer, preprocessor: CLIPImagePreprocessor,
                chatTemplate: ChatTemplate?, eosTokenIds: Set<Int>) {
        self.model = model
        self.tokenizer = tokenizer
        self.preprocessor = preprocessor
        self.chatTemplate = chatTemplate
        self.eosTokenIds = eosTokenIds
        bosToken = model.config.text.bosTokenId.flatMap(tokenizer.token)
        eosToken = model.config.text.eosTokenIds.first.flatMap(tokenizer.token)
    }

    /// A Hugging Face LlavaForConditionalGeneration folder: config.json, *.safetensors, tokenizer.json,
    /// preprocessor_config.json or processor_config.json, and a chat template in chat_template.jinja,
    /// chat_template.json or tokenizer_config.json when it has one. A `.gguf` file in it (one) holds the
    /// language model instead, as llama.cpp converted it: its weights stay quantized (`LlavaGGUFWeights`).
    public convenience init(folder: String) throws {
        let url = URL(fileURLWithPath: folder)
        let config = try JSONConfig.load(LlavaConfig.self, from: url.appendingPathComponent("config.json").path)
        var weights: WeightSource = try SafeTensorsCheckpoint(folder: folder)
        let ggufs = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(".gguf") }.sorted()
        guard ggufs.count <= 1 else { throw WeightFileError(folder, "holds \(ggufs.count) GGUF files (\(ggufs.joined(separator: ", "))); a LLaVA takes one language model") }
        if let gguf = ggufs.first {
            weights = try LlavaGGUFWeights(folder: weights, file: GGUFFile(path: url.appendingPathComponent(gguf).path), text: config.text)
        }
        let model = try LlavaModel(weights: weights, config: config)
        guard let tokenizer = try TokenizerLoader.load(folder: url) as? PipelineTokenizer else {
            throw WeightFileError(folder, "LLaVA needs a tokenizer.json tokenizer")
        }
        guard tokenizer.token(config.imageTokenIndex) != nil else {
            throw WeightFileError(folder, "the tokenizer has no image token \(config.imageTokenIndex)")
        }
        var processor = CLIPImageProcessorConfig()
        for name in ["preprocessor_config.json", "processor_config.json"] {
            if let data = FileManager.default.contents(atPath: url.appendingPathComponent(name).path) {
                processor = try CLIPImageProcessorConfig.load(json: data)
                break
            }
        }
        let template = try Self.chatTemplateSource(in: url).map { source in
            do { return try ChatTemplate(source) } catch { throw WeightFileError(folder, "chat template: \(error)") }
        }
        var eos = Set(config.text.eosTokenIds)
        if let generation = FileManager.default.contents(atPath: url.appendingPathComponent("generation_config.json").path),
           let json = try? JSONSerialization.jsonObject(with: generation) as? [String: Any] {
            if let id = json["eos_token_id"] as? Int { eos.insert(id) }
            if let ids = json["eos_token_id"] as? [Int] { eos.formUnion(ids) }
        }
        self.init(model: model, tokenizer: tokenizer, preprocessor: CLIPImagePreprocessor(config: processor),
                  chatTemplate: template, eosTokenIds: eos)
    }

    static func chatTemplateSource(in folder: URL) throws -> String? {
        if let text = try? String(contentsOf: folder.appendingPathComponent("chat_template.jinja"), encoding: .utf8) { return text }
        for name in ["chat_template.json", "processor_config.json", "tokenizer_config.json"] {
            guard let data = FileManager.default.contents(atPath: folder.appendingPathComponent(name).path),
                  let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { continue }
            if let template = json["chat_template"] as? String { return template }
        }
        return nil
    }

    /// Decoded image → pixel values [3 · S · S] for the vision tower.
    public func pixelValues(_ image: Image) throws -> [Float] {
        let side = model.config.vision.imageSize
        let (planes, width, height) = try preprocessor.pixelValues(image)
        guard width == side && height == side else {
            throw MediaError.invalidImage("preprocessing gave \(width)×\(height), the vision tower takes \(side)×\(side)")
        }
        return planes
    }
}
