import CKernels
import Dispatch
import Foundation

/// Which kernel conv1dFused runs: the fastest this CPU has, always sgemm (the fallback other CPUs take),
/// or the direct kernels with a given block (so that tests cover the AVX2 block on AVX-512 machines too).
public enum Conv1dKernel: Sendable, Equatable {
    case fastest
    case sgemm
    case direct(DirectBlock)
}

/// The register block of the direct kernels (Sources/CKernels/conv_block.h), which a packed weight is laid
/// out for: output channels × positions per block.
public enum DirectBlock: Int32, Sendable, CaseIterable {
    /// 6 × 16 in 12 ymm registers.
    case avx2 = 6
    /// 8 × 32 in 16 zmm registers: the same FMAs in half the instructions, and no empty rows at 32, 64 or
    /// 128 channels.
    case avx512 = 8

    var rows: Int { Int(rawValue) }
    /// Positions per block, the alignment worth giving a span of output.
    var cols: Int { self == .avx512 ? 32 : 16 }
    /// Whether this CPU runs it.
    public var supported: Bool { chorus_conv_block_rows_supported(rawValue) != 0 }

    /// The fastest block this CPU runs, or nil where the direct kernels do not run (another CPU, or
    /// CHORUS_DIRECT_CONV=0). CHORUS_DIRECT_CONV=avx2 keeps the AVX2 block on AVX-512 machines, for A/B runs.
    public static let best: DirectBlock? = {
        switch ProcessInfo.processInfo.environment["CHORUS_DIRECT_CONV"] {
        case "0": return nil
        case "avx2": return DirectBlock.avx2.supported ? .avx2 : nil
        default: return DirectBlock(rawValue: chorus_conv_block_rows_best())
        }
    }()
}

/// A conv1d weight laid out once for the direct kernels (Sources/CKernels), so that each call does not
/// repack it; a model keeps one beside each weight it convolves with many times.
public struct PackedConv1dWeight: Sendable {
    let storage: [Float]
    let cout: Int, cin: Int, taps: Int
    let block: DirectBlock

    /// nil where the direct kernels do not run on this CPU (or do not run `block`).
    public init?(_ weight: Tensor, block: DirectBlock? = DirectBlock.best) {
        guard let block, block.supported, weight.rank == 3 else { return nil }
        let (o, i, k) = (Int32(weight.shape[0]), Int32(weight.shape[1]), Int32(weight.shape[2]))
        var packed = [Float].unset(chorus_conv1d_packed_count(o, i, k, block.rawValue))
        weight.storage.withUnsafeBufferPointer { w in
            packed.withUnsafeMutableBufferPointer { chorus_conv1d_pack(w.baseAddress!, o, i, k, block.rawValue, $0.baseAddress!) }
        }
        (storage, cout, cin, taps, self.block) = (packed, Int(o), Int(i), Int(k), block)
    }

    func matches(_ weight: Tensor, block: DirectBlock) -> Bool { weight.shape == [cout, cin, taps] && block == self.block }
}

