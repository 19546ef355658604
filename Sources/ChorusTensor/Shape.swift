/// Operations that move elements: permute, concat, split, slice, embedding lookup, upsampling.
extension Tensor {
    /// Reorders the dimensions: result.shape[i] = shape[order[i]].
    public func permuted(_ order: [Int]) -> Tensor {
        precondition(order.sorted() == Array(0..<rank), "permutation \(order) of a rank-\(rank) tensor")
        let newShape = order.map { shape[$0] }
        var strides = [Int](repeating: 1, count: rank)
        for d in stride(from: rank - 2, through: 0, by: -1) { strides[d] = strides[d + 1] * shape[d + 1] }
        let sourceStrides = order.map { strides[$0] }
        var out = [Float](repeating: 0, count: count)
        let inner = newShape.last ?? 1, innerStride = sourceStrides.last ?? 1
        storage.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                var index = [Int](repeating: 0, count: max(rank - 1, 0))
                var position = 0
                while position < count {
                    var offset = 0
                    for d in 0..<index.count { offset += index[d] * sourceStrides[d] }
                    for j in 0..<inner { dst[position + j] = src[offset + j * innerStride] }
                    position += inner
                    var d = index.count - 1
                    while d >= 0 {
                        index[d] += 1
                        if index[d] < newShape[d] { break }
                        index[d] = 0
                        d -= 1
                    }
                }
            }
        }
        return Tensor(shape: newShape, storage: out)
    }

    /// Joins tensors along `axis`; the other dimensions must agree.
    public static func concatenate(_ parts: [Tensor], axis: Int) -> Tensor {
        precondition(!parts.isEmpty, "concatenate needs at least one tensor")
        let first = parts[0]
        let outer = first.shape[..<axis].reduce(1, *)
        let inners = parts.map { $0.shape[axis...].reduce(1, *) }
        for part in parts {
            precondition(part.rank == first.rank && part.shape[..<axis] == first.shape[..<axis] && part.shape[(axis + 1)...] == first.shape[(axis + 1)...],
                         "concatenate along \(axis): \(part.shape) does not match \(first.shape)")
        }
        var out: [Float] = []
        out.reserveCapacity(parts.map(\.count).reduce(0, +))
        for o in 0..<outer {
            for (part, inner) in zip(parts, inners) {
                out.append(contentsOf: part.storage[(o * inner)..<((o + 1) * inner)])
            }
        }
        var shape = first.shape
        shape[axis] = parts.map { $0.shape[axis] }.reduce(0, +)
        return Tensor(shape: shape, storage: out)
    }

    /// Elements `range` of dimension `axis`.
    public func slice(axis: Int, _ range: Range<Int>) -> Tensor {
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[axis], "slice \(range) of dimension \(axis) (size \(shape[axis]))")
        let outer = shape[..<axis].reduce(1, *)
        let inner = shape[(axis + 1)...].reduce(1, *)
        var out: [Float] = []
        out.reserveCapacity(outer * range.count * inner)
        for o in 0..<outer {
            let start = (o * shape[axis] + range.lowerBound) * inner
            out.append(contentsOf: storage[start..<(start + range.count * inner)])
        }
        var newShape = shape
        newShape[axis] = range.count
        return Tensor(shape: newShape, storage: out)
    }

    /// Splits dimension `axis` into pieces of the given sizes (a fused QKV into Q, K and V, say).
    public func split(axis: Int, sizes: [Int]) -> [Tensor] {
        precondition(sizes.reduce(0, +) == shape[axis], "split sizes \(sizes) do not add up to \(shape[axis])")
        var start = 0
        return sizes.map { size in
            defer { start += size }
            return slice(axis: axis, start..<(start + size))
        }
    }

    /// Rows of a [vocabulary, width] table: ids → [ids.count, width].
    public func embedding(_ ids: [Int]) -> Tensor {
        let width = shape[1]
        var out = [Float](repeating: 0, count: ids.count * width)
        for (row, id) in ids.enumerated() {
            precondition(id >= 0 && id < shape[0], "id \(id) outside the table of \(shape[0])")
            out.replaceSubrange((row * width)..<((row + 1) * width), with: storage[(id * width)..<((id + 1) * width)])
        }
        return Tensor(shape: [ids.count, width], storage: out)
    }

    /// Nearest-neighbour upsampling of [N, C, H, W] by an integer factor (PyTorch's `nearest`).
    public func upsampleNearest(factor: Int) -> Tensor {
        upsampleNearest(height: shape[2] * factor, width: shape[3] * factor)
    }

    /// Nearest-neighbour resize of [N, C, H, W] to (height, width), PyTorch's `interpolate(mode="nearest",
    /// size=...)`: output pixel i reads input pixel ⌊i · in / out⌋.
    public func upsampleNearest(height ho: Int, width wo: Int) -> Tensor {
        let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
        let columns = (0..<wo).map { min(Int(Float($0) * (Float(w) / Float(wo))), w - 1) }
        var out = [Float](repeating: 0, count: n * c * ho * wo)
        storage.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for plane in 0..<(n * c) {
                    for y in 0..<ho {
                        let srcRow = plane * h * w + min(Int(Float(y) * (Float(h) / Float(ho))), h - 1) * w
                        let dstRow = plane * ho * wo + y * wo
                        for x in 0..<wo { dst[dstRow + x] = src[srcRow + columns[x]] }
                    }
                }
            }
        }
        return Tensor(shape: [n, c, ho, wo], storage: out)
    }

    /// [N, C, H, W] with zero rows added below and zero columns to the right (`F.pad(x, (0, right, 0, bottom))`).
    public func zeroPadded(bottom: Int, right: Int) -> Tensor {
        let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
        let (ho, wo) = (h + bottom, w + right)
        var out = [Float](repeating: 0, count: n * c * ho * wo)
        storage.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for plane in 0..<(n * c) {
                    for y in 0..<h {
                        for x in 0..<w { dst[(plane * ho + y) * wo + x] = src[(plane * h + y) * w + x] }
                    }
                }
            }
        }
        return Tensor(shape: [n, c, ho, wo], storage: out)
    }

    /// Bilinear resize of [N, C, H, W] to (height, width), PyTorch's `interpolate(mode="bilinear",
    /// align_corners=False)`: sample centres map back with half-pixel offsets, clamped at the border.
    public func upsampleBilinear(height ho: Int, width wo: Int) -> Tensor {
        let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
        func taps(_ outSize: Int, _ inSize: Int) -> [(Int, Int, Float)] {
            let scale = Float(inSize) / Float(outSize)
            return (0..<outSize).map { i in
                let source = max(0, (Float(i) + 0.5) * scale - 0.5)
                let lower = min(Int(source), inSize - 1)
                let upper = min(lower + 1, inSize - 1)
                return (lower, upper, source - Float(lower))
            }
        }
        let ys = taps(ho, h), xs = taps(wo, w)
        var out = [Float](repeating: 0, count: n * c * ho * wo)
        storage.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for plane in 0..<(n * c) {
                    let p = plane * h * w
                    for (y, (y0, y1, fy)) in ys.enumerated() {
                        for (x, (x0, x1, fx)) in xs.enumerated() {
                            let top = src[p + y0 * w + x0] * (1 - fx) + src[p + y0 * w + x1] * fx
                            let bottom = src[p + y1 * w + x0] * (1 - fx) + src[p + y1 * w + x1] * fx
                            dst[plane * ho * wo + y * wo + x] = top * (1 - fy) + bottom * fy
                        }
                    }
                }
            }
        }
        return Tensor(shape: [n, c, ho, wo], storage: out)
    }
}
