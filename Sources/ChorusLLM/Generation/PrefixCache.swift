import Synchronization

/// The KV caches of the last few conversations, keyed by what their positions hold, so the next turn
/// of a chat (which repeats the whole history) computes only what is new. An entry is taken out while
/// a request uses it, so two requests never write one cache.
final class PrefixCache: Sendable {
    struct Entry {
        var keys: [Int64]
        var cache: LlamaCache
    }

    private let entries = Mutex<[Entry]>([])
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// The entry sharing the longest prefix with `keys` (removed from the cache), and that length.
    func take(longestPrefixOf keys: [Int64]) -> (cache: LlamaCache, length: Int)? {
        entries.withLock { entries in
            var best: (index: Int, length: Int)?
            for (i, entry) in entries.enumerated() {
                let length = zip(entry.keys, keys).prefix { $0 == $1 }.count
                if length > (best?.length ?? 0) { best = (i, length) }
            }
            guard let best else { return nil }
            return (entries.remove(at: best.index).cache, best.length)
        }
    }

    /// Keeps `cache`, whose positions hold `keys`; the oldest entry goes when full.
    func put(keys: [Int64], cache: LlamaCache) {
        guard capacity > 0, !keys.isEmpty else { return }
        entries.withLock { entries in
            entries.removeAll { $0.keys == keys }
            entries.append(Entry(keys: keys, cache: cache))
            if entries.count > capacity { entries.removeFirst(entries.count - capacity) }
        }
    }
}
