import CBLAS
import Dispatch

/// Scaled dot-product attention over tensors laid out [B, T, heads·D], as projections produce them:
/// each head is read and written in place through sgemm's leading dimension, so no head is ever copied
/// out of its row.
public enum Attention {
    /// softmax(q·kᵀ·scale + mask) · v per batch and head.
    /// - mask: additive, [Tq, Tk] (shared) or [B, Tq, Tk]; `causal` masks key positions after
    ///   `queryOffset + i` for query i (queries continue a cached prefix of that length).
    public static func attend(query q: Tensor, key k: Tensor, value v: Tensor, heads: Int, mask: Tensor? = nil,
                              causal: Bool = false, queryOffset: Int = 0, scale: Float? = nil) -> Tensor {
        let (batch, tq, width) = (q.shape[0], q.shape[1], q.shape[2])
        let tk = k.shape[1]
        precondition(k.shape == [batch, tk, width] && v.shape == [batch, tk, width], "attention: q \(q.shape), k \(k.shape), v \(v.shape)")
        // sgemm stores its output without reading it; the single-query path's sgemv is given zeros.
        var out: [Float] = tq == 1 ? [Float](repeating: 0, count: batch * width) : .unset(batch * tq * width)
        q.storage.withUnsafeBufferPointer { qp in
            k.storage.withUnsafeBufferPointer { kp in
                v.storage.withUnsafeBufferPointer { vp in
                    out.withUnsafeMutableBufferPointer { op in
                        attend(q: qp.baseAddress!, k: kp.baseAddress!, v: vp.baseAddress!, out: op.baseAddress!,
                               batch: batch, tq: tq, tk: tk, keyStride: tk * width, width: width, heads: heads,
                               mask: mask, causal: causal, queryOffset: queryOffset, scale: scale)
                    }
                }
            }
        }
        return Tensor(shape: [batch, tq, width], storage: out)
    }

