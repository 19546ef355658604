extension Image {
    /// Resizes like Pillow's `Image.resize(size, BILINEAR or BICUBIC)` (no `reducing_gap`), bit for
    /// bit: a separable convolution whose kernel widens with the downscale factor (antialiasing),
    /// horizontal pass first, with fixed-point taps and byte rounding in between. RGBA is resized
    /// with premultiplied alpha, as Pillow does, so transparent pixels do not bleed colour.
    public func resized(width: Int, height: Int, filter: ResizeFilter = .bicubic) throws -> Image {
        guard width > 0, height > 0 else {
            throw MediaError.invalidImage("cannot resize to \(width)×\(height)")
        }
        if width == self.width && height == self.height { return self }
        if channels == 4 {
            return premultipliedAlpha().resampled(width: width, height: height, filter: filter).straightAlpha()
        }
        return resampled(width: width, height: height, filter: filter)
    }

    private func resampled(width outWidth: Int, height outHeight: Int, filter: ResizeFilter) -> Image {
        var vertical = ResampleCoefficients(inputSize: height, outputSize: outHeight, filter: filter)
        var current = self
        if outWidth != width {
            let horizontal = ResampleCoefficients(inputSize: width, outputSize: outWidth, filter: filter)
            // Only the rows the vertical pass will read.
            let rows = outHeight != height ? vertical.usedRange : 0..<height
            vertical = vertical.shifted(by: rows.lowerBound)
            var narrowed = [UInt8](repeating: 0, count: rows.count * outWidth * channels)
            pixels.withUnsafeBufferPointer { source in
                narrowed.withUnsafeMutableBufferPointer { output in
                    resampleHorizontally(source, width: width, channels: channels, rows: rows, horizontal, into: output)
                }
            }
            current = Image(unchecked: outWidth, rows.count, channels, narrowed)
        }
        guard outHeight != height else { return current }
        var output = [UInt8](repeating: 0, count: outWidth * outHeight * channels)
        current.pixels.withUnsafeBufferPointer { source in
            output.withUnsafeMutableBufferPointer { output in
                resampleVertically(source, rowLength: current.rowLength, vertical, into: output)
            }
        }
        return Image(unchecked: outWidth, outHeight, channels, output)
    }
}
