import CKernels
import ChorusTensor
import Foundation
import Testing

@Suite struct KernelTests {
    @Test(arguments: [
        // (stride, padding, dilation, groups, kernel)
        ((1, 1), (0, 0), (1, 1), 1, 3), ((2, 2), (1, 1), (1, 1), 1, 3), ((1, 2), (2, 1), (2, 1), 1, 3),
        ((1, 1), (0, 0), (1, 1), 1, 1), ((1, 1), (1, 1), (1, 1), 2, 3), ((1, 1), (1, 1), (1, 1), 4, 3),
        ((2, 3), (4, 5), (1, 2), 1, 3), ((3, 3), (0, 0), (1, 1), 1, 2),
    ])
    func conv2dMatchesTheDefinition(stride: (Int, Int), padding: (Int, Int), dilation: (Int, Int), groups: Int, kernel: Int) {
        let x = Reference.tensor([2, 4, 9, 8], seed: 1)
        let w = Reference.tensor([8, 4 / groups, kernel, kernel], seed: 2)
        let bias = Reference.tensor([8], seed: 3)
        let options = Conv2DOptions(stride: stride, padding: padding, dilation: dilation, groups: groups)
        let expected = Reference.conv2d(x, w, bias, stride: stride, padding: padding, dilation: dilation, groups: groups)
        #expect(Convolution.conv2d(x, weight: w, bias: bias, options: options).isClose(to: expected))
        let residual = Reference.tensor(expected.shape, seed: 4)
        #expect(Convolution.conv2d(x, weight: w, bias: bias, options: options, residual: residual).isClose(to: expected + residual))
    }

    /// One filter per channel (VITS's duration predictor), at strides and dilations where taps fall off both ends.
    @Test(arguments: [(1, 1, 1), (1, 3, 3), (2, 1, 1), (2, 2, 4), (3, 9, 0)])
    func depthwiseConv1dMatchesTheGroupedDefinition(stride: Int, dilation: Int, padding: Int) {
        let x = Reference.tensor([2, 6, 19], seed: 9), w = Reference.tensor([6, 1, 3], seed: 10), bias = Reference.tensor([6], seed: 11)
        let y = Convolution.conv1d(x, weight: w, bias: bias, stride: stride, padding: padding, dilation: dilation, groups: 6)
        let expected = Reference.conv2d(x.reshaped([2, 6, 1, 19]), w.reshaped([6, 1, 1, 3]), bias, stride: (1, stride),
                                        padding: (0, padding), dilation: (1, dilation), groups: 6)
        #expect(y.isClose(to: expected.reshaped([2, 6, expected.shape[3]])))
    }

    @Test func conv1dIsAConv2dOfHeightOne() {
        let x = Reference.tensor([1, 3, 20], seed: 4)
        let w = Reference.tensor([5, 3, 3], seed: 5)
        let y = Convolution.conv1d(x, weight: w, stride: 2, padding: 1)
        let expected = Reference.conv2d(x.reshaped([1, 3, 1, 20]), w.reshaped([5, 3, 1, 3]), nil, stride: (1, 2), padding: (0, 1), dilation: (1, 1), groups: 1)
        #expect(y.shape == [1, 5, 10])
        #expect(y.isClose(to: expected.reshaped([1, 5, 10])))
    }

    @Test(arguments: [((2, 2), (1, 1), (1, 1), 1), ((2, 2), (0, 0), (0, 0), 1), ((3, 1), (1, 0), (2, 0), 2)])
    func convTransposeMatchesTheScatter(stride: (Int, Int), padding: (Int, Int), outputPadding: (Int, Int), groups: Int) {
        let x = Reference.tensor([2, 4, 5, 6], seed: 6)
        let w = Reference.tensor([4, 3, 4, 3], seed: 7)
        let y = Convolution.convTranspose2d(x, weight: w, options: Conv2DOptions(stride: stride, padding: padding, groups: groups), outputPadding: outputPadding)
        #expect(y.isClose(to: Reference.convTranspose2d(x, w, stride: stride, padding: padding, outputPadding: outputPadding, groups: groups)))
    }

