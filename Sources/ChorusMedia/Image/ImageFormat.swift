/// The container formats the decoder accepts, recognised by their magic bytes rather than by any
/// name or MIME type the client sent.
public enum ImageFormat: Sendable {
    case png
    case jpeg

    static let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    public static func sniff(_ bytes: [UInt8]) -> ImageFormat? {
        if bytes.starts(with: pngSignature) { return .png }
        if bytes.starts(with: [0xFF, 0xD8, 0xFF]) { return .jpeg }
        return nil
    }

    /// Names formats that people commonly send by mistake, to make the rejection actionable.
    static func guessUnsupported(_ bytes: [UInt8]) -> String? {
        func ascii(_ range: Range<Int>) -> String? {
            guard bytes.count >= range.upperBound else { return nil }
            return String(decoding: bytes[range], as: UTF8.self)
        }
        if ascii(0..<4) == "GIF8" { return "GIF" }
        if ascii(0..<4) == "RIFF", ascii(8..<12) == "WEBP" { return "WebP" }
        if ascii(0..<4) == "RIFF", ascii(8..<12) == "WAVE" { return "a WAV file" }
        if ascii(0..<2) == "BM" { return "BMP" }
        if bytes.starts(with: [0x49, 0x49, 0x2A, 0x00]) || bytes.starts(with: [0x4D, 0x4D, 0x00, 0x2A]) { return "TIFF" }
        if ascii(4..<8) == "ftyp" { return "HEIF/AVIF or MP4" }
        if ascii(0..<5) == "<?xml" || ascii(0..<4) == "<svg" { return "SVG/XML" }
        return nil
    }
}
