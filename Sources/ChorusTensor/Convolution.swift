import CBLAS
import Dispatch

/// Convolutions as PyTorch defines them (NCHW, cross-correlation), through im2col and one sgemm per
/// (sample, group, strip of output rows). 1×1 convolutions with unit stride skip im2col: the input already is the matrix;
/// wider kernels at unit stride over large maps run as one product per tap (ShiftedConvolution.swift).
public struct Conv2DOptions: Sendable, Equatable {
    public var stride: (Int, Int)
    public var padding: (Int, Int)
    public var dilation: (Int, Int)
    public var groups: Int

    public init(stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0), dilation: (Int, Int) = (1, 1), groups: Int = 1) {
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.stride == b.stride && a.padding == b.padding && a.dilation == b.dilation && a.groups == b.groups
    }
}

public enum Convolution {
    /// x [N, Cin, H, W], weight [Cout, Cin/groups, kH, kW], bias [Cout] → [N, Cout, Ho, Wo], plus `residual`
    /// [N, Cout, Ho, Wo] when given (added inside the fast kernels, in the pass that writes the output).
    /// `packed` and `winograd`, the same weight laid out for the direct and the Winograd kernels, save redoing
    /// that on every call where those kernels run.
    public static func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, options o: Conv2DOptions = .init(),
                              packed: PackedConv2dWeight? = nil, winograd: WinogradConv2dWeight? = nil, residual: Tensor? = nil) -> Tensor {
        precondition(x.rank == 4 && weight.rank == 4, "conv2d takes NCHW input and OIHW weight, got \(x.shape), \(weight.shape)")
        let (cin, cout, kh, kw) = (x.shape[1], weight.shape[0], weight.shape[2], weight.shape[3])
        let ho = (x.shape[2] + 2 * o.padding.0 - o.dilation.0 * (kh - 1) - 1) / o.stride.0 + 1
        let wo = (x.shape[3] + 2 * o.padding.1 - o.dilation.1 * (kw - 1) - 1) / o.stride.1 + 1
        if cin == weight.shape[1], ho > 0, wo > 0, DirectConvolution.winogradApplies(kh: kh, kw: kw, wo: wo, options: o),
           let winograd = winograd
            ?? (DirectConvolution.winogradPaysOnTheCall(cin: cin, cout: cout, positions: x.shape[0] * ho * wo) ? WinogradConv2dWeight(weight) : nil) {
            precondition(winograd.matches(weight), "conv2d: the Winograd weight is not \(weight.shape)")
            return DirectConvolution.winograd2d(x, packed: winograd, bias: bias, padding: o.padding, residual: residual)
        }
        if cin == weight.shape[1], ho > 0, wo > 0, DirectConvolution.conv2dApplies(cin: cin, kh: kh, kw: kw, options: o),
           let packed = packed ?? PackedConv2dWeight(weight) {
            precondition(packed.matches(weight), "conv2d: the packed weight is not \(weight.shape)")
            return DirectConvolution.conv2d(x, packed: packed, bias: bias, padding: o.padding, residual: residual)
        }
        return conv2dBySgemm(x, weight: weight, bias: bias, options: o, residual: residual)
    }

    /// conv2d as sgemm: one product per tap over padded strips, or im2col strips.
    static func conv2dBySgemm(_ x: Tensor, weight: Tensor, bias: Tensor?, options o: Conv2DOptions, residual: Tensor?) -> Tensor {
        let (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (cout, cinPerGroup, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
        precondition(cin == cinPerGroup * o.groups && cout % o.groups == 0,
                     "conv2d: input has \(cin) channels, weight expects \(cinPerGroup) × \(o.groups) groups")
        let ho = (h + 2 * o.padding.0 - o.dilation.0 * (kh - 1) - 1) / o.stride.0 + 1
        let wo = (w + 2 * o.padding.1 - o.dilation.1 * (kw - 1) - 1) / o.stride.1 + 1
        precondition(ho > 0 && wo > 0, "conv2d: a \(kh)×\(kw) kernel does not fit a padded \(h)×\(w) input")
        precondition(residual.map { $0.shape == [n, cout, ho, wo] } ?? true, "conv2d: residual \(residual!.shape) for [\(n), \(cout), \(ho), \(wo)]")
        let coutPerGroup = cout / o.groups
        let k = cinPerGroup * kh * kw
        let spatial = ho * wo
        if shiftedApplies(cout: cout, kh: kh, kw: kw, wo: wo, positions: n * spatial, options: o) {
            var out = [Float].unset(n * cout * spatial)
            x.storage.withUnsafeBufferPointer { input in
                weight.storage.withUnsafeBufferPointer { wt in
                    out.withUnsafeMutableBufferPointer { output in
                        conv2dShifted(input.baseAddress!, weight: wt.baseAddress!, out: output.baseAddress!, n: n, cin: cin, h: h, w: w,
                                      cout: cout, kh: kh, kw: kw, ho: ho, wo: wo, options: o)
                    }
                }
            }
            var result = Tensor(shape: [n, cout, ho, wo], storage: consume out)
            if let bias { result.addChannelBias(bias) }
            if let residual {
                result.storage.withUnsafeMutableBufferPointer { y in
                    residual.storage.withUnsafeBufferPointer { r in for i in 0..<y.count { y[i] += r[i] } }
                }
            }
            return result
        }
        let direct = kh == 1 && kw == 1 && o.stride == (1, 1) && o.padding == (0, 0)
        // The output is made a strip of rows at a time: im2col of the strip, then its sgemm. A strip's
        // columns stay in the last-level cache for the sgemm that reads them (at 512×512 a whole map's
        // columns are gigabytes), and the strips of every sample and group are shared out over the cores,
        // each core with its own column buffer, so im2col runs in parallel with the products.
        let groupsTotal = n * o.groups
        let workers = BLAS.pieces(work: n * cout * spatial * k)
        let widest = direct ? ho : max(1, min(ho, max(2048, Self.columnBudget / max(k, 1)) / wo))
        var strips = (ho + widest - 1) / widest
        if workers > 1 && (groupsTotal * strips) % workers != 0 && groupsTotal * strips < 8 * workers {
            strips = min(ho, (strips + workers - 1) / workers * workers)
        }
        let stripRows = (ho + strips - 1) / strips
        strips = (ho + stripRows - 1) / stripRows
        let jobs = groupsTotal * strips, lanes = min(workers, jobs)
        var out = [Float].unset(n * cout * spatial)
        // Each strip's output starts as bias + residual and sgemm adds to it (beta 1): OpenBLAS would
        // otherwise zero it first (beta 0), and the bias and residual take two more passes after.
        let seeded = bias != nil || residual != nil
        x.storage.withUnsafeBufferPointer { input in
            weight.storage.withUnsafeBufferPointer { wt in
                out.withUnsafeMutableBufferPointer { output in
                    let (input, wt, output) = (input.baseAddress!, wt.baseAddress!, output.baseAddress!)
                    Parallel.perform(iterations: lanes) { worker in
                        var columns = [Float].unset(direct ? 0 : k * stripRows * wo)
                        columns.withUnsafeMutableBufferPointer { col in
                            for job in stride(from: worker, to: jobs, by: lanes) {
                                let (pair, strip) = job.quotientAndRemainder(dividingBy: strips)
                                let (sample, g) = pair.quotientAndRemainder(dividingBy: o.groups)
                                let source = input + (sample * cin + g * cinPerGroup) * h * w
                                let target = output + (sample * cout + g * coutPerGroup) * spatial
                                let rows = (strip * stripRows)..<min(ho, (strip + 1) * stripRows)
                                let width = rows.count * wo
                                let first = rows.lowerBound * wo
                                if seeded {
                                    seed(output, sample: sample, channels: (g * coutPerGroup)..<((g + 1) * coutPerGroup), cout: cout,
                                         spatial: spatial, positions: first..<(first + width), bias: bias, residual: residual)
                                }
                                if direct {
                                    BLAS.serialSgemm(m: coutPerGroup, n: width, k: k, a: wt + g * coutPerGroup * k, lda: k,
                                                     b: source + first, ldb: spatial, beta: seeded ? 1 : 0, c: target + first, ldc: spatial)
                                } else {
                                    im2col(source, channels: cinPerGroup, height: h, width: w, kh: kh, kw: kw,
                                           rows: rows, wo: wo, options: o, into: col.baseAddress!, parallel: workers == 1)
                                    BLAS.serialSgemm(m: coutPerGroup, n: width, k: k, a: wt + g * coutPerGroup * k, lda: k,
                                                     b: col.baseAddress!, ldb: width, beta: seeded ? 1 : 0, c: target + first, ldc: spatial)
                                }
                            }
                        }
                    }
                }
            }
        }
        return Tensor(shape: [n, cout, ho, wo], storage: out)
    }

    /// out[sample, c, p] = bias[c] + residual[sample, c, p] for the channels and positions of one strip.
    private static func seed(_ out: UnsafeMutablePointer<Float>, sample: Int, channels: Range<Int>, cout: Int, spatial: Int,
                             positions: Range<Int>, bias: Tensor?, residual: Tensor?) {
        for channel in channels {
            let row = out + (sample * cout + channel) * spatial + positions.lowerBound
            let value = bias?.storage[channel] ?? 0
            guard let residual else {
                row.update(repeating: value, count: positions.count)
                continue
            }
            residual.storage.withUnsafeBufferPointer { r in
                let added = r.baseAddress! + (sample * cout + channel) * spatial + positions.lowerBound
                for i in 0..<positions.count { row[i] = added[i] + value }
            }
        }
    }

    /// x [N, Cin, L], weight [Cout, Cin/groups, k] → [N, Cout, Lo]: a conv2d of height 1, except for
    /// stride 1 without groups (HiFi-GAN, WaveNet, Whisper's first layer), which runs tiled (conv1dFused).
    public static func conv1d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0,
                              dilation: Int = 1, groups: Int = 1) -> Tensor {
        if stride == 1 && groups == 1 && weight.shape[2] > 1 {
            return conv1dFused(x, weight: weight, bias: bias, padding: padding, dilation: dilation)
        }
        if groups == x.shape[1] && weight.shape[0] == groups && weight.shape[1] == 1 {
            return depthwiseConv1d(x, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation)
        }
        let y = conv2d(x.reshaped([x.shape[0], x.shape[1], 1, x.shape[2]]),
                       weight: weight.reshaped([weight.shape[0], weight.shape[1], 1, weight.shape[2]]), bias: bias,
                       options: Conv2DOptions(stride: (1, stride), padding: (0, padding), dilation: (1, dilation), groups: groups))
        return y.reshaped([y.shape[0], y.shape[1], y.shape[3]])
    }

    /// One filter per channel (VITS's duration predictor): a row of multiply-adds per (channel, tap). As a
    /// grouped conv2d it was one M = 1 sgemm per channel, 192 of them per layer.
    static func depthwiseConv1d(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: Int, padding: Int, dilation: Int) -> Tensor {
        let (n, channels, length, taps) = (x.shape[0], x.shape[1], x.shape[2], weight.shape[2])
        let lo = (length + 2 * padding - dilation * (taps - 1) - 1) / stride + 1
        precondition(lo > 0, "conv1d: a kernel of \(taps) taps (dilation \(dilation)) does not fit \(length) padded by \(padding)")
        var out = [Float](repeating: 0, count: n * channels * lo)
        x.storage.withUnsafeBufferPointer { input in
            weight.storage.withUnsafeBufferPointer { w in
                out.withUnsafeMutableBufferPointer { output in
                    for row in 0..<(n * channels) {
                        let c = row % channels, src = input.baseAddress! + row * length, dst = output.baseAddress! + row * lo
                        let b = bias?.storage[c] ?? 0
                        for t in 0..<lo { dst[t] = b }
                        for j in 0..<taps {
                            let k = w[c * taps + j], shift = j * dilation - padding
                            // Outputs whose input t·stride + shift lies inside the row.
                            let first = shift >= 0 ? 0 : (-shift + stride - 1) / stride
                            guard length - 1 - shift >= 0 else { continue }
                            let last = min(lo, (length - 1 - shift) / stride + 1)
                            guard first < last else { continue }
                            if stride == 1 {
                                let from = src + shift
                                for t in first..<last { dst[t] += k * from[t] }
                            } else {
                                for t in first..<last { dst[t] += k * src[t * stride + shift] }
                            }
                        }
                    }
                }
            }
        }
        return Tensor(shape: [n, channels, lo], storage: out)
    }

    /// conv1d with stride 1, fused with what usually surrounds it in vocoders: an optional leaky ReLU
    /// on the input (applied while the padded copy is made) and an optional residual added to the output
    /// (sgemm accumulates onto it). Time is processed in tiles whose im2col columns stay in cache and
    /// reuse one buffer, so a long sequence never materialises a k-times-larger column matrix.
    ///
    /// Where the CPU has AVX2 and FMA (or AVX-512), all but the few-output case run the direct kernels
    /// (DirectConvolution.swift), with `packed` when the caller keeps the weight packed; `kernel: .sgemm`
    /// takes the path other CPUs do, `.direct(block)` a given block.
    public static func conv1dFused(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, padding: Int = 0, dilation: Int = 1,
                                   inputLeakySlope: Float? = nil, residual: Tensor? = nil,
                                   packed: PackedConv1dWeight? = nil, kernel: Conv1dKernel = .fastest) -> Tensor {
        let (n, cin, length) = (x.shape[0], x.shape[1], x.shape[2])
        let (cout, taps) = (weight.shape[0], weight.shape[2])
        precondition(weight.shape[1] == cin, "conv1d: input has \(cin) channels, weight expects \(weight.shape[1])")
        let padded = length + 2 * padding
        let lo = padded - dilation * (taps - 1)
        precondition(lo > 0, "conv1d: a kernel of \(taps) taps (dilation \(dilation)) does not fit \(length) padded by \(padding)")
        if let residual {
            precondition(residual.shape == [n, cout, lo], "conv1d: residual \(residual.shape) does not match the output [\(n), \(cout), \(lo)]")
        }
        let block: DirectBlock? = switch kernel { case .fastest: DirectBlock.best; case .sgemm: nil; case .direct(let b): b }
        if cout > 4 && cin <= Self.directChannels, let block,
           let direct = packed.flatMap({ $0.matches(weight, block: block) ? $0 : nil }) ?? PackedConv1dWeight(weight, block: block) {
            return DirectConvolution.conv1d(x, packed: direct, bias: bias, padding: padding, dilation: dilation,
                                            inputLeakySlope: inputLeakySlope, residual: residual, lo: lo)
        }
        let k = cin * taps
        // Tiles of about 4 MiB of columns, and never narrower than 512: sgemm repacks the whole weight for
        // every tile, and at 512 channels × 7 taps a 73-column tile ran at half the speed of a 512-column one.
        let widest = min(lo, max(512, (1 << 20) / max(k, 1)))
        let workers = BLAS.pieces(work: cout * lo * k)
        // A few tiles are evened out over the cores, so that no core waits on the last narrow one. A short
        // input stays one tile, whose product BLAS splits by output channels: cut in time, each core repacked
        // the whole weight for a few dozen columns (a VITS text encoder's 100 tokens).
        var tiles = (lo + widest - 1) / widest
        if workers > 1 && tiles < 4 * workers && lo >= Self.shortInput { tiles = min(lo, (tiles + workers - 1) / workers * workers) }
        let tile = (lo + tiles - 1) / tiles
        tiles = (lo + tile - 1) / tile
        var out: [Float]
        if let residual {
            out = residual.storage
        } else {
            out = bias == nil ? [Float](repeating: 0, count: n * cout * lo) : .unset(n * cout * lo)
        }
        if let bias {
            // Onto the residual, or as the output's first value; sgemm then accumulates.
            out.withUnsafeMutableBufferPointer { o in
                for sample in 0..<n {
                    for channel in 0..<cout {
                        let value = bias.storage[channel], row = o.baseAddress! + (sample * cout + channel) * lo
                        if residual == nil {
                            row.update(repeating: value, count: lo)
                        } else {
                            for t in 0..<lo { row[t] += value }
                        }
                    }
                }
            }
        }
        let accumulate: Float = residual != nil || bias != nil ? 1 : 0
        // Few channels: one product per tap, each reading the padded input in place at its shift, instead
        // of im2col's taps-times copy that sgemm then packs again (ShiftedConvolution.swift does the same
        // in 2-D). With many channels the per-call re-layout of the weight into taps would cost more.
        let byTap = cout > 4 && cin <= Self.byTapChannels
        let tapWeights: [Float] = byTap ? Self.tapMajor(weight, cout: cout, cin: cin, taps: taps) : []
        var source = [Float](repeating: 0, count: cin * padded)
        x.storage.withUnsafeBufferPointer { input in
            weight.storage.withUnsafeBufferPointer { wt in
                out.withUnsafeMutableBufferPointer { output in
                    source.withUnsafeMutableBufferPointer { pad in
                        let (wt, pad) = (wt.baseAddress!, pad.baseAddress!)
                        for sample in 0..<n {
                            let from = input.baseAddress! + sample * cin * length
                            for c in 0..<cin {
                                let dst = pad + c * padded + padding, src = from + c * length
                                if let slope = inputLeakySlope {
                                    for t in 0..<length { let v = src[t]; dst[t] = v < 0 ? v * slope : v }
                                } else {
                                    dst.update(from: src, count: length)
                                }
                            }
                            let target = output.baseAddress! + sample * cout * lo
                            if cout <= 4 {
                                // A few outputs (a vocoder's last layer): a row of multiply-adds per (channel,
                                // tap) over time. As a matrix product, the M = 1 sgemm spent its time in im2col.
                                Parallel.chunks(lo, minimumPerChunk: 4096) { span in
                                    for o in 0..<cout {
                                        let y = target + o * lo
                                        for c in 0..<cin {
                                            for j in 0..<taps {
                                                let weight = wt[(o * cin + c) * taps + j], x = pad + c * padded + j * dilation
                                                for t in span { y[t] += weight * x[t] }
                                            }
                                        }
                                    }
                                }
                                continue
                            }
                            // Each core takes every workers-th tile, with its own column buffer; with fewer
                            // tiles than cores, each tile's sgemm is split instead.
                            let tileWorkers = tiles >= workers ? workers : 1
                            func tileProduct(k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float,
                                             t0: Int, width: Int) {
                                if tileWorkers > 1 {
                                    BLAS.serialSgemm(m: cout, n: width, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: target + t0, ldc: lo)
                                } else {
                                    BLAS.sgemm(m: cout, n: width, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: target + t0, ldc: lo)
                                }
                            }
                            Parallel.perform(iterations: tileWorkers) { worker in
                                var columns = [Float].unset(byTap ? 0 : k * tile)
                                columns.withUnsafeMutableBufferPointer { col in
                                    let col = col.baseAddress!
                                    for index in stride(from: worker, to: tiles, by: tileWorkers) {
                                        let t0 = index * tile
                                        let width = min(tile, lo - t0)
                                        if byTap {
                                            tapWeights.withUnsafeBufferPointer { tw in
                                                for j in 0..<taps {
                                                    tileProduct(k: cin, a: tw.baseAddress! + j * cout * cin, lda: cin, b: pad + t0 + j * dilation,
                                                                ldb: padded, beta: j == 0 ? accumulate : 1, t0: t0, width: width)
                                                }
                                            }
                                            continue
                                        }
                                        for c in 0..<cin {
                                            for j in 0..<taps {
                                                (col + (c * taps + j) * width).update(from: pad + c * padded + t0 + j * dilation, count: width)
                                            }
                                        }
                                        tileProduct(k: k, a: wt, lda: k, b: col, ldb: width, beta: accumulate, t0: t0, width: width)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return Tensor(shape: [n, cout, lo], storage: out)
    }

    /// Transposed convolution: x [N, Cin, H, W], weight [Cin, Cout/groups, kH, kW] →
    /// [N, Cout, (H-1)·s - 2p + d·(k-1) + outputPadding + 1, ...]. One sgemm per (sample, group), then col2im.
    public static func convTranspose2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, options o: Conv2DOptions = .init(),
                                       outputPadding: (Int, Int) = (0, 0)) -> Tensor {
        precondition(x.rank == 4 && weight.rank == 4, "convTranspose2d takes NCHW input and (Cin, Cout/g, kH, kW) weight")
        let (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (coutPerGroup, kh, kw) = (weight.shape[1], weight.shape[2], weight.shape[3])
        precondition(weight.shape[0] == cin && cin % o.groups == 0, "convTranspose2d: weight \(weight.shape) does not match \(cin) input channels")
        let cinPerGroup = cin / o.groups
        let cout = coutPerGroup * o.groups
        let ho = (h - 1) * o.stride.0 - 2 * o.padding.0 + o.dilation.0 * (kh - 1) + outputPadding.0 + 1
        let wo = (w - 1) * o.stride.1 - 2 * o.padding.1 + o.dilation.1 * (kw - 1) + outputPadding.1 + 1
        let k = coutPerGroup * kh * kw
        var out = [Float](repeating: 0, count: n * cout * ho * wo)
        var columns = [Float].unset(k * h * w)
        x.storage.withUnsafeBufferPointer { input in
            weight.storage.withUnsafeBufferPointer { wt in
                out.withUnsafeMutableBufferPointer { output in
                    columns.withUnsafeMutableBufferPointer { col in
                        for sample in 0..<n {
                            for g in 0..<o.groups {
                                // columns [Cout/g·kH·kW, H·W] = weightᵀ [k, Cin/g] · x [Cin/g, H·W]
                                BLAS.sgemm(transA: true, m: k, n: h * w, k: cinPerGroup, a: wt.baseAddress! + g * cinPerGroup * k, lda: k,
                                           b: input.baseAddress! + (sample * cin + g * cinPerGroup) * h * w, ldb: h * w,
                                           c: col.baseAddress!, ldc: h * w)
                                col2im(col.baseAddress!, channels: coutPerGroup, height: h, width: w, kh: kh, kw: kw, ho: ho, wo: wo,
                                       options: o, into: output.baseAddress! + (sample * cout + g * coutPerGroup) * ho * wo)
                            }
                        }
                    }
                }
            }
        }
        // `consume`: a copy of `out` left alive would make the bias's in-place add copy the whole output first.
        var result = Tensor(shape: [n, cout, ho, wo], storage: consume out)
        if let bias { result.addChannelBias(bias) }
        return result
    }

    /// x [N, Cin, L], weight [Cin, Cout/groups, k] → [N, Cout, Lo].
    public static func convTranspose1d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0,
                                       outputPadding: Int = 0, dilation: Int = 1, groups: Int = 1) -> Tensor {
        let y = convTranspose2d(x.reshaped([x.shape[0], x.shape[1], 1, x.shape[2]]),
                                weight: weight.reshaped([weight.shape[0], weight.shape[1], 1, weight.shape[2]]), bias: bias,
                                options: Conv2DOptions(stride: (1, stride), padding: (0, padding), dilation: (1, dilation), groups: groups),
                                outputPadding: (0, outputPadding))
        return y.reshaped([y.shape[0], y.shape[1], y.shape[3]])
    }

    /// Each row of `columns` is one (channel, ki, kj) tap; each column one output position.
    /// Floats of im2col columns kept per strip (8 MB: a few strips fit this CPU's 32 MB L3 with the packed weights).
    static let columnBudget = 2 << 20

    /// weight [cout, cin, taps] → [taps, cout, cin]: each tap's matrix with unit stride.
    private static func tapMajor(_ weight: Tensor, cout: Int, cin: Int, taps: Int) -> [Float] {
        var out = [Float].unset(cout * cin * taps)
        weight.storage.withUnsafeBufferPointer { w in
            for j in 0..<taps { for o in 0..<cout { for c in 0..<cin { out[(j * cout + o) * cin + c] = w[(o * cin + c) * taps + j] } } }
        }
        return out
    }

    /// conv1dFused runs one product per tap up to this many input channels (HiFi-GAN's last two stages):
    /// 4% faster for the Piper voice at 64, slower at 256, where the weight's re-layout costs more.
    static let byTapChannels = 64

    /// Steps below which conv1dFused leaves the split to BLAS.
    static let shortInput = 384

    /// conv1dFused runs the direct kernels up to this many input channels. Beyond it (a VITS text encoder's
    /// 192 → 768 feed-forward over 100 tokens, its flow's 192 → 384 over 260 frames) sgemm was as fast,
    /// alternating the two within one run (2.85 against 3.0 ms a feed-forward, 1.95 against 2.0 a flow layer).
    public static let directChannels = 128

    /// The im2col matrix [channels·kh·kw, rows.count·wo] of output rows `rows`.
    private static func im2col(_ x: UnsafePointer<Float>, channels: Int, height h: Int, width w: Int, kh: Int, kw: Int,
                               rows outputRows: Range<Int>, wo: Int, options o: Conv2DOptions, into columns: UnsafeMutablePointer<Float>,
                               parallel: Bool) {
        let rows = channels * kh * kw
        let width = outputRows.count * wo
        Parallel.chunks(rows, minimumPerChunk: parallel ? max(1, 32_768 / max(width, 1)) : .max) { range in
            for row in range {
                let c = row / (kh * kw), ki = (row / kw) % kh, kj = row % kw
                let plane = x + c * h * w
                let dst = columns + row * width - outputRows.lowerBound * wo
                // The output columns whose input column lies inside the image, for this tap.
                let dx = kj * o.dilation.1 - o.padding.1
                let firstX = dx >= 0 ? 0 : min(wo, (-dx + o.stride.1 - 1) / o.stride.1)
                let lastX = w - 1 - dx < 0 ? firstX : max(firstX, min(wo, (w - 1 - dx) / o.stride.1 + 1))
                for oy in outputRows {
                    let iy = oy * o.stride.0 - o.padding.0 + ki * o.dilation.0
                    let line = dst + oy * wo
                    guard iy >= 0 && iy < h, lastX > firstX else {
                        line.update(repeating: 0, count: wo)
                        continue
                    }
                    let src = plane + iy * w + dx
                    line.update(repeating: 0, count: firstX)
                    if o.stride.1 == 1 {
                        (line + firstX).update(from: src + firstX, count: lastX - firstX)
                    } else {
                        for ox in firstX..<lastX { line[ox] = src[ox * o.stride.1] }
                    }
                    (line + lastX).update(repeating: 0, count: wo - lastX)
                }
            }
        }
    }

    /// The adjoint of im2col: adds every tap back to the output position it came from.
    private static func col2im(_ columns: UnsafePointer<Float>, channels: Int, height h: Int, width w: Int, kh: Int, kw: Int,
                               ho: Int, wo: Int, options o: Conv2DOptions, into out: UnsafeMutablePointer<Float>) {
        if kh == 1 && h == 1 && ho == 1 {
            // One dimension (every vocoder upsampler): each tap's row lands on a strided run of outputs; the
            // run's ends are found once instead of testing every position.
            let (step, dilation, padding) = (o.stride.1, o.dilation.1, o.padding.1)
            Parallel.chunks(channels, minimumPerChunk: max(1, 32_768 / max(w * kw, 1))) { range in
                for c in range {
                    let plane = out + c * wo
                    for kj in 0..<kw {
                        let src = columns + (c * kw + kj) * w
                        let offset = kj * dilation - padding  // output position of input 0
                        let first = offset >= 0 ? 0 : (-offset + step - 1) / step
                        let last = offset > wo - 1 ? 0 : min(w, (wo - 1 - offset) / step + 1)
                        guard last > first else { continue }
                        let base = plane + offset
                        for ix in first..<last { base[ix * step] += src[ix] }
                    }
                }
            }
            return
        }
        Parallel.chunks(channels, minimumPerChunk: max(1, 32_768 / max(h * w * kh * kw, 1))) { range in
            for c in range {
                let plane = out + c * ho * wo
                for ki in 0..<kh {
                    for kj in 0..<kw {
                        let src = columns + ((c * kh + ki) * kw + kj) * h * w
                        for iy in 0..<h {
                            let oy = iy * o.stride.0 - o.padding.0 + ki * o.dilation.0
                            guard oy >= 0 && oy < ho else { continue }
                            for ix in 0..<w {
                                let ox = ix * o.stride.1 - o.padding.1 + kj * o.dilation.1
                                if ox >= 0 && ox < wo { plane[oy * wo + ox] += src[iy * w + ix] }
                            }
                        }
                    }
                }
            }
        }
    }
}

extension Tensor {
    /// Adds bias[c] to every element of channel c of an [N, C, ...] tensor.
    public mutating func addChannelBias(_ bias: Tensor) {
        let channels = shape[1]
        let spatial = shape.dropFirst(2).reduce(1, *)
        storage.withUnsafeMutableBufferPointer { o in
            bias.storage.withUnsafeBufferPointer { b in
                for n in 0..<shape[0] {
                    for c in 0..<channels {
                        let base = (n * channels + c) * spatial
                        let value = b[c]
                        for i in base..<(base + spatial) { o[i] += value }
                    }
                }
            }
        }
    }
}
