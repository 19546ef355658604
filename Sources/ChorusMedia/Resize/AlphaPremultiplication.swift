/// Pillow's RGBA <-> RGBa conversions (Convert.c), used around resizing.
extension Image {
    /// c × a / 255, rounded as Pillow's MULDIV255.
    func premultipliedAlpha() -> Image {
        mapRGBA { color, alpha in
            let t = UInt32(color) * UInt32(alpha) + 128
            return UInt8(((t >> 8) + t) >> 8)
        }
    }

    /// c × 255 / a, truncated and clamped; fully opaque and fully transparent pixels are unchanged.
    func straightAlpha() -> Image {
        mapRGBA { color, alpha in
            guard alpha != 0, alpha != 255 else { return color }
            return UInt8(min(255, UInt32(color) * 255 / UInt32(alpha)))
        }
    }

    private func mapRGBA(_ transform: (_ color: UInt8, _ alpha: UInt8) -> UInt8) -> Image {
        precondition(channels == 4)
        var result = pixels
        result.withUnsafeMutableBufferPointer { p in
            for i in stride(from: 0, to: p.count, by: 4) {
                let alpha = p[i + 3]
                p[i] = transform(p[i], alpha)
                p[i + 1] = transform(p[i + 1], alpha)
                p[i + 2] = transform(p[i + 2], alpha)
            }
        }
        return Image(unchecked: width, height, 4, result)
    }
}
