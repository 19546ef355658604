/// Filter taps for resizing one axis, in Pillow's fixed point. Matches precompute_coeffs and
/// normalize_coeffs_8bpc in Pillow's src/libImaging/Resample.c, so results agree bit for bit.
struct ResampleCoefficients {
    /// 8 bits of pixel value and 2 bits of headroom (taps can sum past 1 or go negative) in an Int32.
    static let precisionBits = 22

    let outputSize: Int
    /// Taps per output sample, including zero padding (Pillow's ksize).
    let stride: Int
    /// First source sample each output reads.
    private(set) var first: [Int]
    /// Number of source samples each output reads.
    let count: [Int]
    /// `stride` fixed-point taps per output sample.
    let weights: [Int32]

    init(inputSize: Int, outputSize: Int, filter: ResizeFilter) {
        let scale = Double(inputSize) / Double(outputSize)
        // Downscaling widens the kernel by the scale factor: this is the antialiasing.
        let filterScale = max(scale, 1)
        let support = filter.support * filterScale
        let stride = Int(support.rounded(.up)) * 2 + 1
        let one = Double(1 << Self.precisionBits)

        var first = [Int](repeating: 0, count: outputSize)
        var count = [Int](repeating: 0, count: outputSize)
        var weights = [Int32](repeating: 0, count: outputSize * stride)
        var taps = [Double](repeating: 0, count: stride)
        for output in 0..<outputSize {
            let center = (Double(output) + 0.5) * scale
            // Int(_:) truncates toward zero like C's (int) cast; the bounds then clamp.
            let lower = max(Int(center - support + 0.5), 0)
            let upper = min(Int(center + support + 0.5), inputSize)
            var total = 0.0
            for i in 0..<(upper - lower) {
                taps[i] = filter.weight((Double(i + lower) - center + 0.5) / filterScale)
                total += taps[i]
            }
            for i in 0..<(upper - lower) {
                let tap = total != 0 ? taps[i] / total : taps[i]
                weights[output * stride + i] = Int32(tap < 0 ? -0.5 + tap * one : 0.5 + tap * one)
            }
            first[output] = lower
            count[output] = upper - lower
        }
        self.outputSize = outputSize
        self.stride = stride
        self.first = first
        self.count = count
        self.weights = weights
    }

    /// Source rows actually read, so the first pass can skip the rest.
    var usedRange: Range<Int> {
        first[0]..<(first[outputSize - 1] + count[outputSize - 1])
    }

    func shifted(by offset: Int) -> ResampleCoefficients {
        var copy = self
        copy.first = first.map { $0 - offset }
        return copy
    }
}

/// Pillow's clip8: drop the fraction, clamp to a byte.
@inline(__always)
func clampFixedPoint(_ sum: Int32) -> UInt8 {
    UInt8(clamping: sum >> ResampleCoefficients.precisionBits)
}

/// Rounding offset Pillow starts each sum with.
let fixedPointHalf: Int32 = 1 << (ResampleCoefficients.precisionBits - 1)
