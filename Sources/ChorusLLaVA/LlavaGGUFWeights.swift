import ChorusLLM
import ChorusTensor
import Foundation

/// A LLaVA folder whose language model is a GGUF file (llama.cpp's conversion of it, quantized or not)
/// beside the vision tower and projector in safetensors. The language model's tensors come from the GGUF,
/// under llava-hf's names (`language_model.model.*`, `language_model.lm_head.weight`), its quantized blocks
/// kept as they are; everything else comes from the folder's safetensors, whose own language tensors, if
/// any, give way to the GGUF's.
struct LlavaGGUFWeights: WeightSource {
    let folder: WeightSource
    let language: WeightSource
    let languageNames: Set<String>

    /// `file` must be a `llama` GGUF whose shape is the config's text model.
    init(folder: WeightSource, file: GGUFFile, text: LlamaConfig) throws {
        guard file.metadata["general.architecture"]?.string == "llama" else {
            throw WeightFileError(file.name, "is a '\(file.metadata["general.architecture"]?.string ?? "?")' GGUF; a LLaVA's language model must be 'llama'")
        }
        let converted = try GGUFLlama.config(file)
        let pairs: [(String, Int, Int)] = [
            ("hidden_size", text.hiddenSize, converted.hiddenSize), ("intermediate_size", text.intermediateSize, converted.intermediateSize),
            ("num_hidden_layers", text.numHiddenLayers, converted.numHiddenLayers), ("num_attention_heads", text.numAttentionHeads, converted.numAttentionHeads),
            ("num_key_value_heads", text.keyValueHeads, converted.keyValueHeads), ("vocab_size", text.vocabSize, converted.vocabSize),
        ]
        for (name, expected, found) in pairs where expected != found {
            throw WeightFileError(file.name, "has \(name) \(found), but config.json's text_config says \(expected)")
        }
        self.folder = folder
        language = GGUFLlama.weights(file, config: converted)
        languageNames = Set(language.names)
    }

    private static let prefix = "language_model."

    /// A tensor of the folder that belongs to the language model (either layout).
    private static func isLanguage(_ name: String) -> Bool {
        name.hasPrefix("language_model.") || name.hasPrefix("model.language_model.") || name == "lm_head.weight"
    }

    var names: [String] { folder.names.filter { !Self.isLanguage($0) } + languageNames.sorted().map { Self.prefix + $0 } }

    private func languageName(_ name: String) -> String? {
        guard name.hasPrefix(Self.prefix) else { return nil }
        let rest = String(name.dropFirst(Self.prefix.count))
        return languageNames.contains(rest) ? rest : nil
    }

    func tensor(_ name: String) throws -> Tensor {
        if let rest = languageName(name) { return try language.tensor(rest) }
        return try folder.tensor(name)
    }

    func linearWeight(_ name: String) throws -> LinearWeight {
        if let rest = languageName(name) { return try language.linearWeight(rest) }
        return try folder.linearWeight(name)
    }
}
