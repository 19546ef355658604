import ChorusTensor
import ChorusText
import Foundation

/// The tokenizer a GGUF file carries, put in tokenizers' terms so the one tokenizer pipeline runs it:
/// `tokenizer.ggml.tokens` as the vocabulary, `.merges` as the merge ranks, control and user-defined
/// tokens (`.token_type` 3 and 4) as added tokens, and llama.cpp's pre-tokenizer (`.pre`) as the split
/// rules that produce the same words.
public enum GGUFTokenizer {
    /// llama.cpp's token types.
    enum TokenType: Int {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    /// The pre-tokenizers of the `tokenizer.ggml.pre` names Chorus knows, as tokenizer.json writes them.
    static func preTokenizer(_ name: String, file: String) throws -> [String: Any] {
        let byteLevel: [String: Any] = ["type": "ByteLevel", "add_prefix_space": false, "use_regex": true, "trim_offsets": true]
        switch name {
        case "gpt-2", "default":
            return byteLevel
        case "smollm":
            // llama.cpp: "\p{N}" first (every digit alone), then GPT-2's rule; SmolLM2's tokenizer.json: Digits + ByteLevel.
            return ["type": "Sequence", "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": "\\p{N}"], "behavior": "Isolated", "invert": false], byteLevel]]
        case "llama-bpe", "llama3":
            let pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
            return ["type": "Sequence", "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": pattern], "behavior": "Isolated", "invert": false],
                ["type": "ByteLevel", "add_prefix_space": false, "use_regex": false, "trim_offsets": true]]]
        default:
            throw WeightFileError(file, "its tokenizer's pre-tokenizer '\(name)' is not supported (gpt-2, smollm and llama-bpe are)")
        }
    }

    /// Tokens that end a generation, by name, as llama.cpp recognises them whatever the file's EOS says;
    /// llama.cpp also treats them as control tokens.
    public static let endOfGenerationNames: Set<String> = ["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                                           "<|end_of_text|>", "<EOT>", "</s>"]

    /// The file's tokenizer: byte-level BPE (`tokenizer.ggml.model` "gpt2") or SentencePiece with scores ("llama").
    public static func make(_ file: GGUFFile) throws -> any SpecialTokenParsing {
        switch try file.required("tokenizer.ggml.model").string ?? "" {
        case "gpt2": return try byteLevelBPE(file)
        case "llama": return try sentencePiece(file)
        case let other: throw WeightFileError(file.name, "its tokenizer model '\(other)' is not supported (gpt2 and llama are)")
        }
    }

    static func sentencePiece(_ file: GGUFFile) throws -> SentencePieceTokenizer {
        guard let pieces = try file.required("tokenizer.ggml.tokens").array?.compactMap(\.string), !pieces.isEmpty else {
            throw WeightFileError(file.name, "tokenizer.ggml.tokens is not a list of strings")
        }
        let scores = try file.required("tokenizer.ggml.scores").array?.compactMap(\.double).map(Float.init) ?? []
        var types = file.metadata["tokenizer.ggml.token_type"]?.array?.compactMap(\.int) ?? []
        for (id, piece) in pieces.enumerated() where id < types.count && endOfGenerationNames.contains(piece) {
            types[id] = TokenType.control.rawValue
        }
        do {
            return try SentencePieceTokenizer(pieces: pieces, scores: scores, types: types,
                                              addSpacePrefix: file.metadata["tokenizer.ggml.add_space_prefix"]?.bool ?? true,
                                              unknownID: file.metadata["tokenizer.ggml.unknown_token_id"]?.int)
        } catch {
            throw WeightFileError(file.name, "tokenizer: \(error)")
        }
    }

    static func byteLevelBPE(_ file: GGUFFile) throws -> PipelineTokenizer {
        guard let tokens = try file.required("tokenizer.ggml.tokens").array?.compactMap(\.string), !tokens.isEmpty else {
            throw WeightFileError(file.name, "tokenizer.ggml.tokens is not a list of strings")
        }
        guard let merges = try file.required("tokenizer.ggml.merges").array?.compactMap(\.string) else {
            throw WeightFileError(file.name, "tokenizer.ggml.merges is not a list of strings")
        }
        let types = file.metadata["tokenizer.ggml.token_type"]?.array?.compactMap(\.int) ?? []
        var vocabulary: [String: Int] = [:]
        var added: [[String: Any]] = []
        for (id, token) in tokens.enumerated() {
            vocabulary[token] = id
            let type = id < types.count ? TokenType(rawValue: types[id]) : nil
            if type == .control || type == .userDefined {
                added.append(["id": id, "content": token, "special": type == .control, "normalized": false,
                              "lstrip": false, "rstrip": false, "single_word": false])
            }
        }
        let json: [String: Any] = [
            "added_tokens": added,
            "normalizer": NSNull(),
            "pre_tokenizer": try preTokenizer(file.metadata["tokenizer.ggml.pre"]?.string ?? "default", file: file.name),
            "model": ["type": "BPE", "vocab": vocabulary, "merges": merges, "ignore_merges": false],
            "post_processor": NSNull(),
            "decoder": ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true],
        ]
        return try PipelineTokenizer(tokenizerJSONObject: json, origin: file.name)
    }
}
