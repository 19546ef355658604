import CPNG

/// PNG through libpng's simplified png_image API, which reports errors in the struct instead of
/// longjmp-ing, so it is safe to call from Swift.
enum PNGCodec {
    private static let alpha = UInt32(PNG_FORMAT_FLAG_ALPHA)
    private static let color = UInt32(PNG_FORMAT_FLAG_COLOR)
    private static let linear = UInt32(PNG_FORMAT_FLAG_LINEAR)

    /// What to ask libpng for, given the format it found in the file.
    private struct Output {
        var format: UInt32
        var flags: UInt32 = 0
        var channels: Int
        var bytesPerSample: Int = 1
    }

    static func decode(_ bytes: [UInt8], limits: ImageLimits) throws -> Image {
        let (width, height, output, data) = try read(bytes, limits: limits) { fileFormat in
            // 16-bit files are scaled to 8 bits; without this flag libpng would also gamma-encode them.
            let flags = UInt32(PNG_IMAGE_FLAG_16BIT_sRGB)
            if fileFormat & alpha != 0 {
                // Gray+alpha widens to RGBA: Image has no two-channel layout.
                return Output(format: color | alpha, flags: flags, channels: 4)
            }
            if fileFormat & color != 0 {
                return Output(format: color, flags: flags, channels: 3)
            }
            return Output(format: 0, flags: flags, channels: 1)
        }
        return Image(unchecked: width, height, output.channels, data)
    }

    /// Reads a grayscale PNG at full precision. 8-bit (or smaller) files are widened so that 255
    /// maps to 65535.
    static func decodeGray16(_ bytes: [UInt8], limits: ImageLimits) throws -> Image16 {
        let (width, height, output, data) = try read(bytes, limits: limits) { fileFormat in
            guard fileFormat & (color | alpha) == 0 else {
                let layout = (fileFormat & color != 0 ? "RGB" : "gray") + (fileFormat & alpha != 0 ? " with alpha" : "")
                throw MediaError.unsupportedPixelLayout("a 16-bit gray image needs a grayscale PNG without alpha, this one is \(layout)")
            }
            if fileFormat & linear != 0 {
                return Output(format: linear, channels: 1, bytesPerSample: 2)
            }
            return Output(format: 0, channels: 1)
        }
        if output.bytesPerSample == 1 {
            return Image16(unchecked: Image(unchecked: width, height, 1, data))
        }
        let samples = data.withUnsafeBytes { Array($0.bindMemory(to: UInt16.self)) }
        return try Image16(width: width, height: height, pixels: samples)
    }

    private static func read(
        _ bytes: [UInt8], limits: ImageLimits, output choose: (_ fileFormat: UInt32) throws -> Output
    ) throws -> (width: Int, height: Int, output: Output, data: [UInt8]) {
        if let size = PNGChunks.headerSize(bytes) {
            try limits.check(width: size.width, height: size.height)
        }
        let stream = PNGChunks.withoutColorManagement(bytes)
        // libpng reads lazily from this memory, so everything happens inside one closure.
        return try stream.withUnsafeBytes { memory in
            var image = newImage()
            guard png_image_begin_read_from_memory(&image, memory.baseAddress, memory.count) != 0 else {
                throw MediaError.corruptPNG(message(of: image))
            }
            // Frees libpng's state if we throw before finish_read (which frees it itself).
            defer { png_image_free(&image) }
            let width = Int(image.width)
            let height = Int(image.height)
            try limits.check(width: width, height: height)
            let output = try choose(image.format)
            image.format = output.format
            image.flags |= output.flags
            var data = [UInt8](repeating: 0, count: width * height * output.channels * output.bytesPerSample)
            let finished = data.withUnsafeMutableBytes {
                png_image_finish_read(&image, nil, $0.baseAddress, 0, nil)
            }
            guard finished != 0 else { throw MediaError.corruptPNG(message(of: image)) }
            return (width, height, output, data)
        }
    }

    static func encode(_ image: Image, fast: Bool) throws -> [UInt8] {
        let format: UInt32 = switch image.channels {
        case 1: 0
        case 3: color
        default: color | alpha
        }
        return try image.pixels.withUnsafeBytes {
            try write($0, width: image.width, height: image.height, format: format, fast: fast)
        }
    }

    static func encode(_ image: Image16, fast: Bool) throws -> [UInt8] {
        try image.pixels.withUnsafeBytes {
            try write($0, width: image.width, height: image.height, format: linear, fast: fast)
        }
    }

    private static func write(
        _ pixels: UnsafeRawBufferPointer, width: Int, height: Int, format: UInt32, fast: Bool
    ) throws -> [UInt8] {
        guard width <= Int(Int32.max), height <= Int(Int32.max) else {
            throw MediaError.encodingFailed("PNG cannot store a \(width)×\(height) image")
        }
        // Enough for almost every image; libpng says how much it needs when it is not.
        var capacity = pixels.count + pixels.count / 8 + height + 1024
        var failure = "libpng gave no reason"
        for _ in 0..<2 {
            var image = newImage()
            image.width = UInt32(width)
            image.height = UInt32(height)
            image.format = format
            image.flags = fast ? UInt32(PNG_IMAGE_FLAG_FAST) : 0
            defer { png_image_free(&image) }
            var encoded = [UInt8](repeating: 0, count: capacity)
            var size = png_alloc_size_t(capacity)
            let written = encoded.withUnsafeMutableBytes {
                png_image_write_to_memory(&image, $0.baseAddress, &size, 0, pixels.baseAddress, 0, nil)
            }
            if written != 0 {
                encoded.removeSubrange(Int(size)...)
                return encoded
            }
            failure = message(of: image)
            guard Int(size) > capacity else { break }
            capacity = Int(size)
        }
        throw MediaError.encodingFailed("libpng: \(failure)")
    }

    private static func newImage() -> png_image {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        return image
    }

    private static func message(of image: png_image) -> String {
        withUnsafeBytes(of: image.message) { raw in
            let text = String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            return text.isEmpty ? "libpng gave no reason" : text
        }
    }
}
