import Foundation

/// Rewrites text before it is split into words (tokenizers' `normalizer`).
protocol Normalizer: Sendable {
    func normalize(_ text: String) -> String
}

enum Normalizers {
    /// The normalizer a tokenizer.json `normalizer` entry describes, or nil for `null`.
    static func make(_ json: JSON) throws -> Normalizer? {
        guard !json.isNull else { return nil }
        switch json["type"].string {
        case "Sequence":
            return NormalizerSequence(steps: try (json["normalizers"].array ?? []).compactMap(make))
        case "NFC": return UnicodeFormNormalizer(form: .nfc)
        case "NFD": return UnicodeFormNormalizer(form: .nfd)
        case "NFKC": return UnicodeFormNormalizer(form: .nfkc)
        case "NFKD": return UnicodeFormNormalizer(form: .nfkd)
        case "Lowercase": return LowercaseNormalizer()
        case "Replace":
            return ReplaceNormalizer(pattern: try TextPatterns.make(json["pattern"]), content: json["content"].string ?? "")
        case "Prepend":
            return PrependNormalizer(prefix: json["prepend"].string ?? "")
        case "Strip":
            return StripNormalizer(left: json["strip_left"].bool ?? true, right: json["strip_right"].bool ?? true)
        case "StripAccents":
            return StripAccentsNormalizer()
        case let other:
            throw TokenizerError.unsupported("normalizer type \(other ?? "missing")")
        }
    }
}

struct NormalizerSequence: Normalizer {
    let steps: [Normalizer]

    func normalize(_ text: String) -> String {
        steps.reduce(text) { text, step in step.normalize(text) }
    }
}

struct UnicodeFormNormalizer: Normalizer {
    enum Form { case nfc, nfd, nfkc, nfkd }
    let form: Form

    func normalize(_ text: String) -> String {
        switch form {
        case .nfc: return text.precomposedStringWithCanonicalMapping
        case .nfd: return text.decomposedStringWithCanonicalMapping
        case .nfkc: return text.precomposedStringWithCompatibilityMapping
        case .nfkd: return text.decomposedStringWithCompatibilityMapping
        }
    }
}

struct LowercaseNormalizer: Normalizer {
    func normalize(_ text: String) -> String { text.lowercasedByScalar }
}

struct ReplaceNormalizer: Normalizer {
    let pattern: TextPattern
    let content: String

    func normalize(_ text: String) -> String { pattern.replacingMatches(in: text, with: content) }
}

struct PrependNormalizer: Normalizer {
    let prefix: String

    /// tokenizers leaves empty text alone, so an empty input gets no "▁".
    func normalize(_ text: String) -> String { text.isEmpty ? text : prefix + text }
}

struct StripNormalizer: Normalizer {
    let left: Bool
    let right: Bool

    func normalize(_ text: String) -> String {
        var scalars = Array(text.unicodeScalars)[...]
        if left { scalars = scalars.drop(while: { $0.properties.isWhitespace }) }
        if right, let last = scalars.lastIndex(where: { !$0.properties.isWhitespace }) {
            scalars = scalars[...last]
        } else if right {
            scalars = []
        }
        return String(scalars: scalars)
    }
}

/// Drops combining marks, which after NFD removes accents ("café" → "cafe").
struct StripAccentsNormalizer: Normalizer {
    func normalize(_ text: String) -> String {
        String(scalars: text.unicodeScalars.filter { scalar in
            switch scalar.properties.generalCategory {
            case .nonspacingMark, .spacingMark, .enclosingMark: return false
            default: return true
            }
        })
    }
}
