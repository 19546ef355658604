/// The two separable passes of Pillow's 8-bit resize. The intermediate image is rounded to bytes
/// between them, as Pillow does; that rounding is part of what makes results match exactly.

/// Resamples each row of `source` (rows `rows`, interleaved `channels`) to `coefficients.outputSize`
/// pixels.
func resampleHorizontally(
    _ source: UnsafeBufferPointer<UInt8>, width: Int, channels: Int, rows: Range<Int>,
    _ coefficients: ResampleCoefficients, into output: UnsafeMutableBufferPointer<UInt8>
) {
    let outWidth = coefficients.outputSize
    coefficients.weights.withUnsafeBufferPointer { weights in
        for (outRow, row) in rows.enumerated() {
            let sourceRow = source.baseAddress! + row * width * channels
            let outputRow = output.baseAddress! + outRow * outWidth * channels
            for x in 0..<outWidth {
                let taps = weights.baseAddress! + x * coefficients.stride
                let pixel = sourceRow + coefficients.first[x] * channels
                for c in 0..<channels {
                    var sum = fixedPointHalf
                    for i in 0..<coefficients.count[x] {
                        sum &+= Int32(pixel[i * channels + c]) &* taps[i]
                    }
                    outputRow[x * channels + c] = clampFixedPoint(sum)
                }
            }
        }
    }
}

/// Resamples the columns of `source` (rows of `rowLength` bytes) to `coefficients.outputSize` rows.
/// Whole rows are accumulated at once so the inner loop runs over contiguous bytes.
func resampleVertically(
    _ source: UnsafeBufferPointer<UInt8>, rowLength: Int,
    _ coefficients: ResampleCoefficients, into output: UnsafeMutableBufferPointer<UInt8>
) {
    var sums = [Int32](repeating: 0, count: rowLength)
    sums.withUnsafeMutableBufferPointer { sums in
        coefficients.weights.withUnsafeBufferPointer { weights in
            for y in 0..<coefficients.outputSize {
                for i in 0..<rowLength { sums[i] = fixedPointHalf }
                for tap in 0..<coefficients.count[y] {
                    let weight = weights[y * coefficients.stride + tap]
                    let sourceRow = source.baseAddress! + (coefficients.first[y] + tap) * rowLength
                    for i in 0..<rowLength { sums[i] &+= Int32(sourceRow[i]) &* weight }
                }
                let outputRow = output.baseAddress! + y * rowLength
                for i in 0..<rowLength { outputRow[i] = clampFixedPoint(sums[i]) }
            }
        }
    }
}
