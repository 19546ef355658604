import CImageCodecs
import Foundation

/// An 8-bit image, rows of interleaved channels (1 gray, 3 RGB, 4 RGBA).
public struct Image: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var channels: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * channels, "\(width)×\(height)×\(channels) needs \(width * height * channels) bytes, got \(pixels.count)")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// The same image as RGB: gray is repeated, alpha dropped (CLIP and the VAE take RGB).
    public func rgb() -> Image {
        if channels == 3 { return self }
        var out = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) {
            for c in 0..<3 { out[i * 3 + c] = pixels[i * channels + (channels == 1 ? 0 : c)] }
        }
        return Image(width: width, height: height, channels: 3, pixels: out)
    }
}

/// A 16-bit grayscale image (terrain heightfields).
public struct Image16: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var pixels: [UInt16]

    public init(width: Int, height: Int, pixels: [UInt16]) {
        precondition(pixels.count == width * height)
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}

/// Dimension limits checked from the header, before any pixel memory exists: a 100000×100000 header
/// costs nothing but its error message.
public struct ImageLimits: Sendable {
    public var maxWidth: Int
    public var maxHeight: Int

    public init(maxWidth: Int = 8192, maxHeight: Int = 8192) {
        self.maxWidth = maxWidth
        self.maxHeight = maxHeight
    }

    func check(width: Int, height: Int) throws {
        guard width > 0, height > 0 else { throw MediaError.corrupt("image header says \(width)×\(height)") }
        guard width <= maxWidth, height <= maxHeight else {
            throw MediaError.tooLarge("image is \(width)×\(height), the limit is \(maxWidth)×\(maxHeight)")
        }
    }
}

public enum ImageCodec {
    public enum Format: String, Sendable { case png, jpeg }

    /// The format from the magic bytes.
    public static func sniff(_ bytes: [UInt8]) -> Format? {
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if bytes.starts(with: [0xFF, 0xD8, 0xFF]) { return .jpeg }
        return nil
    }

    /// Decodes PNG or JPEG to 8 bits per channel (16-bit PNGs are reduced; use decode16 to keep them).
    public static func decode(_ bytes: [UInt8], limits: ImageLimits = .init()) throws -> Image {
        switch sniff(bytes) {
        case .png: return try decodePNG(bytes, limits: limits)
        case .jpeg: return try decodeJPEG(bytes, limits: limits)
        case nil:
            let head = bytes.prefix(8).map { String(format: "%02x", $0) }.joined(separator: " ")
            throw MediaError.unsupported(bytes.isEmpty ? "no image data" : "not a PNG or JPEG image (first bytes: \(head))")
        }
    }

    static func decodeJPEG(_ bytes: [UInt8], limits: ImageLimits) throws -> Image {
        var width: Int32 = 0, height: Int32 = 0, channels: Int32 = 0
        try call { chorus_jpeg_info(bytes, bytes.count, &width, &height, &channels, $0) }
        try limits.check(width: Int(width), height: Int(height))
        var pixels = [UInt8](repeating: 0, count: Int(width) * Int(height) * Int(channels))
        try pixels.withUnsafeMutableBufferPointer { out in
            try call { chorus_jpeg_decode(bytes, bytes.count, out.baseAddress, out.count, $0) }
        }
        return Image(width: Int(width), height: Int(height), channels: Int(channels), pixels: pixels)
    }

    static func decodePNG(_ bytes: [UInt8], limits: ImageLimits) throws -> Image {
        let (width, height, channels, _) = try pngInfo(bytes, limits: limits)
        var pixels = [UInt8](repeating: 0, count: width * height * channels)
        try pixels.withUnsafeMutableBufferPointer { out in
            try call { chorus_png_decode(bytes, bytes.count, Int32(channels), 8, out.baseAddress, out.count, $0) }
        }
        return Image(width: width, height: height, channels: channels, pixels: pixels)
    }

    /// A PNG as 16-bit gray (any PNG is converted; 16-bit gray files come through unchanged).
    public static func decode16(_ bytes: [UInt8], limits: ImageLimits = .init()) throws -> Image16 {
        guard sniff(bytes) == .png else { throw MediaError.unsupported("16-bit images must be PNG") }
        let (width, height, _, _) = try pngInfo(bytes, limits: limits)
        var pixels = [UInt16](repeating: 0, count: width * height)
        try pixels.withUnsafeMutableBufferPointer { out in
            try call { chorus_png_decode(bytes, bytes.count, 1, 16, out.baseAddress, out.count * 2, $0) }
        }
        return Image16(width: width, height: height, pixels: pixels)
    }

    private static func pngInfo(_ bytes: [UInt8], limits: ImageLimits) throws -> (Int, Int, Int, Int) {
        var width: Int32 = 0, height: Int32 = 0, channels: Int32 = 0, depth: Int32 = 0
        try call { chorus_png_info(bytes, bytes.count, &width, &height, &channels, &depth, $0) }
        try limits.check(width: Int(width), height: Int(height))
        // Gray+alpha becomes RGBA: the rest of Chorus knows 1, 3 and 4 channels.
        return (Int(width), Int(height), channels == 2 ? 4 : Int(channels), Int(depth))
    }

    public static func encodePNG(_ image: Image, fast: Bool = false) throws -> [UInt8] {
        try image.pixels.withUnsafeBytes { pixels in
            try encodePNG(pixels.baseAddress!, width: image.width, height: image.height, channels: image.channels, bitDepth: 8, fast: fast)
        }
    }

    public static func encodePNG(_ image: Image16, fast: Bool = false) throws -> [UInt8] {
        try image.pixels.withUnsafeBytes { pixels in
            try encodePNG(pixels.baseAddress!, width: image.width, height: image.height, channels: 1, bitDepth: 16, fast: fast)
        }
    }

    private static func encodePNG(_ pixels: UnsafeRawPointer, width: Int, height: Int, channels: Int, bitDepth: Int, fast: Bool) throws -> [UInt8] {
        var out: UnsafeMutablePointer<UInt8>?
        var size = 0
        try call { chorus_png_encode(pixels, Int32(width), Int32(height), Int32(channels), Int32(bitDepth), fast ? 1 : 0, &out, &size, $0) }
        defer { free(out) }
        return Array(UnsafeBufferPointer(start: out, count: size))
    }

    /// JPEG of gray or RGB (alpha is dropped).
    public static func encodeJPEG(_ image: Image, quality: Int = 85) throws -> [UInt8] {
        let source = image.channels == 1 || image.channels == 3 ? image : image.rgb()
        var out: UnsafeMutablePointer<UInt8>?
        var size: UInt = 0
        try call { chorus_jpeg_encode(source.pixels, Int32(source.width), Int32(source.height), Int32(source.channels),
                                      Int32(min(max(quality, 1), 100)), &out, &size, $0) }
        defer { free(out) }
        return Array(UnsafeBufferPointer(start: out, count: Int(size)))
    }

    /// Runs a C codec call with an error buffer; non-zero becomes MediaError.corrupt with its message.
    private static func call(_ body: (UnsafeMutablePointer<CChar>) -> Int32) throws {
        var message = [CChar](repeating: 0, count: Int(CHORUS_CODEC_ERROR_SIZE))
        let status = message.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
        if status != 0 {
            throw MediaError.corrupt(String(cString: message))
        }
    }
}
