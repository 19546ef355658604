/// Decoding and encoding of the image formats Chorus accepts. The format is taken from the data's
/// magic bytes; sizes are checked against `ImageLimits` from the header, before decoding.
public enum ImageCodec {
    public static func decode(_ bytes: [UInt8], limits: ImageLimits = .default) throws -> Image {
        switch try format(of: bytes) {
        case .png: return try PNGCodec.decode(bytes, limits: limits)
        case .jpeg: return try JPEGCodec.decode(bytes, limits: limits)
        }
    }

    /// Decodes a single-channel image at 16 bits, for heightfields. 16-bit PNGs keep every bit;
    /// 8-bit gray PNGs and JPEGs are widened (v × 257).
    public static func decodeGray16(_ bytes: [UInt8], limits: ImageLimits = .default) throws -> Image16 {
        switch try format(of: bytes) {
        case .png:
            return try PNGCodec.decodeGray16(bytes, limits: limits)
        case .jpeg:
            let image = try JPEGCodec.decode(bytes, limits: limits)
            guard image.channels == 1 else {
                throw MediaError.unsupportedPixelLayout("a 16-bit gray image needs a grayscale JPEG, this one is RGB")
            }
            return Image16(unchecked: image)
        }
    }

    /// `fast` trades a somewhat larger file for about 3× quicker compression.
    public static func encodePNG(_ image: Image, fast: Bool = true) throws -> [UInt8] {
        try PNGCodec.encode(image, fast: fast)
    }

    /// Writes a 16-bit grayscale PNG.
    public static func encodePNG(_ image: Image16, fast: Bool = true) throws -> [UInt8] {
        try PNGCodec.encode(image, fast: fast)
    }

    /// `quality` is libjpeg's 1...100 scale. RGBA images lose their alpha channel.
    public static func encodeJPEG(_ image: Image, quality: Int = 90) throws -> [UInt8] {
        try JPEGCodec.encode(image, quality: quality)
    }

    private static func format(of bytes: [UInt8]) throws -> ImageFormat {
        guard !bytes.isEmpty else { throw MediaError.emptyInput(kind: "image") }
        guard let format = ImageFormat.sniff(bytes) else {
            throw MediaError.unsupportedImageFormat(firstBytes: Array(bytes.prefix(8)))
        }
        return format
    }
}
