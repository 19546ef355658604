extension Image {
    /// Cuts a `width`×`height` window from the centre, as transformers' `center_crop`: the offset is
    /// (size - crop) // 2 rounded down, and a crop larger than the image is padded with zeros.
    public func centerCropped(width cropWidth: Int, height cropHeight: Int) throws -> Image {
        guard cropWidth > 0, cropHeight > 0 else {
            throw MediaError.invalidImage("cannot crop to \(cropWidth)×\(cropHeight)")
        }
        if cropWidth == width && cropHeight == height { return self }
        let top = floorHalf(height - cropHeight)
        let left = floorHalf(width - cropWidth)
        let columns = max(0, -left)..<min(cropWidth, width - left)
        var output = [UInt8](repeating: 0, count: cropWidth * cropHeight * channels)
        for row in 0..<cropHeight where (0..<height).contains(row + top) && !columns.isEmpty {
            let source = ((row + top) * width + columns.lowerBound + left) * channels
            let target = (row * cropWidth + columns.lowerBound) * channels
            let length = columns.count * channels
            output[target..<(target + length)] = pixels[source..<(source + length)]
        }
        return Image(unchecked: cropWidth, cropHeight, channels, output)
    }
}

/// Python's `n // 2`, which rounds toward negative infinity.
private func floorHalf(_ n: Int) -> Int {
    n >= 0 ? n / 2 : -((-n + 1) / 2)
}
