import CKernels

/// A weight matrix [rows, columns] kept in GGML's quantized blocks, multiplied the way llama.cpp's CPU
/// backend multiplies it: the input rows are quantized to 8 bits (`QuantizedActivations`) and each block's
/// product is an integer sum, scaled once per block (CKernels' quant_matmul.c). A decoded token then reads
/// the bytes the file holds (4.5–8.5 bits a weight) instead of float32's 32, and computes the same integers
/// llama.cpp does.
public struct QuantizedMatrix: Sendable {
    public let type: GGMLType
    public let rows: Int
    public let columns: Int
    /// rows × rowBytes bytes of blocks, each row `columns / blockSize` blocks.
    let blocks: [UInt8]
    /// How its products quantize their input.
    let activation: ActivationKind

    /// The types with a product kernel (the others are dequantized to float32 by the loaders).
    public static func multiplies(_ type: GGMLType) -> Bool { ActivationKind(weight: type) != nil }

    /// `blocks` as a GGUF file stores a [rows, columns] tensor of `type`; nil when the type has no kernel or
    /// the columns are not whole blocks.
    public init?(type: GGMLType, rows: Int, columns: Int, blocks: [UInt8]) {
        guard let activation = ActivationKind(weight: type), rows > 0, columns > 0, columns % type.blockSize == 0,
              blocks.count == rows * (columns / type.blockSize * type.typeSize) else { return nil }
        (self.type, self.rows, self.columns, self.blocks, self.activation) = (type, rows, columns, blocks, activation)
    }

    private init(_ other: QuantizedMatrix, blocks: [UInt8]) {
        (type, rows, columns, activation) = (other.type, other.rows, other.columns, other.activation)
        self.blocks = blocks
    }

    public var rowBytes: Int { columns / type.blockSize * type.typeSize }

    /// The matrix as float32, dequantized as ggml does.
    public func dequantized() -> Tensor { dequantizedRows(Array(0..<rows)) }

    /// Rows `ids` as float32 [ids.count, columns], times `scale` (a token embedding lookup: ggml's get_rows).
    public func dequantizedRows(_ ids: [Int], scale: Float = 1) -> Tensor {
        var out = [Float](repeating: 0, count: ids.count * columns)
        let (columns, rowBytes, type) = (columns, rowBytes, type)
        blocks.withUnsafeBytes { bytes in
            out.withUnsafeMutableBufferPointer { o in
                for (i, id) in ids.enumerated() {
                    precondition(id >= 0 && id < rows, "QuantizedMatrix: row \(id) of \(rows)")
                    let row = UnsafeRawBufferPointer(rebasing: bytes[(id * rowBytes)..<((id + 1) * rowBytes)])
                    GGMLBlocks.dequantize(type, row, into: o.baseAddress! + i * columns, count: columns)  // checked: inside the loop over ids, so out is not empty
                    if scale != 1 { for j in 0..<columns { o[i * columns + j] *= scale } }
                }
            }
        }
        return Tensor(shape: [ids.count, columns], storage: out)
    }

    /// Row `source(r)` of this matrix as row r (llama.cpp's q/k permutation undone, say): rows move whole,
    /// with their blocks.
    public func permutingRows(_ source: (Int) -> Int) -> QuantizedMatrix {
        var moved = [UInt8](repeating: 0, count: blocks.count)
        let rowBytes = rowBytes
        for r in 0..<rows {
            let from = source(r)
            moved.replaceSubrange((r * rowBytes)..<((r + 1) * rowBytes), with: blocks[(from * rowBytes)..<((from + 1) * rowBytes)])
        }
        return QuantizedMatrix(self, blocks: moved)
    }

    /// Which instruction set the kernels use: 2 AVX512-VNNI, 1 AVX2, 0 none (products then go through
    /// dequantized float32). `CHORUS_CPU=avx2` keeps AVX2 on a VNNI CPU.
    public static let kernelLevel: Int32 = chorus_quant_matmul_level()

    /// x [B, columns] → x·Wᵀ [B, rows] for stacked matrices (the rows of `parts` one after the other, each
    /// with its own type and the same columns), so q/k/v or gate/up share one quantization of x and one
    /// split over the cores. `level` is for tests.
    public static func product(_ parts: [QuantizedMatrix], _ x: Tensor, level: Int32 = kernelLevel) -> Tensor {
        let columns = parts[0].columns, batch = x.count / max(columns, 1)
        precondition(x.count == batch * columns && parts.allSatisfy { $0.columns == columns },
                     "QuantizedMatrix: input \(x.shape) for \(columns) columns")
        let total = parts.reduce(0) { $0 + $1.rows }
        guard level > 0 else {
            let weight = Tensor(shape: [total, columns], storage: parts.flatMap { $0.dequantized().storage })
            return MatMul.linear(x.reshaped([batch, columns]), weight: weight, bias: nil)
        }
        var quantized: [ActivationKind: QuantizedActivations] = [:]
        var starts: [Int] = [], start = 0
        for part in parts {
            if quantized[part.activation] == nil { quantized[part.activation] = QuantizedActivations(part.activation, x, columns: columns) }
            starts.append(start)
            start += part.rows
        }
        let activations = quantized
        var out = [Float](repeating: 0, count: batch * total)
        out.withUnsafeMutableBufferPointer { o in
            let y = o.baseAddress!  // checked: batch · total ≥ 1 (parts have rows, x has a row)
            // Each chunk of rows is worth a core from about 128 K weight·input products on.
            Parallel.chunks(total, minimumPerChunk: max(1, (1 << 17) / max(columns * batch, 1))) { range in
                for (index, part) in parts.enumerated() {
                    let start = starts[index]
                    let lower = max(range.lowerBound, start), upper = min(range.upperBound, start + part.rows)
                    guard lower < upper else { continue }
                    activations[part.activation]?.withRows { a in
                        part.blocks.withUnsafeBufferPointer { w in
                            var rows = a
                            let done = chorus_quant_matmul(level, Int32(part.type.rawValue), w.baseAddress!, part.rows, columns,  // checked: GGML type ids are small
                                                           &rows, Int32(batch), lower - start, upper - start, y + start, total)  // checked: batch is a sequence length
                            precondition(done == 0, "chorus_quant_matmul refused \(part.type) [\(part.rows), \(columns)] × \(batch)")
                        }
                    }
                }
            }
        }
        return Tensor(shape: [batch, total], storage: out)
    }

