import ChorusTensor
import Foundation
import Testing

/// The kernels at sizes large enough that `BLAS` cuts them over the cores (above a million multiply-adds),
/// against the slow definitions: every split must give the unsplit answer.
@Suite struct SplitKernelTests {
    @Test func openBLASRunsOneThreadAndChorusSplits() {
        _ = MatMul.matmul(Reference.tensor([2, 2], seed: 1), Reference.tensor([2, 2], seed: 2))
        if ProcessInfo.processInfo.environment["CHORUS_BLAS_THREADS"] == "openblas" {
            #expect(!BLAS.splits)
        } else {
            #expect(BLAS.splits && BLASInfo.threads == 1)
        }
    }

    /// Long A splits by rows, wide B by columns; transposes move where each piece starts.
    @Test(arguments: [(300, 40, 200), (40, 300, 200), (257, 263, 64)])
    func matmulMatchesTheDefinitionInEveryLayout(m: Int, n: Int, k: Int) {
        let a = Reference.tensor([m, k], seed: 3), b = Reference.tensor([k, n], seed: 4)
        let expected = Self.product(a, b)
        let at = Self.transposed(a), bt = Self.transposed(b)
        #expect(MatMul.matmul(a, b).isClose(to: expected, atol: 1e-3))
        #expect(MatMul.matmul(at, b, transposeA: true).isClose(to: expected, atol: 1e-3))
        #expect(MatMul.matmul(a, bt, transposeB: true).isClose(to: expected, atol: 1e-3))
        #expect(MatMul.matmul(at, bt, transposeA: true, transposeB: true).isClose(to: expected, atol: 1e-3))
    }

    @Test func linearOfOneRowAndOfManyMatchesTheDefinition() {
        let weight = Reference.tensor([600, 2000], seed: 5), bias = Reference.tensor([600], seed: 6)
        for rows in [1, 5] {
            let x = Reference.tensor([rows, 2000], seed: 7 + rows)
            var expected = Self.product(x, Self.transposed(weight))
            for r in 0..<rows { for o in 0..<600 { expected.storage[r * 600 + o] += bias.storage[o] } }
            #expect(MatMul.linear(x, weight: weight, bias: bias).isClose(to: expected, atol: 1e-3))
        }
    }

    @Test func batchedMatmulOverManyEntriesMatchesEachProduct() {
        let a = Reference.tensor([6, 70, 90], seed: 9), b = Reference.tensor([6, 90, 80], seed: 10)
        let y = MatMul.batchedMatmul(a, b)
        for i in 0..<6 {
            let ai = Tensor(shape: [70, 90], storage: Array(a.storage[(i * 6300)..<((i + 1) * 6300)]))
            let bi = Tensor(shape: [90, 80], storage: Array(b.storage[(i * 7200)..<((i + 1) * 7200)]))
            let yi = Tensor(shape: [70, 80], storage: Array(y.storage[(i * 5600)..<((i + 1) * 5600)]))
            #expect(yi.isClose(to: Self.product(ai, bi), atol: 1e-3))
        }
    }

    /// 600 queries over 600 keys make two query blocks per head; causal blocks stop at their last row's key.
    @Test(arguments: [false, true])
    func blockedAttentionMatchesTheDefinition(causal: Bool) {
        let q = Reference.tensor([1, 600, 32], seed: 11), k = Reference.tensor([1, 640, 32], seed: 12), v = Reference.tensor([1, 640, 32], seed: 13)
        let mask = Tensor(shape: [600, 640], storage: (0..<(600 * 640)).map { $0 % 11 == 0 ? -1e9 : Float($0 % 5) * 0.05 })
        let y = Attention.attend(query: q, key: k, value: v, heads: 2, mask: mask, causal: causal, queryOffset: 40)
        #expect(y.isClose(to: Reference.attention(q, k, v, heads: 2, causal: causal, mask: mask), atol: 1e-4))
    }

    /// Below 256 keys a single query runs two matrix-vector products per head, the heads shared over the cores.
    @Test func singleQueryAttentionOverManyHeadsMatchesTheDefinition() {
        let q = Reference.tensor([4, 1, 1280], seed: 14), k = Reference.tensor([4, 250, 1280], seed: 15), v = Reference.tensor([4, 250, 1280], seed: 16)
        #expect(Attention.attend(query: q, key: k, value: v, heads: 20).isClose(to: Reference.attention(q, k, v, heads: 20, causal: false, mask: nil)))
    }

