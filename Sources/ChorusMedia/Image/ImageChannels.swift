extension Image {
    /// Converts to 3 channels the way PIL's convert("RGB") does: gray is repeated, alpha dropped.
    public func rgb() -> Image {
        switch channels {
        case 3:
            return self
        case 4:
            return droppingAlpha()
        default:
            var rgb = [UInt8](repeating: 0, count: width * height * 3)
            for (i, value) in pixels.enumerated() {
                rgb[3 * i] = value
                rgb[3 * i + 1] = value
                rgb[3 * i + 2] = value
            }
            return Image(unchecked: width, height, 3, rgb)
        }
    }

    /// RGB from RGBA, discarding alpha (not compositing), as PIL's convert("RGB").
    func droppingAlpha() -> Image {
        precondition(channels == 4)
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        pixels.withUnsafeBufferPointer { rgba in
            for i in 0..<(width * height) {
                rgb[3 * i] = rgba[4 * i]
                rgb[3 * i + 1] = rgba[4 * i + 1]
                rgb[3 * i + 2] = rgba[4 * i + 2]
            }
        }
        return Image(unchecked: width, height, 3, rgb)
    }
}
