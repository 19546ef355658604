import CKernels
import Dispatch
import Synchronization

/// A 3×3 conv2d weight [cout, cin, 3, 3] transformed once for Winograd F(4×4, 3×3)
/// (Sources/CKernels/winograd_conv2d.c): 36 matrices [cout, cin], packed for the direct kernels' blocks.
/// It holds 4× the floats of the weight, which is why only models that run it many times keep one.
public struct WinogradConv2dWeight: Sendable {
    let storage: [Float]
    let cout: Int, cin: Int
    let block: DirectBlock

    /// nil for kernels other than 3×3, or where the direct kernels do not run on this CPU.
    public init?(_ weight: Tensor, block: DirectBlock? = DirectBlock.best) {
        guard let block, block.supported, weight.rank == 4, weight.shape[2] == 3, weight.shape[3] == 3 else { return nil }
        let (o, i) = (Int32(weight.shape[0]), Int32(weight.shape[1]))
        var packed = [Float].unset(chorus_winograd2d_packed_count(o, i, block.rawValue))
        let status = weight.storage.withUnsafeBufferPointer { w in
            packed.withUnsafeMutableBufferPointer { chorus_winograd2d_pack(w.baseAddress!, o, i, block.rawValue, $0.baseAddress!) }
        }
        guard status == 0 else { return nil }
        (storage, cout, cin, self.block) = (packed, Int(o), Int(i), block)
    }

    func matches(_ weight: Tensor) -> Bool { weight.shape == [cout, cin, 3, 3] }
}

extension DirectConvolution {
    /// Whether conv2d runs Winograd F(4×4, 3×3): a 3×3 kernel at unit stride and dilation, no groups, and
    /// rows of at least 16 outputs. Tiles go through the transforms 8 along a row at a time, so narrower maps
    /// would leave most of them empty (at 8 × 8 it loses to the direct kernels, 0.7×; at 16 × 16 it wins 1.0–1.6×).
    static func winogradApplies(kh: Int, kw: Int, wo: Int, options o: Conv2DOptions) -> Bool {
        DirectBlock.best != nil && kh == 3 && kw == 3 && o.stride == (1, 1) && o.dilation == (1, 1) && o.groups == 1 && wo >= 16
    }

    /// Whether transforming the weight on this call pays for itself. The transform writes 36·cin·cout
    /// floats; the multiply-adds it saves, 6.75·cin·cout per output position, repay that from about a
    /// thousand positions. Above 32 MiB the buffer comes fresh from the kernel on every call, and its page
    /// faults cost about four times more (Stable Diffusion's 1280-channel weights at 16 × 16 latents went
    /// from 4.1 s to 10.7 s a step when every 3×3 conv took this path).
    static func winogradPaysOnTheCall(cin: Int, cout: Int, positions: Int) -> Bool {
        positions >= (36 * cin * cout * MemoryLayout<Float>.size > 32 << 20 ? 4096 : 1024)
    }

    /// x [N, cin, h, w] → [N, cout, ho, wo]: residual + bias + weight ⊛ x, zero-padded; rows of 4×4 tiles
    /// shared out over the cores, each core taking the next row when it is done (these machines' cores
    /// are not equally fast from one moment to the next).
    static func winograd2d(_ x: Tensor, packed p: WinogradConv2dWeight, bias: Tensor?, padding: (Int, Int), residual: Tensor? = nil) -> Tensor {
        let (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let cout = p.cout
        precondition(cin == p.cin, "conv2d: input has \(cin) channels, the weight expects \(p.cin)")
        let (ho, wo) = (h + 2 * padding.0 - 2, w + 2 * padding.1 - 2)
        precondition(ho > 0 && wo > 0, "conv2d: a 3×3 kernel does not fit a padded \(h)×\(w) input")
        precondition(residual.map { $0.shape == [n, cout, ho, wo] } ?? true, "conv2d: residual \(residual!.shape) for [\(n), \(cout), \(ho), \(wo)]")
        let tileRows = (ho + 3) / 4
        let workers = BLAS.pieces(work: n * cout * ho * wo * cin * 9)
        // About four jobs per core, so that one slow core does not hold up the rest.
        let rowsPerJob = max(1, tileRows * n / (4 * workers))
        let jobsPerSample = (tileRows + rowsPerJob - 1) / rowsPerJob
        let jobs = n * jobsPerSample
        let next = Atomic<Int>(0)
        return conv2dOutput(x, packed: p.storage, block: p.block, cout: cout, kernel: (3, 3), padding: padding, bias: bias,
                            residual: residual, ho: ho, wo: wo) { args in
            let scratchCount = withUnsafePointer(to: args(0)) { chorus_winograd2d_scratch_count($0) }
            Parallel.perform(iterations: min(workers, jobs)) { _ in
                var scratch = [Float].unset(scratchCount)
                scratch.withUnsafeMutableBufferPointer { s in
                    while true {
                        let job = next.add(1, ordering: .relaxed).oldValue
                        guard job < jobs else { break }
                        let (sample, part) = job.quotientAndRemainder(dividingBy: jobsPerSample)
                        let (r0, r1) = (part * rowsPerJob, min(tileRows, (part + 1) * rowsPerJob))
                        let status = withUnsafePointer(to: args(sample)) {
                            chorus_winograd2d($0, Int32(r0), Int32(r1), s.baseAddress!)
                        }
                        precondition(status == 0, "chorus_winograd2d rejected \(cin) → \(cout) over \(h)×\(w), padding \(padding)")
                    }
                }
            }
        }
    }
}
