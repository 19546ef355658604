/// The merge rules of a BPE model, keyed by the ids of the pair so a lookup hashes two integers.
struct MergeTable {
    struct Rule {
        let rank: Int
        let result: Int
    }

    private struct Pair: Hashable {
        let left: Int
        let right: Int
    }

    private let rules: [Pair: Rule]

    /// `merges` in rank order; a rule whose parts or result are not in the vocabulary is an error, and a
    /// repeated pair keeps its last rank, as in tokenizers.
    init(_ merges: [(String, String)], vocabulary: Vocabulary, continuingSubwordPrefix: String?, path: String) throws {
        var rules: [Pair: Rule] = [:]
        rules.reserveCapacity(merges.count)
        let prefixLength = continuingSubwordPrefix?.unicodeScalars.count ?? 0
        for (rank, (left, right)) in merges.enumerated() {
            // The right part carries the subword prefix, which the merged token only has once.
            let joined = left + String(scalars: right.unicodeScalars.dropFirst(prefixLength))
            guard let leftID = vocabulary.id(left), let rightID = vocabulary.id(right),
                  let result = vocabulary.id(joined) else {
                throw TokenizerError.invalidFile(path: path, reason: "merge \"\(left) \(right)\" (rank \(rank)) uses a token that is not in the vocabulary")
            }
            rules[Pair(left: leftID, right: rightID)] = Rule(rank: rank, result: result)
        }
        self.rules = rules
    }

    /// The merges of tokenizer.json, either as "left right" strings (older files) or as [left, right].
    static func pairs(_ json: JSON, path: String) throws -> [(String, String)] {
        try (json.array ?? []).map { entry in
            if let parts = entry.array, parts.count == 2, let left = parts[0].string, let right = parts[1].string {
                return (left, right)
            }
            if let line = entry.string, let pair = pair(fromLine: line) { return pair }
            throw TokenizerError.invalidFile(path: path, reason: "merge \(entry.raw ?? "null") is neither \"a b\" nor [\"a\", \"b\"]")
        }
    }

    /// One line of merges.txt or an old-style merge string: the two parts around the first space.
    static func pair(fromLine line: String) -> (String, String)? {
        guard let space = line.unicodeScalars.firstIndex(of: " ") else { return nil }
        let left = String(line.unicodeScalars[..<space])
        let right = String(line.unicodeScalars[line.unicodeScalars.index(after: space)...])
        return (left, right)
    }

    func rule(_ left: Int, _ right: Int) -> Rule? {
        rules[Pair(left: left, right: right)]
    }

    /// Merges `symbols` lowest rank first, leftmost first among equal ranks, exactly as tokenizers'
    /// `Word::merge_all` does: a priority queue over a linked list, so long words stay O(n log n).
    func apply(to symbols: [Int]) -> [Int] {
        guard symbols.count > 1 else { return symbols }
        var ids = symbols
        var previous = Array(-1..<(symbols.count - 1))
        var next = Array(1...symbols.count)
        next[symbols.count - 1] = -1
        var alive = [Bool](repeating: true, count: symbols.count)

        var queue = MergeQueue()
        for position in 0..<(symbols.count - 1) {
            if let rule = rule(ids[position], ids[position + 1]) {
                queue.push(.init(rank: rule.rank, position: position, result: rule.result))
            }
        }
        while let top = queue.pop() {
            let position = top.position
            guard alive[position], next[position] != -1 else { continue }
            let right = next[position]
            // An entry whose pair has changed since it was queued is stale.
            guard let rule = rule(ids[position], ids[right]), rule.result == top.result else { continue }

            ids[position] = top.result
            alive[right] = false
            next[position] = next[right]
            if next[right] != -1 { previous[next[right]] = position }

            if previous[position] != -1, let before = self.rule(ids[previous[position]], ids[position]) {
                queue.push(.init(rank: before.rank, position: previous[position], result: before.result))
            }
            if next[position] != -1, let after = self.rule(ids[position], ids[next[position]]) {
                queue.push(.init(rank: after.rank, position: position, result: after.result))
            }
        }
        return zip(ids, alive).compactMap { $1 ? $0 : nil }
    }
}
