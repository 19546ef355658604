import CBLAS

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
        var out = [Float](repeating: 0, count: batch * tq * width)
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
        if tq == 1 && mask == nil {
            // One query (a decoder step): two matrix-vector products per head. sgemm would pack the
            // head's keys and values for a single row, which costs more than reading them once.
            let keys = causal ? min(tk, queryOffset + 1) : tk
            var scores = [Float](repeating: 0, count: keys)
            scores.withUnsafeMutableBufferPointer { s in
                for b in 0..<batch {
                    for h in 0..<heads {
                        let qh = q + b * width + h * d
                        let kh = k + b * keyStride + (h / group) * d
                        let vh = v + b * keyStride + (h / group) * d
                        cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(keys), Int32(d), alpha, kh, Int32(keyWidth), qh, 1, 0, s.baseAddress!, 1)
                        softmaxRow(s.baseAddress!, keys)
                        cblas_sgemv(CblasRowMajor, CblasTrans, Int32(keys), Int32(d), 1, vh, Int32(keyWidth), s.baseAddress!, 1,
                                    0, out + b * width + h * d, 1)
                    }
                }
            }
            return
        }
        var scores = Tensor(zeros: [tq, tk])
        for b in 0..<batch {
            for h in 0..<heads {
                let qh = q + b * tq * width + h * d
                let kh = k + b * keyStride + (h / group) * d
                let vh = v + b * keyStride + (h / group) * d
                scores.storage.withUnsafeMutableBufferPointer { s in
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(tq), Int32(tk), Int32(d),
                                alpha, qh, Int32(width), kh, Int32(keyWidth), 0, s.baseAddress!, Int32(tk))
                    if let mask {
                        let offset = mask.rank == 3 ? b * tq * tk : 0
                        mask.storage.withUnsafeBufferPointer { m in
                            for i in 0..<(tq * tk) { s[i] += m[offset + i] }
                        }
                    }
                    if causal {
                        for i in 0..<tq {
                            let last = queryOffset + i
                            if last + 1 < tk { for j in (last + 1)..<tk { s[i * tk + j] = -.infinity } }
                        }
                    }
                }
                scores.softmaxLastDimension()
                scores.storage.withUnsafeBufferPointer { s in
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(tq), Int32(d), Int32(tk),
                                1, s.baseAddress!, Int32(tk), vh, Int32(keyWidth), 0, out + b * tq * width + h * d, Int32(width))
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
    /// The cache may hold fewer heads than the query (grouped-query attention).
    public func attend(query: Tensor, heads: Int, causal: Bool = true, scale: Float? = nil) -> Tensor {
        let tq = query.shape[1]
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
}
