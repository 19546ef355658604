import Dispatch

/// A k×k convolution with unit stride and dilation as k² accumulated products, one per tap, each reading a
/// zero-padded copy of the input shifted by that tap: no im2col. im2col writes every input value k² times
/// (9× for 3×3) only for sgemm to copy it again into its packed panels; in the terrain UNet that copying was
/// as much time as a third of the multiply-adds. Here the input is copied once (with its padding), and sgemm
/// packs the shifted views straight from it.
///
/// The trick: with the padded row width `Wp`, output (y, x) of tap (dy, dx) reads padded input
/// (y + dy, x + dx), which is column `y·Wp + x` of the padded strip moved by `dy·Wp + dx`. So every tap
/// is one sgemm over columns `0 ..< rows·Wp` of a moved pointer; the `Wp − Wo` columns at the end of each
/// row are computed and dropped.
extension Convolution {
    /// Whether conv2d takes this path: a kernel wider than 1 at unit stride and dilation, and maps wide and
    /// many enough that the per-call re-layout of the weight into taps (cout·cin·k² values) and the dropped
    /// columns cost little against the product.
    static func shiftedApplies(cout: Int, kh: Int, kw: Int, wo: Int, positions: Int, options o: Conv2DOptions) -> Bool {
        kh * kw > 1 && o.stride == (1, 1) && o.dilation == (1, 1) && wo >= 16 && positions >= 16 * cout
    }

    static func conv2dShifted(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
                              n: Int, cin: Int, h: Int, w: Int, cout: Int, kh: Int, kw: Int, ho: Int, wo: Int, options o: Conv2DOptions) {
        let groups = o.groups, cinPerGroup = cin / groups, coutPerGroup = cout / groups
        let taps = kh * kw, spatial = ho * wo
        let paddedWidth = w + 2 * o.padding.1
        // weight [cout, cin/g, kh, kw] → taps [g][tap][cout/g][cin/g]: each tap's matrix with unit stride.
        var tapWeights = [Float].unset(cout * cinPerGroup * taps)
        tapWeights.withUnsafeMutableBufferPointer { t in
            for g in 0..<groups {
                for tap in 0..<taps {
                    let target = t.baseAddress! + (g * taps + tap) * coutPerGroup * cinPerGroup
                    for co in 0..<coutPerGroup {
                        let source = weight + (g * coutPerGroup + co) * cinPerGroup * taps + tap
                        for ci in 0..<cinPerGroup { target[co * cinPerGroup + ci] = source[ci * taps] }
                    }
                }
            }
        }
        // Strips of about 2048 output columns: the strip's output (cout/g × columns) stays in cache across
        // the taps that accumulate onto it.
        let stripRows = max(1, min(ho, 2048 / paddedWidth))
        let strips = (ho + stripRows - 1) / stripRows
        let jobs = n * groups * strips
        let workers = min(jobs, BLAS.pieces(work: n * cout * spatial * cinPerGroup * taps))
        let paddedRows = stripRows + kh - 1
        // kw − 1 more zeros: the last row's dropped columns of the last taps read just past the strip.
        let paddedCount = cinPerGroup * paddedRows * paddedWidth + kw - 1
        tapWeights.withUnsafeBufferPointer { t in
            let tapWeights = t.baseAddress!
            Parallel.perform(iterations: workers) { worker in
                var padded = [Float](repeating: 0, count: paddedCount)
                var sums = [Float].unset(coutPerGroup * stripRows * paddedWidth)
                padded.withUnsafeMutableBufferPointer { pp in
                    sums.withUnsafeMutableBufferPointer { sp in
                        let (p, s) = (pp.baseAddress!, sp.baseAddress!)
                        for job in stride(from: worker, to: jobs, by: workers) {
                            let (pair, strip) = job.quotientAndRemainder(dividingBy: strips)
                            let (sample, g) = pair.quotientAndRemainder(dividingBy: groups)
                            let first = strip * stripRows, rows = min(ho, first + stripRows) - first
                            let source = x + (sample * cin + g * cinPerGroup) * h * w
                            copyPaddedStrip(source, channels: cinPerGroup, height: h, width: w, firstRow: first - o.padding.0,
                                            rows: rows + kh - 1, padLeft: o.padding.1, paddedWidth: paddedWidth,
                                            channelStride: paddedRows * paddedWidth, into: p)
                            let columns = rows * paddedWidth
                            for tap in 0..<taps {
                                let (dy, dx) = tap.quotientAndRemainder(dividingBy: kw)
                                BLAS.serialSgemm(m: coutPerGroup, n: columns, k: cinPerGroup,
                                                 a: tapWeights + (g * taps + tap) * coutPerGroup * cinPerGroup, lda: cinPerGroup,
                                                 b: p + dy * paddedWidth + dx, ldb: paddedRows * paddedWidth,
                                                 beta: tap == 0 ? 0 : 1, c: s, ldc: columns)
                            }
                            let target = out + (sample * cout + g * coutPerGroup) * spatial + first * wo
                            for co in 0..<coutPerGroup {
                                for r in 0..<rows {
                                    (target + co * spatial + r * wo).update(from: s + co * columns + r * paddedWidth, count: wo)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Rows firstRow ..< firstRow + rows of every channel (rows outside the input are zeros), each written
    /// at `padLeft` into a zeroed row of `paddedWidth`. Only the values change from strip to strip, so the
    /// padding columns written zero once stay zero.
    private static func copyPaddedStrip(_ x: UnsafePointer<Float>, channels: Int, height h: Int, width w: Int, firstRow: Int,
                                        rows: Int, padLeft: Int, paddedWidth: Int, channelStride: Int,
                                        into p: UnsafeMutablePointer<Float>) {
        for c in 0..<channels {
            for r in 0..<rows {
                let row = p + c * channelStride + r * paddedWidth + padLeft
                let y = firstRow + r
                if y >= 0 && y < h {
                    row.update(from: x + (c * h + y) * w, count: w)
                } else {
                    row.update(repeating: 0, count: w)
                }
            }
        }
    }
}
