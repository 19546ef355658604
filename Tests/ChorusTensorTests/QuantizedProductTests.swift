import ChorusTensor
import Foundation
import Testing

/// Products of weights kept quantized against llama.cpp's own: weights quantized by ggml, activations
/// quantized and products computed by the CPU backend's quantize_row_q8_* and ggml_vec_dot_* functions
/// (scripts/fixtures/make_quant_product_fixtures.py), on every instruction set this CPU has.
@Suite struct QuantizedProductTests {
    struct Case {
        let type: GGMLType
        let rows: Int, batch: Int
        let weight: QuantizedMatrix
        let bytes: [UInt8]
        let activations: Tensor
        let codes: [[Int]], scales: [[Float]], sums: [[Int]]?, offsets: [[Float]]?
        let expected: [[Float]]
    }

    static let cases: [Case] = {
        let path = (GGUFFileTests.folder as NSString).appendingPathComponent("quant_products.json")
        let json = try! JSONSerialization.jsonObject(with: FileManager.default.contents(atPath: path)!) as! [String: Any]
        let columns = json["columns"] as! Int
        return (json["cases"] as! [[String: Any]]).map { c in
            let type = GGMLType.allCases.first { $0.description == c["type"] as! String }!
            let rows = c["rows"] as! Int, batch = c["batch"] as! Int
            let bytes = [UInt8](Data(base64Encoded: c["weight"] as! String)!)
            let floats = { (key: String) in (c[key] as? [[Double]])?.map { $0.map { Float($0) } } }
            return Case(type: type, rows: rows, batch: batch,
                        weight: QuantizedMatrix(type: type, rows: rows, columns: columns, blocks: bytes)!, bytes: bytes,
                        activations: Tensor(shape: [batch, columns], storage: floats("activations")!.flatMap { $0 }),
                        codes: c["codes"] as! [[Int]], scales: floats("scales")!, sums: c["sums"] as? [[Int]],
                        offsets: floats("offsets"), expected: floats("expected")!)
        }
    }()

    /// Every instruction set the kernels run at this CPU level; 0 (float32 products of the dequantized weight)
    /// only under `CHORUS_CPU=plain`, where no kernel runs.
    static let levels: [Int32] = QuantizedMatrix.kernelLevel >= 1 ? Array(1...QuantizedMatrix.kernelLevel) : [0]

    @Test func theFixturesCoverEveryTypeWithAKernel() {
        #expect(Set(Self.cases.map(\.type)) == [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4_K, .q5_K, .q6_K])
        #expect((QuantizedMatrix.kernelLevel >= 1) == (CPULevel.chosen >= .avx2), "AVX2 or more: the kernels must run")
    }

    @Test func activationsQuantizeToLlamaCppsCodesScalesAndSums() {
        for c in Self.cases {
            let kind = ActivationKind(weight: c.type)!
            let q = QuantizedActivations(kind, c.activations, columns: c.activations.shape[1])
            let perRow = q.columns, perScale = q.columns / kind.block
            for b in 0..<c.batch {
                #expect(q.codes[(b * perRow)..<((b + 1) * perRow)].map(Int.init) == c.codes[b], "\(c.type) row \(b): codes")
                #expect(Array(q.scales[(b * perScale)..<((b + 1) * perScale)]) == c.scales[b], "\(c.type) row \(b): scales")
                if let sums = c.sums {
                    let n = sums[b].count
                    #expect(q.sums[(b * n)..<((b + 1) * n)].map(Int.init) == sums[b], "\(c.type) row \(b): sums")
                }
                if let offsets = c.offsets {
                    let n = offsets[b].count
                    #expect(Array(q.offsets[(b * n)..<((b + 1) * n)]) == offsets[b], "\(c.type) row \(b): offsets")
                }
            }
        }
    }

    /// Within float32 rounding of llama.cpp: the integer block sums are the same, only the order in which
    /// the scaled block sums are added differs, so the bound is a few ulps of Σ|w·a|.
    @Test(arguments: levels) func productsMatchLlamaCppsVecDot(level: Int32) {
        for c in Self.cases {
            let y = c.weight.timesTransposed(c.activations, level: level)
            let w = c.weight.dequantized()
            for b in 0..<c.batch {
                for r in 0..<c.rows {
                    var magnitude: Float = 0
                    for k in 0..<c.weight.columns { magnitude += abs(w.storage[r * c.weight.columns + k] * c.activations.storage[b * c.weight.columns + k]) }
                    let error = abs(y.storage[b * c.rows + r] - c.expected[b][r])
                    // Level 0 multiplies float32 inputs, llama.cpp their 8-bit codes: within that rounding.
                    #expect(error <= (level == 0 ? 1e-2 : 2e-6) * magnitude, "\(c.type) level \(level) [\(b), \(r)]: \(y.storage[b * c.rows + r]) vs llama.cpp \(c.expected[b][r])")
                }
            }
        }
    }

