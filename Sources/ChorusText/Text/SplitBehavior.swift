/// What a split does with the matched delimiters (tokenizers' `SplitDelimiterBehavior`).
enum SplitBehavior: String {
    case removed = "Removed"
    case isolated = "Isolated"
    case mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext"
    case contiguous = "Contiguous"

    /// The non-empty pieces of a text of `count` scalars cut around `matches`, as tokenizers'
    /// `NormalizedString::split` cuts them. `invert` swaps which parts count as the delimiters.
    func pieces(count: Int, matches: [Range<Int>], invert: Bool = false) -> [Range<Int>] {
        var parts: [(range: Range<Int>, isDelimiter: Bool)] = []
        var position = 0
        for match in matches {
            if position < match.lowerBound { parts.append((position..<match.lowerBound, invert)) }
            parts.append((match, !invert))
            position = match.upperBound
        }
        if position < count { parts.append((position..<count, invert)) }

        var result: [Range<Int>] = []
        switch self {
        case .removed:
            result = parts.filter { !$0.isDelimiter }.map(\.range)
        case .isolated:
            result = parts.map(\.range)
        case .contiguous:
            var previous: Bool?
            for part in parts {
                if part.isDelimiter == previous, let last = result.popLast() {
                    result.append(last.lowerBound..<part.range.upperBound)
                } else {
                    result.append(part.range)
                }
                previous = part.isDelimiter
            }
        case .mergedWithPrevious:
            var previousWasDelimiter = false
            for part in parts {
                if part.isDelimiter, !previousWasDelimiter, let last = result.popLast() {
                    result.append(last.lowerBound..<part.range.upperBound)
                } else {
                    result.append(part.range)
                }
                previousWasDelimiter = part.isDelimiter
            }
        case .mergedWithNext:
            var nextWasDelimiter = false
            for part in parts.reversed() {
                if part.isDelimiter, !nextWasDelimiter, let last = result.popLast() {
                    result.append(part.range.lowerBound..<last.upperBound)
                } else {
                    result.append(part.range)
                }
                nextWasDelimiter = part.isDelimiter
            }
            result.reverse()
        }
        return result.filter { !$0.isEmpty }
    }
}
