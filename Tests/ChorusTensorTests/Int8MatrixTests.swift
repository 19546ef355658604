import ChorusTensor
import Foundation
import Testing

/// int8 linears (Sources/CKernels/int8_gemm.c): the kernel against the same integer arithmetic written plainly,
/// and against float32 within the rounding of both factors.
@Suite struct Int8MatrixTests {
    static func values(_ count: Int, seed: Double) -> [Float] {
        (0..<count).map { Float(sin(Double($0) * 0.37 + seed)) * (1 + Float($0 % 7)) * (($0 % 53 == 0) ? 9 : 1) }
    }

    /// What the kernel computes, step by step: x's and W's codes per row and per 128 values, integer sums.
    static func reference(_ x: [Float], m: Int, k: Int, _ w: Int8Matrix, codes: [[Int]], bias: [Float]?) -> [Float] {
        var y = [Float](repeating: 0, count: m * w.rows)
        for b in 0..<m {
            for r in 0..<w.rows {
                var total: Float = 0
                for block in stride(from: 0, to: k, by: 128) {
                    let part = x[(b * k + block)..<(b * k + min(k, block + 128))]
                    let top = part.map(abs).max()!
                    guard top > 0 else { continue }
                    let scale = 127 / top
                    var sum = 0
                    for (i, v) in part.enumerated() { sum += Int(Int8((v * scale).rounded(.toNearestOrEven))) * codes[r][block + i] }
                    total += Float(sum) * (1 / scale) * w.inverseScale(row: r, column: block)
                }
                y[b * w.rows + r] = total + (bias?[r] ?? 0)
            }
        }
        return y
    }

    @Test(arguments: [(1, 64, 32), (3, 37, 33), (5, 512, 70), (12, 130, 1), (13, 256, 64), (100, 300, 45)])
    func productsAreTheIntegerArithmeticOfTheCodes(m: Int, k: Int, n: Int) throws {
        let weight = Tensor(shape: [n, k], storage: Self.values(n * k, seed: 1))
        guard Int8Matrix.supported else {
            #expect(Int8Matrix(quantizing: weight) == nil && !Linear(weight: weight, bias: nil).quantizedToInt8().isInt8)
            return
        }
        let w = try #require(Int8Matrix(quantizing: weight))
        let back = w.dequantized().storage
        var codes: [[Int]] = []
        var worst: Float = 0  // in steps of each block's grid (max |w| / 127)
        for r in 0..<n {
            codes.append((0..<k).map { Int((back[r * k + $0] / w.inverseScale(row: r, column: $0)).rounded()) })
            for i in 0..<k {
                let block = (r * k + i / 128 * 128)..<(r * k + min(k, i / 128 * 128 + 128))
                let step = weight.storage[block].map(abs).max()! / 127
                worst = max(worst, abs(back[r * k + i] - weight.storage[r * k + i]) / step)
            }
        }
        #expect(worst <= 0.5001, "a weight is \(worst) steps from its value")
        let x = Self.values(m * k, seed: 2), bias = Self.values(n, seed: 3)
        let y = w.timesTransposed(Tensor(shape: [m, k], storage: x), bias: Tensor(shape: [n], storage: bias))
        #expect(y.shape == [m, n])
        let expected = Self.reference(x, m: m, k: k, w, codes: codes, bias: bias)
        var error: Float = 0
        for i in 0..<(m * n) { error = max(error, abs(y.storage[i] - expected[i]) / max(1, abs(expected[i]))) }
        #expect(error < 1e-5, "relative error \(error) against the same integers")
    }

    @Test func anInt8LinearGivesTheFloatProductWithinTheRoundingOfBothFactors() {
        let (m, k, n) = (9, 384, 40)
        let weight = Tensor(shape: [n, k], storage: Self.values(n * k, seed: 4)), bias = Tensor(shape: [n], storage: Self.values(n, seed: 5))
        let linear = Linear(weight: weight, bias: bias), int8 = linear.quantizedToInt8()
        #expect(int8.isInt8 == Int8Matrix.supported && !linear.isInt8 && int8.bias == linear.bias)
        #expect(int8.inFeatures == k && int8.outFeatures == n)
        let x = Tensor(shape: [1, m, k], storage: Self.values(m * k, seed: 6))
        let (exact, approximate) = (linear(x), int8(x))
        #expect(approximate.shape == [1, m, n])
        // Each factor is within half a step (max / 127) of its value: |Δ(w·x)| ≤ (|x|·max|w| + |w|·max|x|) / 254.
        let (maxW, maxX) = (weight.storage.map(abs).max()!, x.storage.map(abs).max()!)
        for b in 0..<m {
            for r in 0..<n {
                var bound: Float = 0
                for i in 0..<k { bound += abs(x.storage[b * k + i]) * maxW + abs(weight.storage[r * k + i]) * maxX }
                let (e, a) = (exact.storage[b * n + r], approximate.storage[b * n + r])
                #expect(abs(e - a) <= bound / 254 * 1.01, "input \(b) output \(r): \(a) vs \(e)")
            }
        }
    }

    /// An input without int8 codes (a NaN, an infinity) gives NaN, as float32 products would spread it: no crash.
    @Test func anInputThatIsNotFiniteGivesNaN() throws {
        let w = Int8Matrix(quantizing: Tensor(shape: [3, 200], storage: Self.values(600, seed: 7)))
        guard let w else { #expect(!Int8Matrix.supported); return }
        for bad in [Float.nan, .infinity, -.infinity] {
            for at in [0, 130, 2 * 200 + 199] {  // the first value, one in a second block, the last row's last
                var x = Self.values(3 * 200, seed: 8)
                x[at] = bad
                let y = w.timesTransposed(Tensor(shape: [3, 200], storage: x), bias: nil)
                let allNaN = y.storage.allSatisfy { $0.isNaN }
                #expect(y.shape == [3, 3] && allNaN, "\(bad) at \(at)")
            }
        }
        let fine = w.timesTransposed(Tensor(shape: [3, 200], storage: Self.values(600, seed: 8)), bias: nil)
        let allFinite = fine.storage.allSatisfy { $0.isFinite }
        #expect(allFinite)
    }
}
