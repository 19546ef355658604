import Foundation

/// MMS-TTS's character vocabulary, as transformers' VitsTokenizer: characters outside the vocabulary
/// are lowercased (when `normalize`), then dropped; with `add_blank` the pad id goes between characters
/// and at both ends.
public final class VitsTokenizer: Tokenizer, @unchecked Sendable {
    let vocabulary: [String: Int]
    let idToToken: [Int: String]
    let addBlank: Bool
    let normalize: Bool
    let blankID: Int

    public init(folder: String) throws {
        let url = URL(fileURLWithPath: folder)
        guard let vocabulary = (try? JSONSerialization.jsonObject(with: Data(contentsOf: url.appendingPathComponent("vocab.json")))) as? [String: Int] else {
            throw TokenizerError("no vocab.json in \(folder)")
        }
        let config = (try? JSONSerialization.jsonObject(with: Data(contentsOf: url.appendingPathComponent("tokenizer_config.json")))) as? [String: Any] ?? [:]
        self.vocabulary = vocabulary
        idToToken = Dictionary(vocabulary.map { ($0.value, $0.key) }, uniquingKeysWith: { first, _ in first })
        addBlank = config["add_blank"] as? Bool ?? true
        normalize = config["normalize"] as? Bool ?? true
        blankID = vocabulary[config["pad_token"] as? String ?? "_"] ?? 0
    }

    public func encode(_ text: String) -> [Int] {
        var kept = ""
        for character in text {
            let candidate = normalize && vocabulary[String(character)] == nil ? character.lowercased() : String(character)
            for piece in candidate where vocabulary[String(piece)] != nil { kept.append(piece) }
        }
        let ids = kept.trimmingCharacters(in: .whitespacesAndNewlines).compactMap { vocabulary[String($0)] }
        guard addBlank, !ids.isEmpty else { return ids }
        var out = [blankID]
        for id in ids { out += [id, blankID] }
        return out
    }

    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        let characters = addBlank && ids.count > 1 ? stride(from: 1, to: ids.count, by: 2).map { ids[$0] } : ids
        return characters.compactMap { idToToken[$0] }.joined()
    }

    public func id(of token: String) -> Int? {
        vocabulary[token]
    }
}