    /// Every batch size takes its own path through the kernels (panels of 8 weight rows against 4 or 8 input
    /// rows at a time, Q8_0 tiles of 4 × 4, a single input row in two chains of blocks), and chunks of rows
    /// split across cores: all give each row's product alone, up to the order of the float additions.
    @Test(arguments: levels) func batchesAndStackedPartsGiveEachRowsOwnProduct(level: Int32) {
        let columns = Self.cases[0].weight.columns
        var inputs: [Float] = []
        for i in 0..<9 { inputs += Self.cases[i % Self.cases.count].activations.storage[0..<columns] }
        let x = Tensor(shape: [9, columns], storage: inputs)
        let parts = Self.cases.map(\.weight)
        let stacked = QuantizedMatrix.product(parts, x, level: level)
        #expect(stacked.shape == [9, parts.reduce(0) { $0 + $1.rows }])
        var column = 0
        for part in parts {
            for b in 0..<9 {
                let alone = part.timesTransposed(Tensor(shape: [1, columns], storage: Array(inputs[(b * columns)..<((b + 1) * columns)])), level: level)
                for r in 0..<part.rows {
                    let (together, single) = (stacked.storage[b * stacked.shape[1] + column + r], alone.storage[r])
                    #expect(abs(together - single) <= 4e-6 * max(1, abs(single)), "\(part.type) input \(b) row \(r): \(together) vs \(single)")
                }
            }
            column += part.rows
        }
    }

    /// Prompts take panels of 8 weight rows of at most 2048 columns, 4 or 8 tokens at a time: 11 rows (a full
    /// panel and a part), 2560 columns (two panels whose shares add) and 13 tokens (tiles and a part tile) give
    /// each row the product a decoded token gets alone (the row kernels matched to llama.cpp above).
    @Test(arguments: levels) func panelsAcrossWideMatricesGiveEachRowsOwnProduct(level: Int32) {
        let (rows, pieces, tokens) = (11, 5, 13)
        for c in Self.cases {
            // Row r joins fixture rows r, r + 1, … (mod 6): whole rows of blocks, so still a valid matrix.
            let rowBytes = c.weight.rowBytes, narrow = c.weight.columns, columns = narrow * pieces
            var bytes: [UInt8] = []
            for r in 0..<rows {
                for piece in 0..<pieces {
                    let source = (r + piece) % c.rows
                    bytes += c.bytes[(source * rowBytes)..<((source + 1) * rowBytes)]
                }
            }
            let wide = QuantizedMatrix(type: c.type, rows: rows, columns: columns, blocks: bytes)!
            var inputs: [Float] = []
            for t in 0..<tokens {
                for piece in 0..<pieces {
                    let source = (t + 2 * piece) % c.batch
                    inputs += c.activations.storage[(source * narrow)..<((source + 1) * narrow)].map { $0 * Float(1 + piece) }
                }
            }
            let together = wide.timesTransposed(Tensor(shape: [tokens, columns], storage: inputs), level: level)
            #expect(together.shape == [tokens, rows])
            let w = wide.dequantized().storage
            for t in 0..<tokens {
                let alone = wide.timesTransposed(Tensor(shape: [1, columns], storage: Array(inputs[(t * columns)..<((t + 1) * columns)])), level: level)
                for r in 0..<rows {
                    var magnitude: Float = 0
                    for k in 0..<columns { magnitude += abs(w[r * columns + k] * inputs[t * columns + k]) }
                    let (batched, single) = (together.storage[t * rows + r], alone.storage[r])
                    #expect(abs(batched - single) <= 4e-6 * magnitude, "\(c.type) level \(level) token \(t) row \(r): \(batched) vs \(single)")
                }
            }
        }
    }

    @Test func permutedRowsMoveWholeAndDequantizeAsBefore() {
        let w = Self.cases.first { $0.type == .q4_K }!.weight
        let reversed = w.permutingRows { w.rows - 1 - $0 }
        #expect(reversed.dequantized().storage == w.dequantizedRows(Array((0..<w.rows).reversed())).storage)
        #expect(w.dequantizedRows([2], scale: 2).storage == w.dequantizedRows([2]).storage.map { $0 * 2 })
    }

    @Test func matricesThatAreNotWholeBlocksAreRefused() {
        #expect(QuantizedMatrix(type: .q4_K, rows: 1, columns: 128, blocks: [UInt8](repeating: 0, count: 72)) == nil)
        #expect(QuantizedMatrix(type: .q8_0, rows: 2, columns: 32, blocks: [UInt8](repeating: 0, count: 34)) == nil)
        #expect(QuantizedMatrix(type: .f16, rows: 1, columns: 32, blocks: [UInt8](repeating: 0, count: 64)) == nil)
    }
}

