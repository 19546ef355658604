/// Scanning helpers shared by the hand-written patterns and the added-token matcher.
extension Array where Element == Unicode.Scalar {
    /// The end of the run of scalars of class `kind` that starts at `start`.
    func runEnd(from start: Int, of kind: ScalarClass) -> Int {
        var end = start
        while end < count, ScalarClass(self[end]) == kind { end += 1 }
        return end
    }

    /// The length of the contraction `'s|'t|'re|'ve|'m|'ll|'d` at `index` (case-sensitive, as in the
    /// regexes), or 0.
    func contractionLength(at index: Int) -> Int {
        guard index + 1 < count, self[index] == "'" else { return 0 }
        switch self[index + 1] {
        case "s", "t", "m", "d":
            return 2
        case "r", "v":
            return index + 2 < count && self[index + 2] == "e" ? 3 : 0
        case "l":
            return index + 2 < count && self[index + 2] == "l" ? 3 : 0
        default:
            return 0
        }
    }

    /// Whether `literal` occurs at `index`.
    func hasLiteral(_ literal: [Unicode.Scalar], at index: Int) -> Bool {
        guard index + literal.count <= count else { return false }
        return self[index..<(index + literal.count)].elementsEqual(literal)
    }

    /// The array without leading and trailing scalars that satisfy `isTrimmed`.
    func trimmed(where isTrimmed: (Unicode.Scalar) -> Bool) -> ArraySlice<Unicode.Scalar> {
        guard let first = firstIndex(where: { !isTrimmed($0) }),
              let last = lastIndex(where: { !isTrimmed($0) }) else { return [] }
        return self[first...last]
    }
}
