import ChorusTensor
import Foundation
import Testing

@Suite struct MatMulTests {
    /// Deterministic values with no special structure.
    func values(_ count: Int, seed: Int) -> [Float] {
        (0..<count).map { Float(sin(Double($0 * 7 + seed) * 0.37)) }
    }

    func naive(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n { for p in 0..<k { c[i * n + j] += a[i * k + p] * b[p * n + j] } } }
        return c
    }

    func transpose(_ x: [Float], rows: Int, cols: Int) -> [Float] {
        var t = [Float](repeating: 0, count: x.count)
        for r in 0..<rows { for c in 0..<cols { t[c * rows + r] = x[r * cols + c] } }
        return t
    }

    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func sgemmMatchesTheNaiveProductWithTransposes(transposeA: Bool, transposeB: Bool) {
        let (m, k, n) = (7, 13, 5)
        let a = values(m * k, seed: 1), b = values(k * n, seed: 2)
        let expected = naive(a, b, m: m, k: k, n: n)
        let ta = transposeA ? Tensor(shape: [k, m], storage: transpose(a, rows: m, cols: k)) : Tensor(shape: [m, k], storage: a)
        let tb = transposeB ? Tensor(shape: [n, k], storage: transpose(b, rows: k, cols: n)) : Tensor(shape: [k, n], storage: b)
        let c = MatMul.matmul(ta, tb, transposeA: transposeA, transposeB: transposeB)
        #expect(c.shape == [m, n])
        #expect(c.maxAbsDifference(Tensor(shape: [m, n], storage: expected)).value < 1e-5)
    }

    @Test(arguments: [false, true])
    func oneRowProductsGoThroughSgemvAndAgree(transposeB: Bool) {
        let (k, n) = (37, 11)
        let a = values(k, seed: 6), b = values(k * n, seed: 7)
        let expected = naive(a, b, m: 1, k: k, n: n)
        let tb = transposeB ? Tensor(shape: [n, k], storage: transpose(b, rows: k, cols: n)) : Tensor(shape: [k, n], storage: b)
        let c = MatMul.matmul(Tensor(shape: [1, k], storage: a), tb, transposeB: transposeB)
        #expect(c.maxAbsDifference(Tensor(shape: [1, n], storage: expected)).value < 1e-5)
        let y = MatMul.linear(Tensor(shape: [1, 1, k], storage: a), weight: Tensor(shape: [n, k], storage: transpose(b, rows: k, cols: n)),
                              bias: Tensor(shape: [n], storage: [Float](repeating: 1, count: n)))
        #expect(y.shape == [1, 1, n])
        #expect(zip(y.storage, expected).allSatisfy { abs($0 - ($1 + 1)) < 1e-5 })
    }

    @Test func linearIsXTimesWeightTransposedPlusBias() {
        let x = Tensor(shape: [2, 3, 4], storage: values(24, seed: 3))
        let weight = Tensor(shape: [5, 4], storage: values(20, seed: 4))
        let bias = Tensor(shape: [5], storage: values(5, seed: 5))
        let y = MatMul.linear(x, weight: weight, bias: bias)
        #expect(y.shape == [2, 3, 5])
        let expected = naive(x.storage, transpose(weight.storage, rows: 5, cols: 4), m: 6, k: 4, n: 5)
        for r in 0..<6 { for c in 0..<5 { #expect(abs(y.storage[r * 5 + c] - (expected[r * 5 + c] + bias.storage[c])) < 1e-5) } }
    }

    /// Panel widths this CPU runs: 16 (AVX2) and 32 (AVX-512) where it has them.
    static let panelWidths: [Int32] = [16, 32].filter { Linear(weight: Tensor(shape: [1, 1], storage: [1]), bias: nil)
        .packedForProducts(columns: $0).packed != nil }

    /// The widths to ask for: under `CHORUS_CPU=plain` none runs, and asking for 16 must give the plain layer.
    static let widthsToAskFor: [Int32] = CPULevel.chosen == .plain ? [16] : panelWidths

    /// Rows that fill no block (5, 13), a depth over one 256-deep pass (300, 600), outputs that fill no
    /// panel (45, 70), with and without bias, a product large enough to be split across cores, and one
    /// whose packed rows (700 × 3072) are more than one 8 MiB row block.
    @Test(arguments: [(13, 37, 45, true), (5, 300, 70, false), (101, 600, 33, true), (400, 256, 200, true), (12, 32, 32, false),
                      (700, 3072, 20, true)])
    func packedLinearMatchesTheNaiveProduct(m: Int, k: Int, n: Int, withBias: Bool) throws {
        try #require(!Self.widthsToAskFor.isEmpty, "this CPU runs neither AVX2 + FMA nor AVX-512, so the packed product never runs")
        let x = Tensor(shape: [m, k], storage: values(m * k, seed: 8))
        let weight = Tensor(shape: [n, k], storage: values(n * k, seed: 9))
        let bias = withBias ? Tensor(shape: [n], storage: values(n, seed: 10)) : nil
        // In Double: at a depth of 3072 a float32 reference is itself off by a few 1e-4.
        var product = [Double](repeating: 0, count: m * n)
        for r in 0..<m {
            for c in 0..<n {
                var sum = 0.0
                for i in 0..<k { sum += Double(x.storage[r * k + i]) * Double(weight.storage[c * k + i]) }
                product[r * n + c] = sum
            }
        }
        // Relative to the largest output: these sines line up, so sums at depth 3072 reach 1500.
        let tolerance = 1e-5 * max(1, product.map(abs).max()!)
        for columns in Self.widthsToAskFor {
            let layer = Linear(weight: weight, bias: bias).packedForProducts(columns: columns)
            #expect((layer.packed != nil) == (CPULevel.chosen >= .avx2))
            let y = layer(x.reshaped([1, m, k]))
            #expect(y.shape == [1, m, n])
            var worst = 0.0
            for r in 0..<m {
                for c in 0..<n {
                    worst = max(worst, abs(Double(y.storage[r * n + c]) - product[r * n + c] - Double(bias?.storage[c] ?? 0)))
                }
            }
            #expect(worst < tolerance, "panels of \(columns): max error \(worst)")
        }
    }

    /// A packed layer keeps only the packed weight: one row still gives the plain product, and the weight
    /// reads back exactly.
    @Test func packedLinearKeepsOnlyItsPanelsAndGivesTheWeightBack() throws {
        try #require(!Self.widthsToAskFor.isEmpty, "this CPU runs neither AVX2 + FMA nor AVX-512, so the packed product never runs")
        let weight = Tensor(shape: [9, 7], storage: values(63, seed: 11))
        let bias = Tensor(shape: [9], storage: values(9, seed: 12))
        let x = Tensor(shape: [1, 7], storage: values(7, seed: 13))
        for columns in Self.widthsToAskFor {
            let packed = Linear(weight: weight, bias: bias).packedForProducts(columns: columns)
            #expect((packed.packed != nil) == (CPULevel.chosen >= .avx2) && packed.inFeatures == 7)
            #expect(packed.weight == weight)
            #expect(packed(x).maxAbsDifference(MatMul.linear(x, weight: weight, bias: bias)).value < 1e-5)
        }
    }
}