    /// A decoder step's cross-attention (one query per beam over 1500 frames) reads each key and value row
    /// once for every query and head, the rows cut over the cores; batch entries stay apart.
    @Test(arguments: [1, 5, 8])
    func fewQueryAttentionOverManyKeysMatchesTheDefinition(queries: Int) {
        let q = Reference.tensor([2, queries, 384], seed: 40), k = Reference.tensor([2, 1500, 384], seed: 41), v = Reference.tensor([2, 1500, 384], seed: 42)
        let y = Attention.attend(query: q, key: k, value: v, heads: 6)
        #expect(y.isClose(to: Reference.attention(q, k, v, heads: 6, causal: false, mask: nil), atol: 1e-5))
    }

    /// Key counts whose share of a core ends in a part-block of 16 (1001 keys: 500 and 501), a 48-wide head
    /// (three 16-lane chunks), and a 40-wide one, which the 16-lane kernel leaves to the Swift loops.
    @Test(arguments: [(3, 1001, 384, 8), (1, 257, 64, 1), (2, 300, 240, 6)])
    func fewQueryAttentionAtBlockAndLaneRemaindersMatchesTheDefinition(queries: Int, keys: Int, width: Int, heads: Int) {
        let q = Reference.tensor([1, queries, width], seed: 80), k = Reference.tensor([1, keys, width], seed: 81)
        let v = Reference.tensor([1, keys, width], seed: 82)
        let y = Attention.attend(query: q, key: k, value: v, heads: heads)
        #expect(y.isClose(to: Reference.attention(q, k, v, heads: heads, causal: false, mask: nil), atol: 1e-5))
    }

    /// Two strips of one map shared over the cores, for im2col convolutions and for the 1×1 one that reads
    /// the input in place; with two groups, one group per core.
    @Test(arguments: [(1, 3, 1), (2, 3, 2), (1, 1, 1)])
    func stripedConv2dMatchesTheDefinition(stride: Int, kernel: Int, groups: Int) {
        let x = Reference.tensor([1, 32, 40, 40], seed: 17), w = Reference.tensor([32, 32 / groups, kernel, kernel], seed: 18)
        let bias = Reference.tensor([32], seed: 19)
        let options = Conv2DOptions(stride: (stride, stride), padding: (kernel / 2, kernel / 2), groups: groups)
        let expected = Reference.conv2d(x, w, bias, stride: (stride, stride), padding: (kernel / 2, kernel / 2), dilation: (1, 1), groups: groups)
        #expect(Convolution.conv2d(x, weight: w, bias: bias, options: options).isClose(to: expected, atol: 1e-3))
    }

    /// Wide maps at unit stride run one product per tap over a padded copy of each strip: two samples,
    /// grouped, a non-square kernel with uneven padding, and a last strip shorter than the others (45 rows).
    /// The 8×8 map is too small for it and goes through im2col.
    @Test(arguments: [(2, 1, 3, 3, 1, 1, 45), (1, 2, 3, 3, 1, 1, 40), (1, 1, 3, 5, 0, 2, 45), (1, 1, 3, 3, 1, 1, 8)])
    func tapByTapConv2dMatchesTheDefinition(n: Int, groups: Int, kh: Int, kw: Int, padH: Int, padW: Int, size: Int) {
        let x = Reference.tensor([n, 16, size, size + 3], seed: 43), w = Reference.tensor([24, 16 / groups, kh, kw], seed: 44)
        let bias = Reference.tensor([24], seed: 45)
        let options = Conv2DOptions(padding: (padH, padW), groups: groups)
        let expected = Reference.conv2d(x, w, bias, stride: (1, 1), padding: (padH, padW), dilation: (1, 1), groups: groups)
        #expect(Convolution.conv2d(x, weight: w, bias: bias, options: options).isClose(to: expected, atol: 1e-3))
    }

    /// The kernels the fused conv1d has on this CPU: each direct block it runs (the AVX2 one on AVX-512
    /// machines too), and sgemm.
    static let kernels: [Conv1dKernel] = [.fastest, .sgemm] + supportedBlocks.map { .direct($0) }
    static let supportedBlocks = DirectBlock.allCases.filter(\.supported)

