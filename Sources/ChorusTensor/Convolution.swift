import CBLAS

/// Convolutions as PyTorch defines them (NCHW, cross-correlation), through im2col and one sgemm per
/// (sample, group). 1×1 convolutions with unit stride skip im2col: the input already is the matrix.
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
    /// x [N, Cin, H, W], weight [Cout, Cin/groups, kH, kW], bias [Cout] → [N, Cout, Ho, Wo].
    public static func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, options o: Conv2DOptions = .init()) -> Tensor {
        precondition(x.rank == 4 && weight.rank == 4, "conv2d takes NCHW input and OIHW weight, got \(x.shape), \(weight.shape)")
        let (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (cout, cinPerGroup, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
        precondition(cin == cinPerGroup * o.groups && cout % o.groups == 0,
                     "conv2d: input has \(cin) channels, weight expects \(cinPerGroup) × \(o.groups) groups")
        let ho = (h + 2 * o.padding.0 - o.dilation.0 * (kh - 1) - 1) / o.stride.0 + 1
        let wo = (w + 2 * o.padding.1 - o.dilation.1 * (kw - 1) - 1) / o.stride.1 + 1
        precondition(ho > 0 && wo > 0, "conv2d: a \(kh)×\(kw) kernel does not fit a padded \(h)×\(w) input")
        let coutPerGroup = cout / o.groups
        let k = cinPerGroup * kh * kw
        let spatial = ho * wo
        let direct = kh == 1 && kw == 1 && o.stride == (1, 1) && o.padding == (0, 0)
        // im2col runs a strip of output rows at a time, sized so its columns stay in the last-level cache
        // for the sgemm that reads them: at 512×512 a whole map's columns are gigabytes.
        let stripRows = direct ? ho : max(1, min(ho, max(2048, Self.columnBudget / max(k, 1)) / wo))
        var out = [Float](repeating: 0, count: n * cout * spatial)
        var columns = [Float](repeating: 0, count: direct ? 0 : k * stripRows * wo)
        x.storage.withUnsafeBufferPointer { input in
            weight.storage.withUnsafeBufferPointer { wt in
                out.withUnsafeMutableBufferPointer { output in
                    columns.withUnsafeMutableBufferPointer { col in
                        for sample in 0..<n {
                            for g in 0..<o.groups {
                                let source = input.baseAddress! + (sample * cin + g * cinPerGroup) * h * w
                                let target = output.baseAddress! + (sample * cout + g * coutPerGroup) * spatial
                                let weights = wt.baseAddress! + g * coutPerGroup * k
                                for first in stride(from: 0, to: ho, by: stripRows) {
                                    let rows = first..<min(ho, first + stripRows)
                                    let width = rows.count * wo
                                    let matrix: UnsafePointer<Float>
                                    if direct {
                                        matrix = UnsafePointer(source)
                                    } else {
                                        im2col(source, channels: cinPerGroup, height: h, width: w, kh: kh, kw: kw,
                                               rows: rows, wo: wo, options: o, into: col.baseAddress!)
                                        matrix = UnsafePointer(col.baseAddress!)
                                    }
                                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(coutPerGroup), Int32(width), Int32(k),
                                                1, weights, Int32(k), matrix, Int32(width),
                                                0, target + first * wo, Int32(spatial))
                                }
                            }
                        }
                    }
                }
            }
        }
        var result = Tensor(shape: [n, cout, ho, wo], storage: out)
        if let bias { result.addChannelBias(bias) }
        return result
    }

    /// x [N, Cin, L], weight [Cout, Cin/groups, k] → [N, Cout, Lo]: a conv2d of height 1, except for
    /// stride 1 without groups (HiFi-GAN, WaveNet, Whisper's first layer), which runs tiled (conv1dFused).
    public static func conv1d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0,
                              dilation: Int = 1, groups: Int = 1) -> Tensor {
        if stride == 1 && groups == 1 && weight.shape[2] > 1 {
            return conv1dFused(x, weight: weight, bias: bias, padding: padding, dilation: dilation)
        }
        let y = conv2d(x.reshaped([x.shape[0], x.shape[1], 1, x.shape[2]]),
                       weight: weight.reshaped([weight.shape[0], weight.shape[1], 1, weight.shape[2]]), bias: bias,
                       options: Conv2DOptions(stride: (1, stride), padding: (0, padding), dilation: (1, dilation), groups: groups))
        return y.reshaped([y.shape[0], y.shape[1], y.shape[3]])
    }

    /// conv1d with stride 1, fused with what usually surrounds it in vocoders: an optional leaky ReLU
    /// on the input (applied while the padded copy is made) and an optional residual added to the output
    /// (sgemm accumulates onto it). Time is processed in tiles whose im2col columns stay in cache and
    /// reuse one buffer, so a long sequence never materialises a k-times-larger column matrix.
    public static func conv1dFused(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, padding: Int = 0, dilation: Int = 1,
                                   inputLeakySlope: Float? = nil, residual: Tensor? = nil) -> Tensor {
        let (n, cin, length) = (x.shape[0], x.shape[1], x.shape[2])
        let (cout, taps) = (weight.shape[0], weight.shape[2])
        precondition(weight.shape[1] == cin, "conv1d: input has \(cin) channels, weight expects \(weight.shape[1])")
        let padded = length + 2 * padding
        let lo = padded - dilation * (taps - 1)
        precondition(lo > 0, "conv1d: a kernel of \(taps) taps (dilation \(dilation)) does not fit \(length) padded by \(padding)")
        let k = cin * taps
        // Columns of one tile fit in about 1 MiB.
        let tile = max(64, min(lo, (1 << 18) / max(k, 1)))
        var out: [Float]
        if let residual {
            precondition(residual.shape == [n, cout, lo], "conv1d: residual \(residual.shape) does not match the output [\(n), \(cout), \(lo)]")
            out = residual.storage
        } else {
            out = [Float](repeating: 0, count: n * cout * lo)
        }
        if let bias {
            for sample in 0..<n {
                for o in 0..<cout {
                    let value = bias.storage[o]
                    let base = (sample * cout + o) * lo
                    for t in 0..<lo { out[base + t] += value }
                }
            }
        }
        let accumulate: Float = residual != nil || bias != nil ? 1 : 0
        var source = [Float](repeating: 0, count: cin * padded)
        var columns = [Float](repeating: 0, count: k * tile)
        x.storage.withUnsafeBufferPointer { input in
            weight.storage.withUnsafeBufferPointer { wt in
                out.withUnsafeMutableBufferPointer { output in
                    source.withUnsafeMutableBufferPointer { pad in
                        columns.withUnsafeMutableBufferPointer { col in
                            for sample in 0..<n {
                                let from = input.baseAddress! + sample * cin * length
                                for c in 0..<cin {
                                    let dst = pad.baseAddress! + c * padded + padding, src = from + c * length
                                    if let slope = inputLeakySlope {
                                        for t in 0..<length { let v = src[t]; dst[t] = v < 0 ? v * slope : v }
                                    } else {
                                        dst.update(from: src, count: length)
                                    }
                                }
                                var t0 = 0
                                while t0 < lo {
                                    let width = min(tile, lo - t0)
                                    for c in 0..<cin {
                                        for j in 0..<taps {
                                            (col.baseAddress! + (c * taps + j) * width)
                                                .update(from: pad.baseAddress! + c * padded + t0 + j * dilation, count: width)
                                        }
                                    }
                                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(cout), Int32(width), Int32(k),
                                                1, wt.baseAddress!, Int32(k), col.baseAddress!, Int32(width),
                                                accumulate, output.baseAddress! + sample * cout * lo + t0, Int32(lo))
                                    t0 += width
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
        var columns = [Float](repeating: 0, count: k * h * w)
        x.storage.withUnsafeBufferPointer { input in
            weight.storage.withUnsafeBufferPointer { wt in
                out.withUnsafeMutableBufferPointer { output in
                    columns.withUnsafeMutableBufferPointer { col in
                        for sample in 0..<n {
                            for g in 0..<o.groups {
                                // columns [Cout/g·kH·kW, H·W] = weightᵀ [k, Cin/g] · x [Cin/g, H·W]
                                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(k), Int32(h * w), Int32(cinPerGroup),
                                            1, wt.baseAddress! + g * cinPerGroup * k, Int32(k),
                                            input.baseAddress! + (sample * cin + g * cinPerGroup) * h * w, Int32(h * w),
                                            0, col.baseAddress!, Int32(h * w))
                                col2im(col.baseAddress!, channels: coutPerGroup, height: h, width: w, kh: kh, kw: kw, ho: ho, wo: wo,
                                       options: o, into: output.baseAddress! + (sample * cout + g * coutPerGroup) * ho * wo)
                            }
                        }
                    }
                }
            }
        }
        var result = Tensor(shape: [n, cout, ho, wo], storage: out)
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

    /// The im2col matrix [channels·kh·kw, rows.count·wo] of output rows `rows`.
    private static func im2col(_ x: UnsafePointer<Float>, channels: Int, height h: Int, width w: Int, kh: Int, kw: Int,
                               rows outputRows: Range<Int>, wo: Int, options o: Conv2DOptions, into columns: UnsafeMutablePointer<Float>) {
        let rows = channels * kh * kw
        let width = outputRows.count * wo
        Parallel.chunks(rows, minimumPerChunk: max(1, 32_768 / max(width, 1))) { range in
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
