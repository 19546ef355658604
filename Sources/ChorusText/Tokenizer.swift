import Foundation

/// Text ↔ token ids.
public protocol Tokenizer: Sendable {
    /// Ids for `text`, with the tokenizer's own special tokens (BOS, templates) added.
    func encode(_ text: String) -> [Int]
    func decode(_ ids: [Int], skipSpecialTokens: Bool) -> String
    /// The id of a token string (special tokens like "<|en|>" included), or nil.
    func id(of token: String) -> Int?
}

public struct TokenizerError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

public enum TokenizerLoader {
    /// The tokenizer of a Hugging Face model folder: tokenizer.json when present, else a VITS
    /// character vocabulary (vocab.json + tokenizer_config.json with "VitsTokenizer").
    public static func load(folder: String) throws -> Tokenizer {
        let config = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder).appendingPathComponent("tokenizer_config.json")))) as? [String: Any] ?? [:]
        if config["tokenizer_class"] as? String == "VitsTokenizer" {
            return try VitsTokenizer(folder: folder)
        }
        let url = URL(fileURLWithPath: folder)
        if let data = try? Data(contentsOf: url.appendingPathComponent("tokenizer.json")) {
            return try HFTokenizer(json: data)
        }
        if let vocabulary = try? Data(contentsOf: url.appendingPathComponent("vocab.json")),
           let merges = try? String(contentsOf: url.appendingPathComponent("merges.txt"), encoding: .utf8) {
            let isCLIP = (config["tokenizer_class"] as? String ?? "").hasPrefix("CLIP")
            return try HFTokenizer(json: LegacyBPEFiles.tokenizerJSON(vocabulary: vocabulary, merges: merges, clip: isCLIP))
        }
        throw TokenizerError("no tokenizer.json (nor vocab.json + merges.txt) in \(folder)")
    }
}
