import Foundation

/// Finds the delimiters or words a tokenizer.json pattern describes. Ranges are scalar offsets,
/// non-overlapping and in order.
protocol TextPattern: Sendable {
    func matches(in text: [Unicode.Scalar]) -> [Range<Int>]
}

enum TextPatterns {
    /// The pattern of a `{"Regex": …}` entry. The regexes every BPE tokenizer uses are matched by hand
    /// (fast, and with Oniguruma's lookahead semantics); any other goes to NSRegularExpression.
    static func regex(_ source: String) throws -> TextPattern {
        switch source {
        case GPT2Pattern.source:
            return GPT2Pattern()
        case CLIPPattern.source:
            return CLIPPattern()
        case #"\s+"#:
            return WhitespaceRunPattern()
        default:
            return try FoundationRegexPattern(source)
        }
    }

    /// The pattern of a `{"String": …}` entry: the literal text.
    static func literal(_ text: String) -> TextPattern {
        LiteralPattern(text)
    }

    /// A `{"String": …}` or `{"Regex": …}` object from tokenizer.json.
    static func make(_ json: JSON) throws -> TextPattern {
        if let literal = json["String"].string { return self.literal(literal) }
        if let source = json["Regex"].string { return try regex(source) }
        throw TokenizerError.unsupported("pattern \(json.raw ?? "null") is neither {\"String\": …} nor {\"Regex\": …}")
    }
}

extension TextPattern {
    /// `text` with every match replaced by `content`.
    func replacingMatches(in text: String, with content: String) -> String {
        let scalars = Array(text.unicodeScalars)
        let found = matches(in: scalars)
        guard !found.isEmpty else { return text }
        var result = String.UnicodeScalarView()
        var position = 0
        for range in found {
            result.append(contentsOf: scalars[position..<range.lowerBound])
            result.append(contentsOf: content.unicodeScalars)
            position = range.upperBound
        }
        result.append(contentsOf: scalars[position...])
        return String(result)
    }
}

/// Every occurrence of a fixed text, left to right.
struct LiteralPattern: TextPattern {
    let literal: [Unicode.Scalar]

    init(_ literal: String) {
        self.literal = Array(literal.unicodeScalars)
    }

    func matches(in text: [Unicode.Scalar]) -> [Range<Int>] {
        guard !literal.isEmpty else { return [] }
        var found: [Range<Int>] = []
        var index = 0
        while index + literal.count <= text.count {
            if text.hasLiteral(literal, at: index) {
                found.append(index..<(index + literal.count))
                index += literal.count
            } else {
                index += 1
            }
        }
        return found
    }
}

/// `\s+`, the whitespace collapse of CLIP's normalizer.
struct WhitespaceRunPattern: TextPattern {
    func matches(in text: [Unicode.Scalar]) -> [Range<Int>] {
        var found: [Range<Int>] = []
        var index = 0
        while index < text.count {
            if ScalarClass(text[index]) == .whitespace {
                let end = text.runEnd(from: index, of: .whitespace)
                found.append(index..<end)
                index = end
            } else {
                index += 1
            }
        }
        return found
    }
}
