/// float32 and CTranslate2 int8 weights as Q8_0 blocks (32 int8 codes and one half-precision scale each,
/// llama.cpp's `block_q8_0`), so an int8 model multiplies through the same int8 × int8 → int32 kernels as a
/// GGUF file (VNNI where the CPU has it, AVX2 otherwise). A scale per 32 values, not per row, keeps an
/// outlier from flattening the rest of its row.
extension QuantizedMatrix {
    /// `weight` [rows, columns] quantized as llama.cpp's quantize_row_q8_0 does: d = max|x| / 127 rounded to a
    /// half, codes round(x / d). nil when the columns are not whole blocks of 32.
    public init?(quantizingToQ8_0 weight: Tensor) {
        guard weight.rank == 2, weight.shape[0] > 0, weight.shape[1] > 0, weight.shape[1] % 32 == 0 else { return nil }
        let (rows, columns) = (weight.shape[0], weight.shape[1])
        let q = QuantizedActivations(.q8_0, weight, columns: columns)  // the same rounding as a product's input
        self.init(q8_0Codes: q.codes, scales: q.scales, rows: rows, columns: columns)
    }

    /// A CTranslate2 int8 weight as its file keeps it: codes [rows, columns] with one scale a row, the value
    /// being code / scale. The codes move over unchanged; each block's d is 1 / scale rounded to a half
    /// (relative error ≤ 2⁻¹¹). nil when the columns are not whole blocks or a scale is not positive and finite.
    public init?(ctranslate2Codes codes: [Int8], rowScales: [Float], rows: Int, columns: Int) {
        guard rows > 0, columns > 0, columns % 32 == 0, codes.count == rows * columns, rowScales.count == rows,
              rowScales.allSatisfy({ $0.isFinite && $0 > 0 }) else { return nil }
        let perRow = columns / 32
        var scales = [Float](repeating: 0, count: rows * perRow)
        for r in 0..<rows { for b in 0..<perRow { scales[r * perRow + b] = 1 / rowScales[r] } }
        self.init(q8_0Codes: codes, scales: scales, rows: rows, columns: columns)
    }

    /// Blocks from codes and one scale per 32 codes, each scale stored as a half.
    private init?(q8_0Codes codes: [Int8], scales: [Float], rows: Int, columns: Int) {
        let blockCount = rows * columns / 32
        var blocks = [UInt8](repeating: 0, count: blockCount * 34)
        blocks.withUnsafeMutableBytes { out in
            codes.withUnsafeBytes { code in
                for b in 0..<blockCount {
                    out.storeBytes(of: Float16(scales[b]).bitPattern.littleEndian, toByteOffset: 34 * b, as: UInt16.self)
                    out.baseAddress!.advanced(by: 34 * b + 2).copyMemory(from: code.baseAddress! + 32 * b, byteCount: 32)  // checked: blockCount ≥ 1, so neither is empty
                }
            }
        }
        self.init(type: .q8_0, rows: rows, columns: columns, blocks: blocks)
    }
}

extension Linear {
    /// This layer with its weight as Q8_0 blocks in place of float32 (a quarter of the bytes): every product
    /// then quantizes its input to int8 and runs the integer kernels. Unchanged when the weight's columns are
    /// not whole blocks of 32, or it is already quantized.
    public func quantizedToInt8() -> Linear {
        guard quantized == nil, let matrix = QuantizedMatrix(quantizingToQ8_0: weight) else { return self }
        return Linear(weight: .quantized(matrix), bias: bias)
    }

    /// Whether products run on int8 weights.
    public var isInt8: Bool { quantized?.allSatisfy { $0.type == .q8_0 } ?? false }
}
