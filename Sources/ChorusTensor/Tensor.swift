/// A dense Float32 tensor in row-major order. Reshape is free (the storage is shared copy-on-write);
/// operations that move data (transpose, slice across rows) make a new tensor.
public struct Tensor: Sendable, Equatable {
    public private(set) var shape: [Int]
    public var storage: [Float]

    public init(shape: [Int], storage: [Float]) {
        precondition(shape.reduce(1, *) == storage.count, "shape \(shape) needs \(shape.reduce(1, *)) elements, got \(storage.count)")
        self.shape = shape
        self.storage = storage
    }

    public init(zeros shape: [Int]) {
        self.init(shape: shape, storage: [Float](repeating: 0, count: shape.reduce(1, *)))
    }

    public var count: Int { storage.count }
    public var rank: Int { shape.count }

    /// The same elements under another shape; one dimension may be -1.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var resolved = newShape
        if let unknown = newShape.firstIndex(of: -1) {
            let known = newShape.filter { $0 != -1 }.reduce(1, *)
            resolved[unknown] = count / max(known, 1)
        }
        return Tensor(shape: resolved, storage: storage)
    }

    /// Largest absolute difference and where it is (flat index), for comparing against references.
    public func maxAbsDifference(_ other: Tensor) -> (value: Float, index: Int) {
        precondition(shape == other.shape, "shapes differ: \(shape) vs \(other.shape)")
        var worst: Float = 0
        var at = 0
        for i in 0..<count {
            let d = abs(storage[i] - other.storage[i])
            if d > worst || d.isNaN { worst = d; at = i }
        }
        return (worst, at)
    }
}

extension Array where Element == Float {
    /// `count` floats left unset, for buffers written whole before anything reads them (im2col columns,
    /// sgemm outputs with beta 0, which OpenBLAS stores without reading): zeroing them first is a wasted
    /// pass over memory.
    @inlinable
    public static func unset(_ count: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
    }
}
