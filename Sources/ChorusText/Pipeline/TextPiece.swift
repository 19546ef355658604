/// A stretch of the input on its way from the normalizer through the pre-tokenizers to the model.
struct TextPiece: Equatable {
    var text: String
    /// Whether the piece begins where the input begins: Metaspace's "first" prepend scheme adds its
    /// "▁" only there, so that text after a special token gets none.
    var isAtInputStart: Bool

    /// The non-empty pieces of this one cut around `pattern`'s matches.
    func split(by pattern: TextPattern, behavior: SplitBehavior, invert: Bool = false) -> [TextPiece] {
        let scalars = Array(text.unicodeScalars)
        let ranges = behavior.pieces(count: scalars.count, matches: pattern.matches(in: scalars), invert: invert)
        return ranges.map { range in
            TextPiece(text: String(scalars: scalars[range]), isAtInputStart: isAtInputStart && range.lowerBound == 0)
        }
    }
}
