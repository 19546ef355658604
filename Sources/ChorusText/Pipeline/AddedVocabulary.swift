/// Either an added token found in the text, or the text between two of them.
enum AddedTokenSegment: Equatable {
    case token(id: Int)
    case text(TextPiece)
}

/// The added tokens of a tokenizer and the cutting of text around them, as tokenizers'
/// `AddedVocabulary::extract_and_normalize` does it.
struct AddedVocabulary {
    private let idsByContent: [[UInt8]: Int]
    private let specialContents: Set<[UInt8]>
    private let rawMatcher: AddedTokenMatcher
    private let normalizedMatcher: AddedTokenMatcher
    /// The normalized spelling of normalized tokens: tokenizers both matches and decodes them that way.
    private let spellingByID: [Int: String]

    init(_ tokens: [AddedToken], normalizer: Normalizer?) {
        let spelled = tokens.map { token in
            (token, token.isNormalized ? normalizer?.normalize(token.content) ?? token.content : token.content)
        }
        spellingByID = Dictionary(spelled.map { ($0.0.id, $0.1) }, uniquingKeysWith: { _, last in last })
        idsByContent = Dictionary(tokens.map { (Array($0.content.utf8), $0.id) }, uniquingKeysWith: { _, last in last })
        specialContents = Set(tokens.filter(\.isSpecial).map { Array($0.content.utf8) })
        rawMatcher = AddedTokenMatcher(spelled.filter { !$0.0.isNormalized })
        normalizedMatcher = AddedTokenMatcher(spelled.filter { $0.0.isNormalized })
    }

    func id(_ content: String) -> Int? { idsByContent[Array(content.utf8)] }

    /// The text a decoder is given for `id`.
    func spelling(_ id: Int) -> String? { spellingByID[id] }

    func isSpecial(_ content: String) -> Bool { specialContents.contains(Array(content.utf8)) }

    /// Cuts the raw input around the tokens that are matched before normalization.
    func splitRaw(_ text: String) -> [AddedTokenSegment] {
        split(TextPiece(text: text, isAtInputStart: true), with: rawMatcher)
    }

    /// Cuts normalized text around the tokens that are matched after normalization.
    func splitNormalized(_ piece: TextPiece) -> [AddedTokenSegment] {
        split(piece, with: normalizedMatcher)
    }

    private func split(_ piece: TextPiece, with matcher: AddedTokenMatcher) -> [AddedTokenSegment] {
        let scalars = Array(piece.text.unicodeScalars)
        var segments: [AddedTokenSegment] = []
        var position = 0
        func appendText(upTo end: Int) {
            guard position < end else { return }
            let isAtStart = piece.isAtInputStart && position == 0
            segments.append(.text(TextPiece(text: String(scalars: scalars[position..<end]), isAtInputStart: isAtStart)))
        }
        for (token, range) in matcher.matches(in: scalars) where range.lowerBound >= position {
            var start = range.lowerBound
            var end = range.upperBound
            if token.isSingleWord {
                let wordBefore = start > 0 && scalars[start - 1].isRegexWordCharacter
                let wordAfter = end < scalars.count && scalars[end].isRegexWordCharacter
                if wordBefore || wordAfter { continue }
            }
            if token.stripsLeft {
                // Whitespace an earlier token already took stays with it.
                while start > position, scalars[start - 1].properties.isWhitespace { start -= 1 }
            }
            if token.stripsRight {
                while end < scalars.count, scalars[end].properties.isWhitespace { end += 1 }
            }
            appendText(upTo: start)
            segments.append(.token(id: token.id))
            position = end
        }
        appendText(upTo: scalars.count)
        return segments
    }
}
