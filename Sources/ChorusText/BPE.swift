import Foundation

/// Byte-pair encoding as Hugging Face tokenizers' BPE model: a word starts as characters (the last one
/// carrying `end_of_word_suffix`), the lowest-ranked merge applies until none does, and with
/// `byte_fallback` pieces outside the vocabulary become <0xNN> byte tokens. Results are cached per word.
final class BPE: @unchecked Sendable {
    let vocabulary: [String: Int]
    let ranks: [Pair: Int]
    let endOfWordSuffix: String
    let byteFallback: Bool
    let unknown: Int?
    private var cache: [String: [Int]] = [:]
    private let lock = NSLock()

    struct Pair: Hashable {
        let left: String
        let right: String
    }

    init(vocabulary: [String: Int], merges: [(String, String)], endOfWordSuffix: String, byteFallback: Bool, unknownToken: String?) {
        self.vocabulary = vocabulary
        var ranks: [Pair: Int] = [:]
        for (rank, merge) in merges.enumerated() where ranks[Pair(left: merge.0, right: merge.1)] == nil {
            ranks[Pair(left: merge.0, right: merge.1)] = rank
        }
        self.ranks = ranks
        self.endOfWordSuffix = endOfWordSuffix
        self.byteFallback = byteFallback
        self.unknown = unknownToken.flatMap { vocabulary[$0] }
    }

    func encode(_ word: String) -> [Int] {
        if let cached = lock.withLock({ cache[word] }) { return cached }
        var symbols = word.map(String.init)
        if !endOfWordSuffix.isEmpty, !symbols.isEmpty { symbols[symbols.count - 1] += endOfWordSuffix }
        while symbols.count > 1 {
            var best: (rank: Int, index: Int)?
            for i in 0..<(symbols.count - 1) {
                if let rank = ranks[Pair(left: symbols[i], right: symbols[i + 1])], rank < (best?.rank ?? .max) {
                    best = (rank, i)
                }
            }
            guard let best else { break }
            let (left, right) = (symbols[best.index], symbols[best.index + 1])
            var merged: [String] = []
            var i = 0
            while i < symbols.count {
                if i + 1 < symbols.count && symbols[i] == left && symbols[i + 1] == right {
                    merged.append(left + right)
                    i += 2
                } else {
                    merged.append(symbols[i])
                    i += 1
                }
            }
            symbols = merged
        }
        var ids: [Int] = []
        for symbol in symbols {
            if let id = vocabulary[symbol] {
                ids.append(id)
            } else if byteFallback {
                for byte in symbol.utf8 {
                    if let id = vocabulary[String(format: "<0x%02X>", byte)] { ids.append(id) } else if let unknown { ids.append(unknown) }
                }
            } else if let unknown {
                ids.append(unknown)
            }
        }
        lock.withLock {
            if cache.count < 100_000 { cache[word] = ids }
        }
        return ids
    }
}
