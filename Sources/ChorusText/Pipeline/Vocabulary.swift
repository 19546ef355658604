/// Token spellings ⇄ ids. Keys compare code point by code point: Swift's `String` equality is
/// canonical equivalence, which would fold distinct entries such as "Å" (U+00C5) and "Å" (U+212B)
/// together, where tokenizers keeps them apart.
struct Vocabulary {
    private let idsByBytes: [[UInt8]: Int]
    private let tokensByID: [Int: String]

    init<S: Sequence>(_ entries: S) where S.Element == (token: String, id: Int) {
        var ids: [[UInt8]: Int] = [:]
        var tokens: [Int: String] = [:]
        for (token, id) in entries {
            ids[Array(token.utf8)] = id
            tokens[id] = token
        }
        idsByBytes = ids
        tokensByID = tokens
    }

    /// A vocabulary object from tokenizer.json or vocab.json: `{"token": id, …}`.
    init(json: JSON, path: String) throws {
        guard let object = json.object else {
            throw TokenizerError.invalidFile(path: path, reason: "the vocabulary is not a {\"token\": id} object")
        }
        self.init(object.compactMap { token, id in JSON(id).int.map { (token: token, id: $0) } })
    }

    var count: Int { tokensByID.count }

    var tokens: Dictionary<Int, String>.Values { tokensByID.values }

    func id(_ token: String) -> Int? { idsByBytes[Array(token.utf8)] }

    func token(_ id: Int) -> String? { tokensByID[id] }
}