    @Test(arguments: [false, true])
    func attentionMatchesTheDefinition(causal: Bool) {
        let q = Reference.tensor([2, 5, 12], seed: 8), k = Reference.tensor([2, 7, 12], seed: 9), v = Reference.tensor([2, 7, 12], seed: 10)
        let mask = Tensor(shape: [5, 7], storage: (0..<35).map { $0 % 6 == 0 ? -1e9 : Float($0 % 3) * 0.1 })
        let y = Attention.attend(query: q, key: k, value: v, heads: 3, mask: mask, causal: causal, queryOffset: 2)
        #expect(y.isClose(to: Reference.attention(q, k, v, heads: 3, causal: causal, mask: mask)))
    }

    @Test func kvCacheStepByStepEqualsFullCausalAttention() {
        let (t, width, heads) = (9, 8, 2)
        let q = Reference.tensor([1, t, width], seed: 11), k = Reference.tensor([1, t, width], seed: 12), v = Reference.tensor([1, t, width], seed: 13)
        let full = Attention.attend(query: q, key: k, value: v, heads: heads, causal: true)
        var cache = KVCache(batch: 1, width: width, capacity: 2)  // small, so it has to grow
        var rows: [Float] = []
        // A prompt of 4 tokens, then one token at a time.
        for (start, end) in [(0, 4), (4, 5), (5, 6), (6, 7), (7, 8), (8, 9)] {
            func rowsOf(_ x: Tensor) -> Tensor { Tensor(shape: [1, end - start, width], storage: Array(x.storage[(start * width)..<(end * width)])) }
            cache.append(keys: rowsOf(k), values: rowsOf(v))
            rows += cache.attend(query: rowsOf(q), heads: heads).storage
        }
        #expect(cache.length == 9 && cache.capacity >= 9)
        #expect(Tensor(shape: [1, t, width], storage: rows).isClose(to: full, atol: 1e-5))
    }

    @Test func layerNormRMSNormAndGroupNormMatchTheirFormulas() {
        let x = Reference.tensor([3, 16], seed: 14)
        let w = Reference.tensor([16], seed: 15), b = Reference.tensor([16], seed: 16)
        let ln = x.layerNorm(weight: w, bias: b, eps: 1e-5)
        let rms = x.rmsNorm(weight: w, eps: 1e-6)
        for r in 0..<3 {
            let row = x.storage[(r * 16)..<(r * 16 + 16)].map(Double.init)
            let mean = row.reduce(0, +) / 16
            let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 16
            let meanSquare = row.map { $0 * $0 }.reduce(0, +) / 16
            for i in 0..<16 {
                let expectedLN = (row[i] - mean) / (variance + 1e-5).squareRoot() * Double(w.storage[i]) + Double(b.storage[i])
                let expectedRMS = row[i] / (meanSquare + 1e-6).squareRoot() * Double(w.storage[i])
                #expect(abs(Double(ln.storage[r * 16 + i]) - expectedLN) < 1e-5)
                #expect(abs(Double(rms.storage[r * 16 + i]) - expectedRMS) < 1e-5)
            }
        }
        let image = Reference.tensor([2, 6, 4, 4], seed: 17)
        let gw = Reference.tensor([6], seed: 18), gb = Reference.tensor([6], seed: 19)
        let gn = image.groupNorm(groups: 3, weight: gw, bias: gb, eps: 1e-6)
        // Guided diffusion's scale-shift norm, SiLU after it: y·(1 + scale) + shift per sample and channel.
        let scaleShift = Reference.tensor([2, 12], seed: 20)
        let modulated = image.groupNorm(groups: 3, weight: gw, bias: gb, eps: 1e-6, scaleShift: scaleShift, activation: .silu)
        for n in 0..<2 { for g in 0..<3 {
            let base = (n * 6 + g * 2) * 16
            let group = image.storage[base..<(base + 32)].map(Double.init)
            let mean = group.reduce(0, +) / 32
            let sd = (group.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 32 + 1e-6).squareRoot()
            for i in 0..<32 {
                let c = g * 2 + i / 16
                let expected = (group[i] - mean) / sd * Double(gw.storage[c]) + Double(gb.storage[c])
                #expect(abs(Double(gn.storage[base + i]) - expected) < 1e-5)
                let film = expected * (1 + Double(scaleShift.storage[n * 12 + c])) + Double(scaleShift.storage[n * 12 + 6 + c])
                #expect(abs(Double(modulated.storage[base + i]) - film / (1 + exp(-film))) < 1e-5)
            }
        } }
    }

