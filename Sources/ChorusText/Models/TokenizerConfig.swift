import Foundation

/// What transformers reads from tokenizer_config.json besides tokenizer.json: the class to build and
/// the options that class takes. Absent files and fields read as defaults.
struct TokenizerConfig {
    let json: JSON
    let path: String

    init(folder: URL) throws {
        let url = folder.appendingPathComponent("tokenizer_config.json")
        path = url.path
        json = FileManager.default.fileExists(atPath: url.path) ? try JSON.load(url) : JSON(nil)
    }

    /// The tokenizer class without the "Fast" suffix older files carry ("CLIPTokenizerFast" → "CLIPTokenizer").
    var tokenizerClass: String? {
        guard let name = json["tokenizer_class"].string else { return nil }
        return name.hasSuffix("Fast") ? String(name.dropLast(4)) : name
    }

    func string(_ key: String) -> String? { json[key].string }

    func bool(_ key: String) -> Bool? { json[key].bool }

    /// A special token setting, written either as the plain string or as an AddedToken object.
    func specialToken(_ key: String) -> String? {
        json[key].string ?? json[key]["content"].string
    }

    /// `added_tokens_decoder`: {"id": {"content": …, "special": …, …}}.
    var addedTokens: [AddedToken] {
        (json["added_tokens_decoder"].object ?? [:]).compactMap { key, value in
            Int(key).flatMap { AddedToken(id: $0, json: JSON(value)) }
        }.sorted { $0.id < $1.id }
    }
}