    /// The pointer form: keys and values of batch b start at `b · keyStride` (a KV cache's capacity).
    static func attend(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
                       batch: Int, tq: Int, tk: Int, keyStride: Int, width: Int, heads: Int, keyWidth: Int? = nil,
                       mask: Tensor?, causal: Bool, queryOffset: Int, scale: Float?) {
        precondition(width % heads == 0, "attention: width \(width) does not split into \(heads) heads")
        let d = width / heads
        // Grouped-query attention: keys and values have fewer heads, each shared by `group` query heads.
        let keyWidth = keyWidth ?? width
        precondition(keyWidth % d == 0 && heads % (keyWidth / d) == 0, "attention: \(heads) query heads of \(d) do not group over key width \(keyWidth)")
        let group = heads / (keyWidth / d)
        let alpha = scale ?? 1 / Float(d).squareRoot()
        let units = batch * heads
        if FewQueryAttention.applies(tq: tq, tk: tk, mask: mask, causal: causal) {
            for b in 0..<batch {
                FewQueryAttention.attend(q: q + b * tq * width, k: k + b * keyStride, v: v + b * keyStride, out: out + b * tq * width,
                                         tq: tq, tk: tk, width: width, keyWidth: keyWidth, heads: heads, group: group, alpha: alpha)
            }
            return
        }
        if tq == 1 && mask == nil {
            // One query (a decoder step): two matrix-vector products per head. sgemm would pack the
            // head's keys and values for a single row, which costs more than reading them once.
            let keys = causal ? min(tk, queryOffset + 1) : tk
            let workers = min(units, BLAS.pieces(work: units * keys * d * 2))
            Parallel.perform(iterations: workers) { worker in
                var scores = [Float](repeating: 0, count: keys)
                scores.withUnsafeMutableBufferPointer { s in
                    for unit in stride(from: worker, to: units, by: workers) {
                        let (b, h) = unit.quotientAndRemainder(dividingBy: heads)
                        let kh = k + b * keyStride + (h / group) * d
                        let vh = v + b * keyStride + (h / group) * d
                        BLAS.serialSgemv(rows: keys, columns: d, alpha: alpha, a: kh, lda: keyWidth, x: q + b * width + h * d, y: s.baseAddress!)
                        softmaxRow(s.baseAddress!, keys)
                        BLAS.serialSgemv(transA: true, rows: keys, columns: d, a: vh, lda: keyWidth, x: s.baseAddress!, y: out + b * width + h * d)
                    }
                }
            }
            return
        }
        // Queries go in blocks whose scores (block × keys) stay in cache between the two products and the
        // softmax; the blocks of every batch entry and head are shared out over the cores.
        let blockRows = min(tq, max(32, (1 << 18) / max(tk, 1)))
        let blocks = (tq + blockRows - 1) / blockRows
        let jobs = units * blocks
        let workers = min(jobs, BLAS.pieces(work: units * tq * tk * d * 2))
        Parallel.perform(iterations: workers) { worker in
            var scores = [Float].unset(blockRows * tk)
            scores.withUnsafeMutableBufferPointer { buffer in
                let s = buffer.baseAddress!
                for job in stride(from: worker, to: jobs, by: workers) {
                    let (unit, block) = job.quotientAndRemainder(dividingBy: blocks)
                    let (b, h) = unit.quotientAndRemainder(dividingBy: heads)
                    let first = block * blockRows
                    let rows = min(tq, first + blockRows) - first
                    // Causal: no query of this block sees a key past its last row's position.
                    let keys = causal ? min(tk, queryOffset + first + rows) : tk
                    let qh = q + (b * tq + first) * width + h * d
                    let kh = k + b * keyStride + (h / group) * d
                    let vh = v + b * keyStride + (h / group) * d
                    BLAS.serialSgemm(transB: true, m: rows, n: keys, k: d, alpha: alpha, a: qh, lda: width, b: kh, ldb: keyWidth,
                                     c: s, ldc: keys)
                    if let mask {
                        let offset = (mask.rank == 3 ? b * tq * tk : 0) + first * tk
                        mask.storage.withUnsafeBufferPointer { m in
                            for i in 0..<rows {
                                let row = s + i * keys, added = m.baseAddress! + offset + i * tk
                                for j in 0..<keys { row[j] += added[j] }
                            }
                        }
                    }
                    for i in 0..<rows {
                        let row = s + i * keys
                        if causal {
                            let last = queryOffset + first + i
                            if last + 1 < keys { (row + last + 1).update(repeating: -.infinity, count: keys - last - 1) }
                        }
                        softmaxRow(row, keys)
                    }
                    BLAS.serialSgemm(m: rows, n: d, k: keys, a: s, lda: keys, b: vh, ldb: keyWidth,
                                     c: out + (b * tq + first) * width + h * d, ldc: width)
                }
            }
        }
    }
}

/// Keys and values of the tokens seen so far, for one attention layer. Capacity doubles when full, so
/// appending a token copies only the new rows (the whole cache moves only log₂(n) times).
public struct KVCache: Sendable {
    public private(set) var length = 0
    public private(set) var capacity: Int
    public private(set) var batch: Int
    public let width: Int
    private var keys: [Float]
    private var values: [Float]

    public init(batch: Int, width: Int, capacity: Int = 64) {
        self.batch = batch
        self.width = width
        self.capacity = max(1, capacity)
        keys = [Float](repeating: 0, count: batch * self.capacity * width)
        values = keys
    }

    /// Appends [B, T, width] keys and values.
    public mutating func append(keys newKeys: Tensor, values newValues: Tensor) {
        let t = newKeys.shape[1]
        precondition(newKeys.shape == [batch, t, width] && newValues.shape == newKeys.shape, "KV cache: got \(newKeys.shape), \(newValues.shape)")
        if length + t > capacity { grow(to: max(capacity * 2, length + t)) }
        for b in 0..<batch {
            let dst = (b * capacity + length) * width
            let src = b * t * width
            keys.replaceSubrange(dst..<(dst + t * width), with: newKeys.storage[src..<(src + t * width)])
            values.replaceSubrange(dst..<(dst + t * width), with: newValues.storage[src..<(src + t * width)])
        }
        length += t
    }

    /// Forgets every position from `newLength` on (a conversation that continues a cached prefix
    /// but differs after it).
    public mutating func truncate(to newLength: Int) {
        precondition((0...length).contains(newLength), "KV cache: truncate to \(newLength) of \(length)")
        length = newLength
    }