    @Test func softmaxRowsSumToOneAndMaskedRowsAreZero() {
        var x = Tensor(shape: [2, 3], storage: [1000, 1001, 1002, -.infinity, -.infinity, -.infinity])
        x.softmaxLastDimension()
        let e = [exp(-2.0), exp(-1.0), 1.0], total = e.reduce(0, +)
        for i in 0..<3 { #expect(abs(Double(x.storage[i]) - e[i] / total) < 1e-6) }
        #expect(Array(x.storage[3...]) == [0, 0, 0])
    }

    @Test func activationsMatchTheirDefinitions() {
        let inputs: [Float] = [-6, -2.5, -1, -0.3, 0, 0.0001, 0.3, 1, 2.5, 6]
        func check(_ activation: Activation, _ f: (Double) -> Double, tolerance: Double = 2e-6) {
            let y = Tensor(shape: [inputs.count], storage: inputs).applying(activation)
            for (x, value) in zip(inputs, y.storage) {
                #expect(abs(Double(value) - f(Double(x))) <= tolerance * max(1, abs(f(Double(x)))), "\(activation)(\(x))")
            }
        }
        check(.gelu) { 0.5 * $0 * (1 + erf($0 / 2.0.squareRoot())) }
        check(.geluTanh) { 0.5 * $0 * (1 + tanh((2 / Double.pi).squareRoot() * ($0 + 0.044715 * $0 * $0 * $0))) }
        check(.quickGelu) { $0 / (1 + exp(-1.702 * $0)) }
        check(.silu) { $0 / (1 + exp(-$0)) }
        check(.tanh) { tanh($0) }
        check(.sigmoid) { 1 / (1 + exp(-$0)) }
        check(.relu) { max($0, 0) }
        #expect(Activation(configName: "gelu_pytorch_tanh") == .geluTanh && Activation(configName: "swish") == .silu)
    }

    @Test func leakyReLUScalesOnlyNegatives() {
        var x = Tensor(shape: [4], storage: [-2, -0.5, 0, 3])
        x.leakyReLU(slope: 0.1)
        #expect(x.storage == [-0.2, -0.05, 0, 3])
    }

    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func batchedMatmulIsAMatmulPerBatchEntry(transposeA: Bool, transposeB: Bool) {
        let a = Reference.tensor([3, transposeA ? 4 : 5, transposeA ? 5 : 4], seed: 20)
        let b = Reference.tensor([3, transposeB ? 6 : 4, transposeB ? 4 : 6], seed: 21)
        let c = MatMul.batchedMatmul(a, b, transposeA: transposeA, transposeB: transposeB)
        #expect(c.shape == [3, 5, 6])
        for i in 0..<3 {
            let single = MatMul.matmul(a.slice(axis: 0, i..<(i + 1)).reshaped([a.shape[1], a.shape[2]]),
                                       b.slice(axis: 0, i..<(i + 1)).reshaped([b.shape[1], b.shape[2]]),
                                       transposeA: transposeA, transposeB: transposeB)
            #expect(c.slice(axis: 0, i..<(i + 1)).reshaped([5, 6]).isClose(to: single, atol: 1e-6))
        }
        let shared = MatMul.batchedMatmul(Reference.tensor([2, 5, 4], seed: 22), Reference.tensor([4, 6], seed: 23))
        #expect(shared.shape == [2, 5, 6])
    }

    @Test func broadcastingFollowsNumPy() {
        let a = Tensor(shape: [2, 1, 3], storage: [1, 2, 3, 4, 5, 6])
        let b = Tensor(shape: [4, 1], storage: [10, 20, 30, 40])
        let sum = a + b
        #expect(sum.shape == [2, 4, 3])
        #expect(Array(sum.storage.prefix(6)) == [11, 12, 13, 21, 22, 23])
        #expect(Array(sum.storage.suffix(3)) == [44, 45, 46])
        #expect((a * Tensor(shape: [3], storage: [1, 0, -1])).storage == [1, 0, -3, 4, 0, -6])
        #expect(Tensor.broadcastShape([2, 3], [4, 3]) == nil)
    }
}

@Suite struct FastExpTests {
    /// Within 2 ulp-ish (3e-7 relative) of libm over the range softmax and the activations use, and
    /// saturating instead of overflowing outside it.
    @Test func matchesLibmAcrossTheRange() {
        var worst: Float = 0
        for i in 0...200_000 {
            let x = -87 + Float(i) * (175.0 / 200_000)
            let reference = expf(x)
            worst = max(worst, abs(fastExp(x) - reference) / reference)
        }
        #expect(worst < 3e-7, "worst relative error \(worst)")
        #expect(fastExp(0) == 1)
        #expect(fastExp(-.infinity) < 1e-37 && fastExp(-1e30) >= 0)
        #expect(fastExp(1000).isFinite && fastExp(1000) > 1e38)
    }
}

@Suite struct VectorKernelTests {
    @Test func fastErfAndFastTanhMatchLibmAcrossTheRange() {
        var erfWorst: Float = 0, tanhWorst: Float = 0
        for i in 0...200_000 {
            let x = -10 + Float(i) * (20.0 / 200_000)
            erfWorst = max(erfWorst, abs(fastErf(x) - erff(x)))
            tanhWorst = max(tanhWorst, abs(fastTanh(x) - tanhf(x)) / max(abs(tanhf(x)), 1e-30))
        }
        #expect(erfWorst < 1e-6, "worst absolute erf error \(erfWorst)")
        #expect(tanhWorst < 2e-4, "worst relative tanh error \(tanhWorst)")  // only near 0.0004, where 1 − e cancels
        #expect(fastErf(0) == 0 && fastErf(30) == 1 && fastErf(-30) == -1)
        #expect(fastTanh(1e-6) == 1e-6 && fastTanh(50) == 1 && fastTanh(-50) == -1)
    }