    /// Every path of the fused conv1d, each with the leaky ReLU, bias and residual: the direct kernels
    /// (6- and 8-channel blocks, partial blocks at the last channels and at the end of time, spans over the cores),
    /// and the sgemm fallback: one product per tap (up to 64 input channels), im2col time tiles over the
    /// cores (one long tile cut in two, or a short input cut narrower) and the few-output path.
    @Test(arguments: [(64, 64, 2000), (3, 8, 1001), (96, 128, 1200), (128, 96, 300), (32, 1, 5000), (7, 13, 37)],
          kernels)
    func fusedConv1dMatchesTheDefinition(shape: (Int, Int, Int), kernel: Conv1dKernel) throws {
        let (cin, cout, length) = shape
        let (taps, dilation) = (5, 2), padding = 4
        let x = Reference.tensor([1, cin, length], seed: 20), w = Reference.tensor([cout, cin, taps], seed: 21)
        let bias = Reference.tensor([cout], seed: 22), residual = Reference.tensor([1, cout, length], seed: 23)
        let leaky = Tensor(shape: x.shape, storage: x.storage.map { $0 < 0 ? $0 * 0.1 : $0 })
        var expected = Reference.conv2d(leaky.reshaped([1, cin, 1, length]), w.reshaped([cout, cin, 1, taps]), bias,
                                        stride: (1, 1), padding: (0, padding), dilation: (1, dilation), groups: 1).reshaped([1, cout, length])
        for i in 0..<expected.count { expected.storage[i] += residual.storage[i] }
        let y = Convolution.conv1dFused(x, weight: w, bias: bias, padding: padding, dilation: dilation, inputLeakySlope: 0.1,
                                        residual: residual, kernel: kernel)
        #expect(y.isClose(to: expected, atol: 1e-3))
        // Without the extras, and with the weight packed once beforehand as models keep it.
        let plain = Reference.conv2d(x.reshaped([1, cin, 1, length]), w.reshaped([cout, cin, 1, taps]), nil,
                                     stride: (1, 1), padding: (0, padding), dilation: (1, dilation), groups: 1).reshaped([1, cout, length])
        let packed: PackedConv1dWeight? = switch kernel {
        case .fastest: PackedConv1dWeight(w)
        case .sgemm: nil
        case .direct(let block): try #require(PackedConv1dWeight(w, block: block))
        }
        #expect(Convolution.conv1dFused(x, weight: w, padding: padding, dilation: dilation, packed: packed, kernel: kernel)
            .isClose(to: plain, atol: 1e-3))
    }

    /// A vocoder's upsampler: stride 4, kernel 8, padding 2.
    @Test func convTranspose1dMatchesTheScatter() {
        let x = Reference.tensor([1, 64, 700], seed: 24), w = Reference.tensor([64, 32, 8], seed: 25)
        let y = Convolution.convTranspose1d(x, weight: w, stride: 4, padding: 2)
        let expected = Reference.convTranspose2d(x.reshaped([1, 64, 1, 700]), w.reshaped([64, 32, 1, 8]), stride: (1, 4), padding: (0, 2),
                                                 outputPadding: (0, 0), groups: 1)
        #expect(y.shape == [1, 32, 2800])
        #expect(y.isClose(to: expected.reshaped([1, 32, 2800]), atol: 1e-3))
    }

    /// The phase-split upsampler the vocoders run (stride 8 kernel 16, stride 4 kernel 8, and a kernel that is
    /// not a multiple of its stride), against the scatter definition, with every block this CPU runs.
    @Test(arguments: [(8, 16, 4, 300), (4, 8, 2, 700), (3, 7, 1, 50), (2, 4, 0, 5)], supportedBlocks)
    func phaseSplitConvTranspose1dMatchesTheScatter(shape: (Int, Int, Int, Int), block: DirectBlock) throws {
        let (stride, kernel, padding, length) = shape
        let x = Reference.tensor([1, 20, length], seed: 26), w = Reference.tensor([20, 13, kernel], seed: 27)
        let bias = Reference.tensor([13], seed: 28)
        let packed = try #require(PackedConvTranspose1dWeight(w, stride: stride, padding: padding, block: block))
        let y = Convolution.convTranspose1d(x, packed: packed, bias: bias)
        let expected = Reference.convTranspose2d(x.reshaped([1, 20, 1, length]), w.reshaped([20, 13, 1, kernel]), stride: (1, stride),
                                                 padding: (0, padding), outputPadding: (0, 0), groups: 1)
        var withBias = expected.reshaped([1, 13, expected.shape[3]])
        for c in 0..<13 { for t in 0..<withBias.shape[2] { withBias.storage[c * withBias.shape[2] + t] += bias.storage[c] } }
        #expect(y.shape == withBias.shape)
        #expect(y.isClose(to: withBias, atol: 1e-3))
    }

    /// A HiFi-GAN stage through the tiled kernel: type 2 (x ← x + conv(leaky x)) and type 1 blocks, over a
    /// length that is not a whole number of tiles and one shorter than a block's reach, against the same
    /// blocks one convolution at a time on the sgemm path, with every block this CPU runs.
    @Test(arguments: [(32, 3000, false), (64, 1000, true), (8, 11, false), (48, 300, true)], supportedBlocks)
    func residualStageMatchesItsConvolutionsOneByOne(shape: (Int, Int, Bool), block: DirectBlock) throws {
        let (channels, length, typeOne) = shape
        let slope: Float = 0.1
        var seed = 30
        func conv(_ taps: Int, _ dilation: Int) -> ResidualStage.Conv {
            seed += 2
            return .init(weight: Reference.tensor([channels, channels, taps], seed: seed) * 0.2,
                         bias: Reference.tensor([channels], seed: seed + 1), dilation: dilation)
        }
        let blocks: [[ResidualStage.Step]] = [(3, [1, 3]), (7, [1, 3, 5])].map { taps, dilations in
            dilations.map { d in ResidualStage.Step(first: conv(taps, d), second: typeOne ? conv(taps, 1) : nil) }
        }
        let stage = try #require(ResidualStage(blocks: blocks, slope: slope, block: block))
        let x = Reference.tensor([1, channels, length], seed: 29)
        func sgemm(_ c: ResidualStage.Conv, _ input: Tensor, residual: Tensor?) -> Tensor {
            Convolution.conv1dFused(input, weight: c.weight, bias: c.bias, padding: (c.weight.shape[2] - 1) * c.dilation / 2,
                                    dilation: c.dilation, inputLeakySlope: slope, residual: residual, kernel: .sgemm)
        }
        var expected = Tensor(zeros: x.shape)
        for steps in blocks {
            var h = x
            for step in steps {
                if let second = step.second {
                    h = sgemm(second, sgemm(step.first, h, residual: nil), residual: h)
                } else {
                    h = sgemm(step.first, h, residual: h)
                }
            }
            expected = expected + h
        }
        #expect(stage(x).isClose(to: expected * (1 / Float(blocks.count)), atol: 2e-3))
    }

    /// A short input over many channels, the case the direct kernels split by blocks of output channels
    /// rather than in time (130 channels: the last piece has a partial block), against the sgemm path.
    @Test(arguments: supportedBlocks)
    func directConv1dOfAShortInputMatchesSgemm(block: DirectBlock) {
        let x = Reference.tensor([1, 64, 100], seed: 40), w = Reference.tensor([130, 64, 5], seed: 41)
        let bias = Reference.tensor([130], seed: 42)
        let fast = Convolution.conv1dFused(x, weight: w, bias: bias, padding: 2, inputLeakySlope: 0.2, kernel: .direct(block))
        let slow = Convolution.conv1dFused(x, weight: w, bias: bias, padding: 2, inputLeakySlope: 0.2, kernel: .sgemm)
        #expect(fast.isClose(to: slow, atol: 1e-3))
    }

    static func product(_ a: Tensor, _ b: Tensor) -> Tensor {
        let (m, k, n) = (a.shape[0], a.shape[1], b.shape[1])
        var out = [Float](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n {
            var sum = 0.0
            for e in 0..<k { sum += Double(a.storage[i * k + e]) * Double(b.storage[e * n + j]) }
            out[i * n + j] = Float(sum)
        } }
        return Tensor(shape: [m, n], storage: out)
    }

    static func transposed(_ a: Tensor) -> Tensor {
        let (r, c) = (a.shape[0], a.shape[1])
        return Tensor(shape: [c, r], storage: (0..<(r * c)).map { a.storage[($0 % r) * c + $0 / r] })
    }
}
