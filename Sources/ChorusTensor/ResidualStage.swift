import CKernels

/// A vocoder's stage of residual blocks (HiFi-GAN's multi-receptive-field fusion): the mean of several
/// blocks, each a chain of steps x ← x + conv(leaky(x)) (type 2) or x ← x + conv₂(leaky(conv₁(leaky(x))))
/// (type 1), every convolution "same"-padded, channels to channels.
///
/// Run one convolution at a time, each of the 12–18 convolutions of a stage reads and writes the whole
/// signal (8 MB at 32 channels × 65 000 samples) and the stage is bound by memory. Here
/// (Sources/CKernels/residual_stage.c) a time tile goes through every block while its intermediates stay
/// in L2, recomputing the few positions its neighbours also need.
public struct ResidualStage: Sendable {
    public struct Conv: Sendable {
        public var weight: Tensor, bias: Tensor?, dilation: Int
        /// The weight already packed by the model, if it keeps one (otherwise it is packed here).
        public var packed: PackedConv1dWeight?
        public init(weight: Tensor, bias: Tensor?, dilation: Int, packed: PackedConv1dWeight? = nil) {
            (self.weight, self.bias, self.dilation, self.packed) = (weight, bias, dilation, packed)
        }
    }

    public struct Step: Sendable {
        public var first: Conv, second: Conv?
        public init(first: Conv, second: Conv? = nil) { (self.first, self.second) = (first, second) }
    }

    struct Layout: Sendable { var packed: Int, bias: Int, taps: Int, dilation: Int }

    let channels: Int, slope: Float
    let block: DirectBlock
    /// Every weight packed back to back, every bias (zeros where a convolution has none) likewise.
    let packed: [Float], biases: [Float]
    /// Per block: its steps' first and second convolutions.
    let blocks: [(first: [Layout], second: [Layout]?)]

    /// Channels up to which the tiled stage wins. At 128 channels a tile that keeps its intermediates in L2 is
    /// 128 steps wide, the 24-step halo is recomputed on every tile, and each block's weights (1.5 MB) come
    /// from L3 again: one direct convolution at a time took 22.8 ms a stage there against 27.4 tiled.
    public static let widest = 64

    /// nil where the direct kernels do not run on this CPU, or the blocks are not what the kernel takes
    /// (square weights up to `widest` channels, even "same" padding, every step of a block of one type).
    public init?(blocks: [[Step]], slope: Float, block: DirectBlock? = DirectBlock.best) {
        guard let block, block.supported, let c = blocks.first?.first?.first.weight.shape.first, c <= Self.widest,
              !blocks.contains(where: \.isEmpty)
        else { return nil }
        var packed: [Float] = [], biases: [Float] = []
        func add(_ conv: Conv) -> Layout? {
            let shape = conv.weight.shape
            guard shape.count == 3, shape[0] == c, shape[1] == c, conv.dilation > 0, (shape[2] - 1) * conv.dilation % 2 == 0,
                  conv.bias.map({ $0.count == c }) ?? true,
                  let p = conv.packed.flatMap({ $0.matches(conv.weight, block: block) ? $0 : nil }) ?? PackedConv1dWeight(conv.weight, block: block)
            else { return nil }
            let layout = Layout(packed: packed.count, bias: biases.count, taps: shape[2], dilation: conv.dilation)
            packed += p.storage
            biases += conv.bias?.storage ?? [Float](repeating: 0, count: c)
            return layout
        }
        var layouts: [(first: [Layout], second: [Layout]?)] = []
        for steps in blocks {
            let typeOne = steps[0].second != nil
            guard steps.allSatisfy({ ($0.second != nil) == typeOne }) else { return nil }
            var first: [Layout] = [], second: [Layout] = []
            for step in steps {
                guard let f = add(step.first) else { return nil }
                first.append(f)
                if let s = step.second {
                    guard let l = add(s) else { return nil }
                    second.append(l)
                }
            }
            layouts.append((first, typeOne ? second : nil))
        }
        (channels, self.slope, self.packed, self.biases, self.blocks, self.block) = (c, slope, packed, biases, layouts, block)
    }

    /// x [1, channels, length] → the mean of the blocks, [1, channels, length].
    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.rank == 3 && x.shape[0] == 1 && x.shape[1] == channels, "residual stage of \(channels) channels got \(x.shape)")
        let length = x.shape[2]
        var out = [Float].unset(x.count)
        let refCount = blocks.reduce(0) { $0 + $1.first.count + ($1.second?.count ?? 0) }
        let refs = UnsafeMutablePointer<chorus_conv_ref>.allocate(capacity: refCount)
        let blockArgs = UnsafeMutablePointer<chorus_residual_block>.allocate(capacity: blocks.count)
        defer { refs.deallocate(); blockArgs.deallocate() }
        packed.withUnsafeBufferPointer { w in
            biases.withUnsafeBufferPointer { b in
                x.storage.withUnsafeBufferPointer { input in
                    out.withUnsafeMutableBufferPointer { output in
                        var next = 0
                        func place(_ layouts: [Layout]) -> UnsafePointer<chorus_conv_ref> {
                            let start = refs + next
                            for l in layouts {
                                refs[next] = chorus_conv_ref(packed: w.baseAddress! + l.packed, bias: b.baseAddress! + l.bias,
                                                             taps: Int32(l.taps), dilation: Int32(l.dilation))
                                next += 1
                            }
                            return UnsafePointer(start)
                        }
                        for (i, block) in blocks.enumerated() {
                            let first = place(block.first)
                            let second = block.second.map { place($0) }
                            blockArgs[i] = chorus_residual_block(steps: Int32(block.first.count), first: first, second: second)
                        }
                        let args = chorus_residual_stage_args(x: input.baseAddress!, out: output.baseAddress!, length: length,
                                                              channels: Int32(channels), block_rows: block.rawValue, slope: slope, blocks: Int32(blocks.count),
                                                              block: blockArgs)
                        withUnsafePointer(to: args) { a in
                            let work = packed.count * length  // multiply-adds, near enough
                            DirectConvolution.inSpans(length, pieces: min(BLAS.pieces(work: work), max(1, length / chorus_residual_stage_tile(a))),
                                                      align: block.cols, scratch: chorus_residual_stage_scratch_count(a),
                                                      "chorus_residual_stage: \(channels) channels") { t0, t1, scratch in
                                chorus_residual_stage(a, t0, t1, scratch)
                            }
                        }
                    }
                }
            }
        }
        return Tensor(shape: x.shape, storage: out)
    }
}
