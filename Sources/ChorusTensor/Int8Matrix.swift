import CKernels

/// A linear layer's weight [out, in] in int8, one scale per row and per 128 values, packed once for the VNNI
/// kernel (Sources/CKernels/int8_gemm.c). Each product quantizes its input the same way and sums the byte
/// products in int32: a quarter of float32's bytes per weight, and four times the products per instruction.
public struct Int8Matrix: Sendable {
    public let rows: Int
    public let columns: Int
    /// chorus_i8gemm_pack's panels.
    let packed: [UInt8]
    /// [rows, blocks of 128 columns]: the value of a code is code × its block's inverse scale.
    public let inverseScales: [Float]
    /// The same in the kernel's order (chorus_i8gemm_pack_scales).
    let packedScales: [Float]

    var blocks: Int { (columns + 127) / 128 }

    /// The inverse scale of weight [row, column]'s block.
    public func inverseScale(row: Int, column: Int) -> Float { inverseScales[row * blocks + column / 128] }

    /// Whether the kernel runs here (the chosen CPU level has AVX-512 VNNI).
    public static var supported: Bool { chorus_i8gemm_supported() != 0 }

    /// `weight` [rows, columns] quantized: code = round(w · 127 / max |w| over its row's 128 values).
    /// nil where the kernel does not run, or for a weight with a value that is not finite.
    public init?(quantizing weight: Tensor) {
        guard Self.supported, weight.rank == 2, weight.shape[0] > 0, weight.shape[1] > 0 else { return nil }
        let (rows, columns) = (weight.shape[0], weight.shape[1])
        var codes = [Int8](repeating: 0, count: rows * columns), scales = [Float](repeating: 0, count: rows * ((columns + 127) / 128))
        let status = weight.storage.withUnsafeBufferPointer { w in
            codes.withUnsafeMutableBufferPointer { c in
                scales.withUnsafeMutableBufferPointer { s in
                    chorus_i8gemm_quantize_weight(w.baseAddress!, Int32(rows), Int32(columns), c.baseAddress!, s.baseAddress!)  // checked: a layer's sizes
                }
            }
        }
        guard status == 0 else { return nil }
        self.init(codes: codes, inverseScales: scales, rows: rows, columns: columns)
    }

    private init?(codes: [Int8], inverseScales: [Float], rows: Int, columns: Int) {
        var packed = [UInt8](repeating: 0, count: chorus_i8gemm_packed_bytes(Int32(rows), Int32(columns)))  // checked: a layer's sizes
        let status = codes.withUnsafeBufferPointer { c in
            packed.withUnsafeMutableBufferPointer { chorus_i8gemm_pack(c.baseAddress!, Int32(rows), Int32(columns), $0.baseAddress!) }  // checked: as above
        }
        var packedScales = [Float](repeating: 0, count: chorus_i8gemm_scale_count(Int32(rows), Int32(columns)))  // checked: as above
        let packedStatus = inverseScales.withUnsafeBufferPointer { s in
            packedScales.withUnsafeMutableBufferPointer { chorus_i8gemm_pack_scales(s.baseAddress!, Int32(rows), Int32(columns), $0.baseAddress!) }  // checked: as above
        }
        guard status == 0, packedStatus == 0 else { return nil }
        (self.rows, self.columns, self.packed, self.inverseScales, self.packedScales) = (rows, columns, packed, inverseScales, packedScales)
    }

    /// The weight as float32: each code times its row's inverse scale.
    public func dequantized() -> Tensor {
        let groups = (columns + 127) / 128 * 32
        var out = [Float](repeating: 0, count: rows * columns)
        for r in 0..<rows {
            let (panel, j) = (r / 32, r % 32)
            for i in 0..<columns {
                let byte = packed[((panel * groups + i / 4) * 32 + j) * 4 + i % 4]
                out[r * columns + i] = Float(Int(byte) - 128) * inverseScale(row: r, column: i)  // checked: a byte widened: never traps
            }
        }
        return Tensor(shape: [rows, columns], storage: out)
    }