    /// Entry b of the result is entry `sources[b]` of this cache (beam search: each surviving beam
    /// continues the history of its parent; several may share one).
    public mutating func reorder(_ sources: [Int]) {
        precondition(sources.allSatisfy { (0..<batch).contains($0) }, "KV cache: reorder \(sources) of \(batch) entries")
        if sources == Array(0..<batch) { return }
        let stride = capacity * width, used = length * width
        var k = [Float](repeating: 0, count: sources.count * stride)
        var v = k
        for (b, source) in sources.enumerated() {
            k.replaceSubrange((b * stride)..<(b * stride + used), with: keys[(source * stride)..<(source * stride + used)])
            v.replaceSubrange((b * stride)..<(b * stride + used), with: values[(source * stride)..<(source * stride + used)])
        }
        keys = k
        values = v
        batch = sources.count
    }

    private mutating func grow(to newCapacity: Int) {
        var k = [Float](repeating: 0, count: batch * newCapacity * width)
        var v = k
        for b in 0..<batch {
            let count = length * width
            k.replaceSubrange((b * newCapacity * width)..<(b * newCapacity * width + count), with: keys[(b * capacity * width)..<(b * capacity * width + count)])
            v.replaceSubrange((b * newCapacity * width)..<(b * newCapacity * width + count), with: values[(b * capacity * width)..<(b * capacity * width + count)])
        }
        keys = k
        values = v
        capacity = newCapacity
    }

    /// Attention of new queries [B, Tq, heads·D] over everything cached (append the new keys first).
    /// The cache may hold fewer heads than the query (grouped-query attention). With a `window`, a query
    /// sees only the `window` positions up to its own (sliding-window attention, as Gemma's local layers).
    public func attend(query: Tensor, heads: Int, causal: Bool = true, scale: Float? = nil, window: Int? = nil) -> Tensor {
        let tq = query.shape[1]
        if let window, causal, length > window { return attend(query: query, heads: heads, scale: scale, window: window) }
        var out = [Float](repeating: 0, count: query.count)
        query.storage.withUnsafeBufferPointer { q in
            keys.withUnsafeBufferPointer { k in
                values.withUnsafeBufferPointer { v in
                    out.withUnsafeMutableBufferPointer { o in
                        Attention.attend(q: q.baseAddress!, k: k.baseAddress!, v: v.baseAddress!, out: o.baseAddress!,
                                         batch: batch, tq: tq, tk: length, keyStride: capacity * width, width: query.shape[2],
                                         heads: heads, keyWidth: width, mask: nil, causal: causal, queryOffset: length - tq, scale: scale)
                    }
                }
            }
        }
        return Tensor(shape: query.shape, storage: out)
    }

    /// Sliding-window attention: a single query reads only the last `window` positions; several queries
    /// get a band mask (causal, and no further back than `window` − 1 positions).
    private func attend(query: Tensor, heads: Int, scale: Float?, window: Int) -> Tensor {
        let tq = query.shape[1]
        var out = [Float](repeating: 0, count: query.count)
        let first = tq == 1 ? length - window : 0
        let tk = length - first
        var mask: Tensor?
        if tq > 1 {
            let offset = length - tq
            var band = [Float](repeating: -.infinity, count: tq * tk)
            for i in 0..<tq {
                let position = offset + i
                for j in max(0, position - window + 1)...position { band[i * tk + j] = 0 }
            }
            mask = Tensor(shape: [tq, tk], storage: band)
        }
        query.storage.withUnsafeBufferPointer { q in
            keys.withUnsafeBufferPointer { k in
                values.withUnsafeBufferPointer { v in
                    out.withUnsafeMutableBufferPointer { o in
                        Attention.attend(q: q.baseAddress!, k: k.baseAddress! + first * width, v: v.baseAddress! + first * width, out: o.baseAddress!,  // checked: the cache holds more than the window, the query is non-empty
                                         batch: batch, tq: tq, tk: tk, keyStride: capacity * width, width: query.shape[2],
                                         heads: heads, keyWidth: width, mask: mask, causal: false, queryOffset: 0, scale: scale)
                    }
                }
            }
        }
        return Tensor(shape: query.shape, storage: out)
    }
}
