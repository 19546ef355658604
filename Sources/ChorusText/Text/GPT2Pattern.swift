/// GPT-2's pre-tokenizer regex, used by every byte-level BPE (GPT-2, Whisper, CLIP's second stage):
///
///     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
///
/// Written out by hand: the `\s+(?!\S)` lookahead is what leaves the last space of a run to the word
/// after it ("a   b" → "a", "  ", " b"), and a scan over scalar classes is far faster than a regex engine.
struct GPT2Pattern: TextPattern {
    static let source = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#

    func matches(in text: [Unicode.Scalar]) -> [Range<Int>] {
        var found: [Range<Int>] = []
        var start = 0
        while start < text.count {
            let end = matchEnd(in: text, from: start)
            found.append(start..<end)
            start = end
        }
        return found
    }

    /// Every scalar belongs to one alternative, so a match always starts where the previous one ended.
    private func matchEnd(in text: [Unicode.Scalar], from start: Int) -> Int {
        let contraction = text.contractionLength(at: start)
        if contraction > 0 { return start + contraction }

        // ` ?X+`: a single plain space joins the run of letters, digits or symbols right after it.
        let spaceJoins = text[start] == " " && start + 1 < text.count
            && ScalarClass(text[start + 1]) != .whitespace
        let runStart = spaceJoins ? start + 1 : start
        let kind = ScalarClass(text[runStart])
        if kind != .whitespace { return text.runEnd(from: runStart, of: kind) }

        // `\s+(?!\S)|\s+`: a run followed by a non-space gives its last scalar up to the next match,
        // unless that scalar is all there is.
        let end = text.runEnd(from: start, of: .whitespace)
        if end == text.count || end - start == 1 { return end }
        return end - 1
    }
}