    /// x [.., columns] · Wᵀ (+ bias) → [.., rows].
    public func timesTransposed(_ x: Tensor, bias: Tensor?) -> Tensor {
        precondition(x.shape.last == columns, "int8 linear expects inputs of width \(columns), got \(x.shape)")
        precondition(bias == nil || bias!.count == rows, "int8 linear bias has \(bias!.count) values for \(rows) outputs")  // checked: bias is non-nil where it is unwrapped
        let (m, n, k) = (x.count / columns, rows, columns)
        guard m > 0 else { return Tensor(shape: Array(x.shape.dropLast()) + [n], storage: []) }
        var codes = [Int8](repeating: 0, count: chorus_i8gemm_packed_x_bytes(Int32(m), Int32(k)))  // checked: a batch's rows
        var scales = [Float].unset(chorus_i8gemm_x_scale_count(Int32(m), Int32(k)))  // checked: as above
        var sums = [Int32](repeating: 0, count: scales.count)
        var failures = [Bool](repeating: false, count: Parallel.cores + 1)
        let panels = (n + 31) / 32, rowBlocks = (m + 11) / 12
        // Two jobs or more a core once the product is worth splitting: cores here are not equally fast.
        let jobs = BLAS.pieces(work: m * n * k) <= 1 ? 1 : min(panels, 4 * Parallel.cores)
        x.storage.withUnsafeBufferPointer { px in
            codes.withUnsafeMutableBufferPointer { c in
                scales.withUnsafeMutableBufferPointer { s in
                    sums.withUnsafeMutableBufferPointer { sum in
                        let (source, codes, scales, sums) = (px.baseAddress!, c.baseAddress!, s.baseAddress!, sum.baseAddress!)  // checked: m ≥ 1 and k ≥ 1, so none is empty
                        let pieces = jobs > 1 ? min(rowBlocks, Parallel.cores) : 1, step = (rowBlocks + pieces - 1) / pieces
                        failures.withUnsafeMutableBufferPointer { failed in
                            let failed = failed.baseAddress!  // checked: Parallel.cores + 1 slots
                            func quantize(_ j: Int) {
                                let (b0, b1) = (j * step, min(rowBlocks, (j + 1) * step))
                                guard b0 < b1 else { return }
                                failed[j] = chorus_i8gemm_quantize_x(source, k, Int32(m), Int32(k), Int32(b0), Int32(b1), codes, scales, sums) != 0  // checked: as above
                            }
                            if pieces == 1 { quantize(0) } else { Parallel.perform(iterations: pieces, quantize) }
                        }
                    }
                }
            }
        }
        // An input with a NaN or an infinity has no int8 codes; float32 products would spread it over their
        // whole output, so this product gives NaN, never a crash.
        if failures.contains(true) { return Tensor(shape: Array(x.shape.dropLast()) + [n], storage: [Float](repeating: .nan, count: m * n)) }
        var out = [Float].unset(m * n)
        codes.withUnsafeBufferPointer { c in
            scales.withUnsafeBufferPointer { s in
                sums.withUnsafeBufferPointer { sum in
                    packed.withUnsafeBufferPointer { w in
                        packedScales.withUnsafeBufferPointer { ws in
                            out.withUnsafeMutableBufferPointer { y in
                                func product(_ b: UnsafePointer<Float>?) {
                                    let args = chorus_i8gemm_args(packed_x: c.baseAddress!, x_scale: s.baseAddress!, x_sums: sum.baseAddress!,  // checked: m, n, k ≥ 1: none is empty
                                                                  packed: w.baseAddress!, w_scale: ws.baseAddress!, bias: b,  // checked: as above
                                                                  m: Int32(m), n: Int32(n), k: Int32(k), y: y.baseAddress!, ldy: n)  // checked: as above
                                    let step = (panels + jobs - 1) / jobs
                                    withUnsafePointer(to: args) { g in
                                        func run(_ j: Int) {
                                            let (p0, p1) = (j * step, min(panels, (j + 1) * step))
                                            guard p0 < p1 else { return }
                                            precondition(chorus_i8gemm(g, Int32(p0), Int32(p1)) == 0, "chorus_i8gemm rejected [\(m), \(k)] · [\(k), \(n)]")  // checked: panels of a layer
                                        }
                                        if jobs == 1 { run(0) } else { Parallel.perform(iterations: jobs, run) }
                                    }
                                }
                                if let bias { bias.storage.withUnsafeBufferPointer { product($0.baseAddress!) } } else { product(nil) }  // checked: a bias has a value per row
                            }
                        }
                    }
                }
            }
        }
        return Tensor(shape: Array(x.shape.dropLast()) + [n], storage: out)
    }
}
