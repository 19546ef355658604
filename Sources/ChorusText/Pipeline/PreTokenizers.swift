/// Cuts normalized text into the words the model tokenizes one by one (tokenizers' `pre_tokenizer`).
protocol PreTokenizer: Sendable {
    func split(_ piece: TextPiece) -> [TextPiece]
}

enum PreTokenizers {
    /// The pre-tokenizer a tokenizer.json `pre_tokenizer` entry describes, or nil for `null`.
    static func make(_ json: JSON) throws -> PreTokenizer? {
        guard !json.isNull else { return nil }
        switch json["type"].string {
        case "Sequence":
            let steps = try (json["pretokenizers"].array ?? []).compactMap(make)
            return PreTokenizerSequence(steps: steps)
        case "ByteLevel":
            return ByteLevelPreTokenizer(addPrefixSpace: json["add_prefix_space"].bool ?? true,
                                         useRegex: json["use_regex"].bool ?? true)
        case "Split":
            guard let behavior = SplitBehavior(rawValue: json["behavior"].string ?? "") else {
                throw TokenizerError.unsupported("Split behavior \(json["behavior"].raw ?? "null")")
            }
            return SplitPreTokenizer(pattern: try TextPatterns.make(json["pattern"]), behavior: behavior,
                                     invert: json["invert"].bool ?? false)
        case "Metaspace":
            return try MetaspacePreTokenizer(json)
        case "WhitespaceSplit":
            return SplitPreTokenizer(pattern: WhitespaceRunPattern(), behavior: .removed, invert: false)
        case let other:
            throw TokenizerError.unsupported("pre-tokenizer type \(other ?? "missing")")
        }
    }
}

struct PreTokenizerSequence: PreTokenizer {
    let steps: [PreTokenizer]

    func split(_ piece: TextPiece) -> [TextPiece] {
        steps.reduce([piece]) { pieces, step in pieces.flatMap(step.split) }
    }
}

/// GPT-2's pre-tokenizer: words by the GPT-2 regex, then every byte written in the byte-level alphabet.
struct ByteLevelPreTokenizer: PreTokenizer {
    let addPrefixSpace: Bool
    let useRegex: Bool

    func split(_ piece: TextPiece) -> [TextPiece] {
        var piece = piece
        if addPrefixSpace && !piece.text.startsWithScalars(" ") { piece.text = " " + piece.text }
        let words = useRegex ? piece.split(by: GPT2Pattern(), behavior: .isolated) : [piece]
        return words.map { TextPiece(text: ByteLevelAlphabet.encode($0.text), isAtInputStart: $0.isAtInputStart) }
    }
}

struct SplitPreTokenizer: PreTokenizer {
    let pattern: TextPattern
    let behavior: SplitBehavior
    let invert: Bool

    func split(_ piece: TextPiece) -> [TextPiece] {
        piece.split(by: pattern, behavior: behavior, invert: invert)
    }
}

/// SentencePiece's word boundary marker: spaces become "▁", and one "▁" is put before the text.
struct MetaspacePreTokenizer: PreTokenizer {
    enum PrependScheme: String {
        case always, first, never
    }

    let replacement: String
    let prependScheme: PrependScheme
    let splitOnReplacement: Bool

    init(_ json: JSON) throws {
        replacement = json["replacement"].string ?? "▁"
        // Files written before `prepend_scheme` existed say `add_prefix_space` instead.
        let legacy: PrependScheme = json["add_prefix_space"].bool == false ? .never : .always
        guard let scheme = PrependScheme(rawValue: json["prepend_scheme"].string ?? legacy.rawValue) else {
            throw TokenizerError.unsupported("Metaspace prepend_scheme \(json["prepend_scheme"].raw ?? "null")")
        }
        prependScheme = scheme
        splitOnReplacement = json["split"].bool ?? true
    }

    func split(_ piece: TextPiece) -> [TextPiece] {
        var piece = piece
        piece.text = LiteralPattern(" ").replacingMatches(in: piece.text, with: replacement)
        let prepends = prependScheme == .always || (prependScheme == .first && piece.isAtInputStart)
        if prepends && !piece.text.startsWithScalars(replacement) { piece.text = replacement + piece.text }
        guard splitOnReplacement else { return [piece] }
        return piece.split(by: LiteralPattern(replacement), behavior: .mergedWithNext)
    }
}
