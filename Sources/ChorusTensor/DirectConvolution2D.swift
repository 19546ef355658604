import CKernels
import Dispatch

/// A conv2d weight [cout, cin, kh, kw] laid out once for the direct kernels, so that a model's every call
/// does not repack it (PackedConv1dWeight of the weight seen as [cout, cin, kh·kw]).
public struct PackedConv2dWeight: Sendable {
    let taps: PackedConv1dWeight
    let kh: Int, kw: Int

    /// nil for 1×1 kernels (conv2d runs those as one sgemm), or where the direct kernels do not run on this CPU.
    public init?(_ weight: Tensor, block: DirectBlock? = DirectBlock.best) {
        guard weight.rank == 4, weight.shape[2] * weight.shape[3] > 1,
              let taps = PackedConv1dWeight(weight.reshaped([weight.shape[0], weight.shape[1], weight.shape[2] * weight.shape[3]]), block: block)
        else { return nil }
        (self.taps, kh, kw) = (taps, weight.shape[2], weight.shape[3])
    }

    func matches(_ weight: Tensor) -> Bool { weight.shape == [taps.cout, taps.cin, kh, kw] }
}

extension DirectConvolution {

    /// Whether conv2d runs the direct kernels: unit stride and dilation, no groups, and a CPU that has them.
    /// The blocks reach the FMA peak at any channel count, where sgemm over one tap at a time has K = cin
    /// and loses to its own packing at the few channels of small UNets (terrain's 32 to 128).
    static func conv2dApplies(cin: Int, kh: Int, kw: Int, options o: Conv2DOptions) -> Bool {
        DirectBlock.best != nil && o.stride == (1, 1) && o.dilation == (1, 1) && o.groups == 1 && cin <= maximumCin2d && kh * kw > 1
    }

    /// Input channels up to which conv2d takes the direct kernels: above, their strips outgrow L2 and
    /// im2col + sgemm wins (measured at 320 to 1280 channels, 0.6–0.9×).
    static let maximumCin2d = 128

    /// x [N, cin, h, w] → [N, cout, ho, wo]: residual + bias + weight ⊛ x, zero-padded; rows of output (and,
    /// for small maps, blocks of output channels) shared out over the cores.
    static func conv2d(_ x: Tensor, packed p: PackedConv2dWeight, bias: Tensor?, padding: (Int, Int), residual: Tensor? = nil) -> Tensor {
        let (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (cout, kh, kw) = (p.taps.cout, p.kh, p.kw)
        precondition(cin == p.taps.cin, "conv2d: input has \(cin) channels, the weight expects \(p.taps.cin)")
        let (ho, wo) = (h + 2 * padding.0 - kh + 1, w + 2 * padding.1 - kw + 1)
        precondition(ho > 0 && wo > 0, "conv2d: a \(kh)×\(kw) kernel does not fit a padded \(h)×\(w) input")
        precondition(residual.map { $0.shape == [n, cout, ho, wo] } ?? true, "conv2d: residual \(residual!.shape) for [\(n), \(cout), \(ho), \(wo)]")
        let block = p.taps.block
        let blocks = (cout + block.rows - 1) / block.rows
        let workers = BLAS.pieces(work: n * cout * ho * wo * cin * kh * kw)
        // Strips of rows whose padded input (cin planes of rows + kh − 1 rows) stays within about 256 KiB of
        // the core's L2, cut finer when there are too few to share; then blocks of channels if still too few.
        let width = (wo + block.cols - 1) / block.cols * block.cols + kw - 1
        var stripRows = max(1, min(ho, (65_536 / max(1, cin * width)) - (kh - 1)))
        var strips = (ho + stripRows - 1) / stripRows
        // Too few strips to share: blocks of output channels first (rows cut finer would each copy their
        // kh − 1 halo rows again, and flattened maps would fill fewer blocks), then rows.
        let channelGroups = min(blocks, max(1, (2 * workers + n * strips - 1) / (n * strips)))
        if n * strips * channelGroups < 2 * workers {
            let wanted = (2 * workers + n * channelGroups - 1) / (n * channelGroups)
            stripRows = min(stripRows, max(1, (ho + wanted - 1) / wanted))
            strips = (ho + stripRows - 1) / stripRows
        }
        let blocksPerGroup = (blocks + channelGroups - 1) / channelGroups
        let jobs = n * strips * channelGroups
        return conv2dOutput(x, packed: p.taps.storage, block: block, cout: cout, kernel: (kh, kw), padding: padding, bias: bias,
                            residual: residual, ho: ho, wo: wo) { args in
            let scratchCount = withUnsafePointer(to: args(0)) { chorus_conv2d_scratch_count($0, Int32(stripRows)) }
            let lanes = min(workers, jobs)
            Parallel.perform(iterations: lanes) { lane in
                var scratch = [Float].unset(scratchCount)
                scratch.withUnsafeMutableBufferPointer { s in
                    for job in stride(from: lane, to: jobs, by: lanes) {
                        let (rest, group) = job.quotientAndRemainder(dividingBy: channelGroups)
                        let (sample, strip) = rest.quotientAndRemainder(dividingBy: strips)
                        let (y0, y1) = (strip * stripRows, min(ho, (strip + 1) * stripRows))
                        let (b0, b1) = (group * blocksPerGroup, min(blocks, (group + 1) * blocksPerGroup))
                        guard y0 < y1, b0 < b1 else { continue }
                        let status = withUnsafePointer(to: args(sample)) {
                            chorus_conv2d_direct($0, Int32(y0), Int32(y1), Int32(b0), Int32(b1), s.baseAddress!)
                        }
                        precondition(status == 0, "chorus_conv2d_direct rejected \(cin) → \(cout), \(kh)×\(kw) over \(h)×\(w)")
                    }
                }
            }
        }
    }

    /// A new [N, cout, ho, wo] output, filled by `body`, which is given each sample's C arguments (its
    /// input, output and residual planes, the packed weight and bias) for the kernels of either layout.
    static func conv2dOutput(_ x: Tensor, packed: [Float], block: DirectBlock, cout: Int, kernel: (Int, Int), padding: (Int, Int),
                             bias: Tensor?, residual: Tensor?, ho: Int, wo: Int, _ body: ((Int) -> chorus_conv2d_args) -> Void) -> Tensor {
        let (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        var out = [Float].unset(n * cout * ho * wo)
        x.storage.withUnsafeBufferPointer { input in
            packed.withUnsafeBufferPointer { weight in
                out.withUnsafeMutableBufferPointer { output in
                    withOptionalPointer(bias) { biasPointer in
                        withOptionalPointer(residual) { residualPointer in
                            body { sample in
                                chorus_conv2d_args(x: input.baseAddress! + sample * cin * h * w, cin: Int32(cin), h: Int32(h), w: Int32(w),
                                                   kh: Int32(kernel.0), kw: Int32(kernel.1), pad_h: Int32(padding.0), pad_w: Int32(padding.1),
                                                   packed: weight.baseAddress!, block_rows: block.rawValue, cout: Int32(cout),
                                                   bias: biasPointer, residual: residualPointer.map { $0 + sample * cout * ho * wo },
                                                   out: output.baseAddress! + sample * cout * ho * wo, ho: Int32(ho), wo: Int32(wo))
                            }
                        }
                    }
                }
            }
        }
        return Tensor(shape: [n, cout, ho, wo], storage: out)
    }
}
