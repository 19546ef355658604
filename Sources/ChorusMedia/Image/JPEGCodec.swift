import CJPEGShim

/// JPEG through the CJPEGShim C functions, which turn libjpeg's longjmp-based errors into codes.
enum JPEGCodec {
    static func decode(_ bytes: [UInt8], limits: ImageLimits) throws -> Image {
        try bytes.withUnsafeBufferPointer { data in
            var status = chorus_jpeg_status()
            try check(chorus_jpeg_read_info(data.baseAddress, data.count, &status), status, limits)
            let width = Int(status.width)
            let height = Int(status.height)
            let channels = Int(status.channels)
            try limits.check(width: width, height: height)
            var pixels = [UInt8](repeating: 0, count: width * height * channels)
            let code = pixels.withUnsafeMutableBufferPointer {
                chorus_jpeg_decode(data.baseAddress, data.count, $0.baseAddress, $0.count, &status)
            }
            try check(code, status, limits)
            return Image(unchecked: width, height, channels, pixels)
        }
    }

    /// JPEG has no alpha: RGBA is encoded from its RGB channels, as PIL's convert("RGB") does.
    static func encode(_ image: Image, quality: Int) throws -> [UInt8] {
        let source = image.channels == 4 ? image.droppingAlpha() : image
        var status = chorus_jpeg_status()
        var output: UnsafeMutablePointer<UInt8>?
        var size = 0
        let code = source.pixels.withUnsafeBufferPointer {
            chorus_jpeg_encode(
                $0.baseAddress, Int32(clamping: source.width), Int32(clamping: source.height),
                Int32(source.channels), Int32(clamping: quality), &output, &size, &status)
        }
        defer { chorus_jpeg_free(output) }
        guard code == CHORUS_JPEG_OK, let output else {
            throw MediaError.encodingFailed("JPEG: \(message(of: status))")
        }
        return Array(UnsafeBufferPointer(start: output, count: size))
    }

    private static func check(_ code: chorus_jpeg_code, _ status: chorus_jpeg_status, _ limits: ImageLimits) throws {
        switch code {
        case CHORUS_JPEG_OK:
            return
        case CHORUS_JPEG_TOO_LARGE:
            throw MediaError.imageTooLarge(width: Int(status.width), height: Int(status.height), limits: limits)
        case CHORUS_JPEG_TRUNCATED:
            throw MediaError.truncatedJPEG(message(of: status))
        case CHORUS_JPEG_UNSUPPORTED:
            throw MediaError.unsupportedJPEG(message(of: status))
        default:
            throw MediaError.corruptJPEG(message(of: status))
        }
    }

    private static func message(of status: chorus_jpeg_status) -> String {
        withUnsafeBytes(of: status.message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}