    /// SiLU and quick GELU over whole 16-lane vectors and a ragged tail (the AVX-512 path where the CPU has it), out to
    /// inputs where e^−x leaves the normal floats.
    @Test func siluAndQuickGeluOfALongRunMatchTheirDefinitions() {
        var inputs = Reference.tensor([37], seed: 44).storage.map { $0 * 12 }
        inputs[3] = 95
        inputs[20] = -95
        for (activation, alpha) in [(Activation.silu, 1.0), (.quickGelu, 1.702)] {
            let y = Tensor(shape: [37], storage: inputs).applying(activation)
            for (x, value) in zip(inputs, y.storage) {
                let expected = Double(x) / (1 + exp(-alpha * Double(x)))
                #expect(abs(Double(value) - expected) <= 2e-6 * max(1, abs(expected)), "\(activation)(\(x)) = \(value), not \(expected)")
            }
        }
    }

    /// Rows long enough for the eight-lane loops and with a ragged tail, against Double arithmetic.
    @Test(arguments: [1, 7, 8, 1003])
    func softmaxOfLongRowsMatchesDoubleArithmetic(width: Int) {
        let x = Reference.tensor([3, width], seed: 40) * 8
        var y = x
        y.softmaxLastDimension()
        for row in 0..<3 {
            let values = (0..<width).map { Double(x.storage[row * width + $0]) }
            let top = values.max()!, total = values.map { exp($0 - top) }.reduce(0, +)
            for i in 0..<width {
                #expect(abs(Double(y.storage[row * width + i]) - exp(values[i] - top) / total) < 1e-6)
            }
        }
    }

    @Test func groupNormOverLongGroupsMatchesDoubleArithmetic() {
        let x = Reference.tensor([2, 4, 25, 41], seed: 41) + 3  // 2050 values a group, offset from zero
        let (w, b) = (Reference.tensor([4], seed: 42), Reference.tensor([4], seed: 43))
        let y = x.groupNorm(groups: 2, weight: w, bias: b, eps: 1e-5)
        let spatial = 25 * 41
        for n in 0..<2 {
            for g in 0..<2 {
                let start = (n * 4 + g * 2) * spatial
                let values = (start..<(start + 2 * spatial)).map { Double(x.storage[$0]) }
                let mean = values.reduce(0, +) / Double(values.count)
                let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)
                for i in stride(from: 0, to: values.count, by: 97) {
                    let c = g * 2 + i / spatial
                    let expected = (values[i] - mean) / (variance + 1e-5).squareRoot() * Double(w.storage[c]) + Double(b.storage[c])
                    #expect(abs(Double(y.storage[start + i]) - expected) < 1e-5)
                }
            }
        }
    }

