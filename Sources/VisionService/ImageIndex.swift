import ChorusTensor

/// One named index: ids and their L2-normalised vectors, searched exactly by inner product (one BLAS
/// matrix-vector product over all rows, then a partial top-k).
struct ImageIndex: Sendable, Equatable {
    let dimension: Int
    private(set) var ids: [String] = []
    /// Row i is the vector of ids[i].
    private(set) var vectors: [Float] = []
    private var rows: [String: Int] = [:]

    init(dimension: Int) {
        self.dimension = dimension
    }

    init(dimension: Int, ids: [String], vectors: [Float]) {
        precondition(vectors.count == ids.count * dimension)
        self.dimension = dimension
        self.ids = ids
        self.vectors = vectors
        rows = Dictionary(ids.enumerated().map { ($1, $0) }, uniquingKeysWith: { _, last in last })
    }

    var count: Int { ids.count }

    /// Adds or replaces each id's vector (normalised here); returns how many ids were new.
    @discardableResult
    mutating func upsert(ids newIDs: [String], vectors newVectors: [[Float]]) -> Int {
        var added = 0
        for (id, vector) in zip(newIDs, newVectors) {
            let unit = Self.normalized(vector)
            if let row = rows[id] {
                vectors.replaceSubrange((row * dimension)..<((row + 1) * dimension), with: unit)
            } else {
                rows[id] = ids.count
                ids.append(id)
                vectors += unit
                added += 1
            }
        }
        return added
    }

    /// Removes the ids present; the last row moves into each hole, so removal is O(dimension).
    mutating func remove(_ removed: [String]) -> Int {
        var count = 0
        for id in removed {
            guard let row = rows.removeValue(forKey: id) else { continue }
            let last = ids.count - 1
            if row != last {
                ids[row] = ids[last]
                rows[ids[row]] = row
                vectors.replaceSubrange((row * dimension)..<((row + 1) * dimension),
                                        with: vectors[(last * dimension)..<((last + 1) * dimension)])
            }
            ids.removeLast()
            vectors.removeLast(dimension)
            count += 1
        }
        return count
    }

    /// The `k` best ids by inner product with `query` (normalised here), best first.
    func search(_ query: [Float], k: Int) -> [(id: String, score: Float)] {
        guard count > 0, k > 0 else { return [] }
        let unit = Self.normalized(query)
        var scores = [Float](repeating: 0, count: count)
        vectors.withUnsafeBufferPointer { m in
            guard let matrix = m.baseAddress else { return }
            BLAS.serialSgemv(rows: count, columns: dimension, a: matrix, lda: dimension, x: unit, y: &scores)
        }
        return TopK.indices(of: scores, k: k).map { (ids[$0], scores[$0]) }
    }

    static func normalized(_ v: [Float]) -> [Float] {
        let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return norm > 0 ? v.map { $0 / norm } : v
    }

    static func == (a: ImageIndex, b: ImageIndex) -> Bool {
        a.dimension == b.dimension && a.ids == b.ids && a.vectors == b.vectors
    }
}

/// The k largest values' positions, largest first (ties by position), without sorting everything.
enum TopK {
    static func indices(of values: [Float], k: Int) -> [Int] {
        let k = min(k, values.count)
        guard k > 0 else { return [] }
        if k * 8 >= values.count {
            return Array(values.indices.sorted { values[$0] > values[$1] || (values[$0] == values[$1] && $0 < $1) }.prefix(k))
        }
        // A small sorted buffer of the best k seen so far.
        var best: [Int] = []
        best.reserveCapacity(k + 1)
        for i in values.indices {
            if best.count == k, values[i] <= values[best[k - 1]] { continue }
            var at = best.count
            while at > 0 && values[best[at - 1]] < values[i] { at -= 1 }
            best.insert(i, at: at)
            if best.count > k { best.removeLast() }
        }
        return best
    }
}