/// Stride-1 conv1d as register blocks of output channels × steps (DirectBlock: AVX2 + FMA, or AVX-512).
/// sgemm reaches half of this on the shapes vocoders have: at 32 channels one product per tap has K = 32,
/// and im2col's K = 32·taps columns cost as much to pack as to multiply.
enum DirectConvolution {
    /// x [N, cin, length] → [N, cout, lo]: residual + bias + weight ⊛ leaky(x), zero-padded, time split over the cores.
    static func conv1d(_ x: Tensor, packed: PackedConv1dWeight, bias: Tensor?, padding: Int, dilation: Int,
                       inputLeakySlope: Float?, residual: Tensor?, lo: Int) -> Tensor {
        let (n, cin, length) = (x.shape[0], x.shape[1], x.shape[2])
        let (cout, taps) = (packed.cout, packed.taps)
        let workers = BLAS.pieces(work: cout * lo * cin * taps)
        // Long outputs are cut in time; short ones (a text encoder's 100 tokens) by blocks of output channels.
        let byChannels = workers > 1 && lo < 128 * workers
        let (rows, cols) = (packed.block.rows, packed.block.cols)
        let blocks = (cout + rows - 1) / rows
        let pieces = byChannels ? min(workers, blocks) : workers
        let span = byChannels ? (blocks + pieces - 1) / pieces * rows : ((lo + pieces - 1) / pieces + cols - 1) / cols * cols
        let scratchCount = chorus_conv1d_scratch_count(Int32(cin), Int32(taps), Int32(dilation))
        var out = [Float].unset(n * cout * lo)
        x.storage.withUnsafeBufferPointer { input in
            packed.storage.withUnsafeBufferPointer { w in
                out.withUnsafeMutableBufferPointer { output in
                    withOptionalPointer(bias) { biasPointer in
                        withOptionalPointer(residual) { residualPointer in
                            for sample in 0..<n {
                                Parallel.perform(iterations: pieces) { piece in
                                    // This piece's channels [c0, c1) and steps [t0, t1).
                                    let (c0, c1) = byChannels ? (piece * span, min(cout, (piece + 1) * span)) : (0, cout)
                                    let (t0, t1) = byChannels ? (0, lo) : (piece * span, min(lo, (piece + 1) * span))
                                    guard c0 < c1, t0 < t1 else { return }
                                    let rows = c0 * lo + sample * cout * lo
                                    let args = chorus_conv1d_args(
                                        x: input.baseAddress! + sample * cin * length, x_stride: length, length: length,
                                        cin: Int32(cin), padding: Int32(padding), leaky: inputLeakySlope == nil ? 0 : 1,
                                        leaky_slope: inputLeakySlope ?? 0, packed: w.baseAddress! + c0 * cin * taps,
                                        block_rows: packed.block.rawValue, cout: Int32(c1 - c0),
                                        taps: Int32(taps), dilation: Int32(dilation), bias: biasPointer.map { $0 + c0 },
                                        residual: residualPointer.map { $0 + rows }, out: output.baseAddress! + rows, out_stride: lo)
                                    var scratch = [Float].unset(scratchCount)
                                    let status = withUnsafePointer(to: args) { a in
                                        scratch.withUnsafeMutableBufferPointer { chorus_conv1d_direct(a, t0, t1, $0.baseAddress!) }
                                    }
                                    precondition(status == 0, "chorus_conv1d_direct rejected cin \(cin), cout \(cout), taps \(taps), dilation \(dilation)")
                                }
                            }
                        }
                    }
                }
            }
        }
        return Tensor(shape: [n, cout, lo], storage: out)
    }

    /// Runs `kernel` over [0, count) cut into `pieces` spans (multiples of `align`) on the cores, each with its
    /// own zeroed scratch. A kernel rejecting its arguments is a bug in the caller, not bad input: it stops.
    static func inSpans(_ count: Int, pieces: Int, align: Int = 1, scratch: Int, _ what: @autoclosure () -> String,
                        _ kernel: (Int, Int, UnsafeMutablePointer<Float>) -> Int32) {
        let span = ((count + pieces - 1) / pieces + align - 1) / align * align
        Parallel.perform(iterations: pieces) { piece in
            let start = piece * span, end = min(count, start + span)
            guard start < end else { return }
            var buffer = [Float](repeating: 0, count: scratch)
            let status = buffer.withUnsafeMutableBufferPointer { kernel(start, end, $0.baseAddress!) }
            precondition(status == 0, "\(what()) rejected its arguments")
        }
    }

    static func withOptionalPointer<R>(_ t: Tensor?, _ body: (UnsafePointer<Float>?) -> R) -> R {
        guard let t else { return body(nil) }
        return t.storage.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}

/// A transposed conv1d (a vocoder's upsampler) split into its `stride` phases, each an ordinary
/// convolution of the input that the direct kernels run: output position o = q·stride + r − padding
/// takes taps r, r + stride, … of the kernel at input q, q − 1, …. No column matrix (at 64 channels ×
/// 16 taps × 16 576 steps, col2im's input was 17 MB) and no scatter of overlapping columns.
public struct PackedConvTranspose1dWeight: Sendable {
    /// Every phase's packed weight back to back, and where each starts with how many taps it has.
    let storage: [Float]
    let phases: [(offset: Int, taps: Int)]
    let cin: Int, cout: Int, kernel: Int, stride: Int, padding: Int
    let block: DirectBlock