    /// One query per batch entry goes through matrix-vector products instead of sgemm.
    @Test func singleQueryAttentionMatchesTheDefinition() {
        let q = Reference.tensor([2, 1, 12], seed: 44), k = Reference.tensor([2, 9, 12], seed: 45), v = Reference.tensor([2, 9, 12], seed: 46)
        #expect(Attention.attend(query: q, key: k, value: v, heads: 3).isClose(to: Reference.attention(q, k, v, heads: 3, causal: false, mask: nil)))
    }

    @Test func linearKeepingHalvesAgreesWithFloatBelowAndAboveTheRowLimit() throws {
        let raw = Reference.tensor([40, 45], seed: 52)  // 45 columns: the 16-wide, 8-wide and scalar loops
        let weight = Tensor(shape: raw.shape, storage: raw.storage.map { Float(Float16($0)) })
        let plain = Linear(weight: weight, bias: Reference.tensor([40], seed: 53))
        let halved = plain.keepingHalves(when: true)
        #expect(halved.halves?.rows == 40 && halved.halves?.columns == 45)
        #expect(Linear(weight: raw, bias: nil).keepingHalves(when: true).halves == nil)  // not a float16 checkpoint
        for rows in [1, 3, HalfMatrix.rowsWorthIt + 1] {
            let x = Reference.tensor([1, rows, 45], seed: 54 + rows)
            let y = halved(x)
            #expect(y.shape == [1, rows, 40])
            #expect(y.isClose(to: plain(x), atol: 1e-5))
        }
    }

    /// The C kernel (AVX-512) takes weight rows two to four at a time, as many as its accumulators allow for
    /// up to eight input rows: every remainder of both, more than eight input rows, columns past the 16-lane
    /// edge, and a matrix large enough to split over the cores.
    @Test func halfMatrixKernelMatchesADoubleReferenceAtEveryRemainder() throws {
        for (rows, columns) in [(7, 45), (4, 16), (1, 3), (1031, 300)] {
            let raw = Reference.tensor([rows, columns], seed: 60 + rows)
            let weight = Tensor(shape: raw.shape, storage: raw.storage.map { Float(Float16($0)) })
            let half = try #require(HalfMatrix(exactly: weight))
            for batch in 1...9 {
                let x = Reference.tensor([batch, columns], seed: 70 + batch)
                let y = half.timesTransposed(x)
                #expect(y.shape == [batch, rows])
                var worst = 0.0
                for b in 0..<batch {
                    for r in 0..<rows {
                        var exact = 0.0
                        for c in 0..<columns { exact += Double(weight.storage[r * columns + c]) * Double(x.storage[b * columns + c]) }
                        worst = max(worst, abs(Double(y.storage[b * rows + r]) - exact))
                    }
                }
                #expect(worst < 1e-4, "rows \(rows), columns \(columns), batch \(batch): off by \(worst)")
            }
        }
    }

    @Test func halfMatrixKernelRefusesArgumentsOutOfRange() {
        let w = [UInt16](repeating: 0x3C00, count: 8), x = [Float](repeating: 1, count: 4)
        var y = [Float](repeating: 0, count: 2)
        #expect(chorus_half_gemv(w, 2, 4, x, 1, 0, 3, &y) == -1)  // rows past the matrix
        #expect(chorus_half_gemv(w, 2, 4, x, 0, 0, 2, &y) == -1)  // no input rows
        #expect(chorus_half_gemv(w, 2, 4, x, 1, 2, 1, &y) == -1)  // an empty range backwards
        if chorus_half_gemv_supported() != 0 {
            #expect(chorus_half_gemv(w, 2, 4, x, 1, 0, 2, &y) == 0)
            #expect(y == [4, 4])  // 1.0 (0x3C00) · 1 over 4 columns
        }
    }

    @Test func halfMatrixTakesOnlyHalfValuesAndMultipliesLikeFloat() throws {
        let raw = Reference.tensor([37, 21], seed: 47)
        #expect(HalfMatrix(exactly: raw) == nil)  // random floats are not halves
        let weight = Tensor(shape: raw.shape, storage: raw.storage.map { Float(Float16($0)) })
        let half = try #require(HalfMatrix(exactly: weight))
        for batch in [1, 3] {
            let x = Reference.tensor([batch, 21], seed: 48 + batch)
            #expect(half.timesTransposed(x).isClose(to: MatMul.matmul(x, weight, transposeB: true), atol: 1e-5))
        }
    }
}