    /// x·Wᵀ for this matrix alone.
    public func timesTransposed(_ x: Tensor, level: Int32 = kernelLevel) -> Tensor { Self.product([self], x, level: level) }
}

/// How llama.cpp quantizes a product's input for each weight type (its `vec_dot_type`).
public enum ActivationKind: Int32, Sendable {
    case q8_0 = 8, q8_1 = 9, q8_K = 15

    /// The kind llama.cpp quantizes the input of a product with `weight` to; nil for types without a kernel.
    public init?(weight: GGMLType) {
        switch weight {
        case .q4_0, .q5_0, .q8_0: self = .q8_0
        case .q4_1, .q5_1: self = .q8_1
        case .q4_K, .q5_K, .q6_K: self = .q8_K
        default: return nil
        }
    }

    /// Values sharing one scale.
    public var block: Int { self == .q8_K ? 256 : 32 }
}

/// Rows of float32 quantized to int8 blocks as llama.cpp's quantize_row_q8_0 / q8_1 / q8_K do.
public struct QuantizedActivations: Sendable {
    public let kind: ActivationKind
    public let rows: Int
    public let columns: Int
    public private(set) var codes: [Int8]
    public private(set) var scales: [Float]
    /// Q8_1: each block's scale · Σ codes, rounded to a half.
    public private(set) var offsets: [Float]
    /// Q8_0: Σ codes per block; Q8_K: per 16 values.
    public private(set) var sums: [Int32]

    /// x [rows, columns] (any shape with that many values); columns a multiple of the kind's block.
    public init(_ kind: ActivationKind, _ x: Tensor, columns: Int) {
        precondition(columns > 0 && columns % kind.block == 0 && x.count % columns == 0,
                     "QuantizedActivations: \(x.shape) in rows of \(columns) for \(kind)")
        let rows = x.count / columns
        (self.kind, self.rows, self.columns) = (kind, rows, columns)
        codes = [Int8](repeating: 0, count: rows * columns)
        scales = [Float](repeating: 0, count: rows * columns / kind.block)
        offsets = kind == .q8_1 ? [Float](repeating: 0, count: rows * columns / 32) : []
        sums = kind == .q8_1 ? [] : [Int32](repeating: 0, count: rows * columns / (kind == .q8_K ? 16 : 32))
        let perSums = kind == .q8_K ? columns / 16 : columns / 32, perScale = columns / kind.block
        x.storage.withUnsafeBufferPointer { xs in
            codes.withUnsafeMutableBufferPointer { q in
                scales.withUnsafeMutableBufferPointer { s in
                    offsets.withUnsafeMutableBufferPointer { o in
                        sums.withUnsafeMutableBufferPointer { m in
                            // checked: rows ≥ 1 here (chunks of an empty range never run), so these are not empty
                            let (xs, q, s, o, m) = (xs.baseAddress!, q.baseAddress!, s.baseAddress!, o.baseAddress, m.baseAddress)  // checked: see above
                            Parallel.chunks(rows, minimumPerChunk: max(1, 32_768 / columns)) { range in
                                let n = range.count, r = range.lowerBound
                                let done = chorus_q8_quantize(kind.rawValue, xs + r * columns, n, columns, q + r * columns, s + r * perScale,
                                                              o.map { $0 + r * perScale }, m.map { $0 + r * perSums })
                                precondition(done == 0, "chorus_q8_quantize refused \(kind) rows of \(columns)")
                            }
                        }
                    }
                }
            }
        }
    }

    /// The C view of these rows, valid inside `body`.
    func withRows<R>(_ body: (chorus_q8_rows) -> R) -> R {
        codes.withUnsafeBufferPointer { q in
            scales.withUnsafeBufferPointer { s in
                offsets.withUnsafeBufferPointer { o in
                    sums.withUnsafeBufferPointer { m in
                        body(chorus_q8_rows(qs: q.baseAddress, scale: s.baseAddress, offset: o.baseAddress, sums: m.baseAddress))
                    }
                }
            }
        }
    }
}