    /// weight [cin, cout, kernel]; nil where the direct kernels do not run or the shape is not one they take.
    public init?(_ weight: Tensor, stride: Int, padding: Int, block: DirectBlock? = DirectBlock.best) {
        guard let block, block.supported, weight.rank == 3, stride > 0, padding >= 0, padding < weight.shape[2] else { return nil }
        let (cin, cout, kernel) = (weight.shape[0], weight.shape[1], weight.shape[2])
        var storage: [Float] = [], phases: [(offset: Int, taps: Int)] = []
        for r in 0..<stride {
            let taps = r < kernel ? (kernel - r + stride - 1) / stride : 0
            guard taps > 0 else { return nil }
            // Tap j meets input q − (taps − 1) + j, so it is kernel index r + (taps − 1 − j)·stride.
            var w = [Float].unset(cout * cin * taps)
            for o in 0..<cout { for c in 0..<cin { for j in 0..<taps {
                w[(o * cin + c) * taps + j] = weight.storage[(c * cout + o) * kernel + r + (taps - 1 - j) * stride]
            } } }
            guard let packed = PackedConv1dWeight(Tensor(shape: [cout, cin, taps], storage: w), block: block) else { return nil }
            phases.append((storage.count, taps))
            storage += packed.storage
        }
        (self.storage, self.phases, self.cin, self.cout, self.kernel, self.stride, self.padding) = (storage, phases, cin, cout, kernel, stride, padding)
        self.block = block
    }
}

extension Convolution {
    /// convTranspose1d through the phases of `packed`: x [1, cin, L] → [1, cout, (L − 1)·stride − 2·padding + kernel].
    public static func convTranspose1d(_ x: Tensor, packed p: PackedConvTranspose1dWeight, bias: Tensor? = nil) -> Tensor {
        precondition(x.rank == 3 && x.shape[0] == 1 && x.shape[1] == p.cin, "convTranspose1d: \(x.shape) for \(p.cin) input channels")
        precondition(bias.map { $0.count == p.cout } ?? true, "convTranspose1d: bias of \(bias!.count) for \(p.cout) channels")
        let length = x.shape[2]
        let lo = (length - 1) * p.stride - 2 * p.padding + p.kernel
        precondition(lo > 0, "convTranspose1d: no output for \(length) steps")
        var out = [Float].unset(p.cout * lo)
        x.storage.withUnsafeBufferPointer { input in
            out.withUnsafeMutableBufferPointer { output in
                DirectConvolution.withOptionalPointer(bias) { biasPointer in
                    p.storage.withUnsafeBufferPointer { w in
                        let phases = p.phases.map { chorus_phase(packed: w.baseAddress! + $0.offset, taps: Int32($0.taps)) }
                        phases.withUnsafeBufferPointer { phases in
                            let args = chorus_conv_transpose1d_args(x: input.baseAddress!, length: length, cin: Int32(p.cin), cout: Int32(p.cout),
                                                                    stride: Int32(p.stride), padding: Int32(p.padding),
                                                                    block_rows: p.block.rawValue, phases: phases.baseAddress!,
                                                                    bias: biasPointer, out: output.baseAddress!, out_length: lo)
                            withUnsafePointer(to: args) { a in
                                let steps = chorus_conv_transpose1d_steps(a)
                                DirectConvolution.inSpans(steps, pieces: min(BLAS.pieces(work: p.cout * lo * p.cin * p.kernel / p.stride), max(1, steps / 128)),
                                                          scratch: chorus_conv_transpose1d_scratch_count(a),
                                                          "chorus_conv_transpose1d_direct: \(p.cin) → \(p.cout), stride \(p.stride)") { q0, q1, scratch in
                                    chorus_conv_transpose1d_direct(a, q0, q1, scratch)
                                }
                            }
                        }
                    }
                }
            }
        }
        return Tensor(shape: [1, p.cout, lo], storage: out)
    }
}
