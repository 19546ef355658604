/// Leftmost-longest search for a set of token spellings (what tokenizers' Aho-Corasick automaton finds).
struct AddedTokenMatcher {
    /// Candidates by first scalar, longest first, so the first hit at a position is the longest.
    private let candidatesByFirstScalar: [Unicode.Scalar: [(token: AddedToken, scalars: [Unicode.Scalar])]]

    init(_ entries: [(AddedToken, String)]) {
        var candidates: [Unicode.Scalar: [(token: AddedToken, scalars: [Unicode.Scalar])]] = [:]
        for (token, spelling) in entries {
            let scalars = Array(spelling.unicodeScalars)
            guard let first = scalars.first else { continue }
            candidates[first, default: []].append((token, scalars))
        }
        candidatesByFirstScalar = candidates.mapValues { $0.sorted { $0.scalars.count > $1.scalars.count } }
    }

    /// Non-overlapping matches, left to right. Whitespace that an `rstrip` token takes along is not
    /// known here, so the caller skips matches that start inside it.
    func matches(in text: [Unicode.Scalar]) -> [(token: AddedToken, range: Range<Int>)] {
        guard !candidatesByFirstScalar.isEmpty else { return [] }
        var found: [(token: AddedToken, range: Range<Int>)] = []
        var index = 0
        while index < text.count {
            if let hit = candidatesByFirstScalar[text[index]]?.first(where: { text.hasLiteral($0.scalars, at: index) }) {
                found.append((hit.token, index..<(index + hit.scalars.count)))
                index += hit.scalars.count
            } else {
                index += 1
            }
        }
        return found
    }
}
