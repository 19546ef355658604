/// CLIP's pre-tokenizer regex (openai/CLIP `simple_tokenizer.py`), applied to lowercased text:
///
///     <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
///
/// Unlike GPT-2's, digits stand alone and whitespace is never part of a match (tokenizers uses it
/// with `invert: true, behavior: Removed`, so the spaces between matches disappear).
struct CLIPPattern: TextPattern {
    static let source = #"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"#

    private static let markers: [[Unicode.Scalar]] = ["<|startoftext|>", "<|endoftext|>"].map { Array($0.unicodeScalars) }

    func matches(in text: [Unicode.Scalar]) -> [Range<Int>] {
        var found: [Range<Int>] = []
        var start = 0
        while start < text.count {
            guard let end = matchEnd(in: text, from: start) else {
                start += 1
                continue
            }
            found.append(start..<end)
            start = end
        }
        return found
    }

    /// The end of the match at `start`, or nil where only whitespace is.
    private func matchEnd(in text: [Unicode.Scalar], from start: Int) -> Int? {
        if let marker = Self.markers.first(where: { text.hasLiteral($0, at: start) }) {
            return start + marker.count
        }
        let contraction = text.contractionLength(at: start)
        if contraction > 0 { return start + contraction }
        switch ScalarClass(text[start]) {
        case .whitespace: return nil
        case .number: return start + 1
        case let kind: return text.runEnd(from: start, of: kind)
        }
    }
}
