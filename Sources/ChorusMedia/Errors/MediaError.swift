import Foundation

/// Everything that can go wrong while decoding, encoding or converting media. Each message says
/// what was wrong with the input so that it can be passed straight back to the caller.
public enum MediaError: Error, Equatable, Sendable {
    case emptyInput(kind: String)
    case unsupportedImageFormat(firstBytes: [UInt8])
    case corruptPNG(String)
    case corruptJPEG(String)
    case truncatedJPEG(String)
    case unsupportedJPEG(String)
    case imageTooLarge(width: Int, height: Int, limits: ImageLimits)
    case unsupportedPixelLayout(String)
    case invalidImage(String)
    case encodingFailed(String)

    case truncatedWAV(String)
    case invalidWAV(String)
    case missingWAVChunk(String)
    case unsupportedWAVCodec(formatTag: UInt16, bitsPerSample: Int)
    case invalidAudio(String)

    /// Not a container FFmpeg reads, or a damaged one.
    case invalidVideo(String)
    case unsupportedVideo(String)
    /// No video stream, or no audio track, where one is needed.
    case missingStream(String)
    /// Beyond a `VideoLimits` bound.
    case videoLimit(String)
    case cancelled
}

extension MediaError: CustomStringConvertible, LocalizedError {
    public var description: String {
        switch self {
        case .emptyInput(let kind):
            return "empty \(kind) data"
        case .unsupportedImageFormat(let bytes):
            let guess = ImageFormat.guessUnsupported(bytes).map { ", which looks like \($0)" } ?? ""
            return "unsupported image format: the data starts with \(hexString(bytes))\(guess); only PNG and JPEG are accepted"
        case .corruptPNG(let detail):
            return "corrupt PNG: \(detail)"
        case .corruptJPEG(let detail):
            return "corrupt JPEG: \(detail)"
        case .truncatedJPEG(let detail):
            return "truncated JPEG: \(detail)"
        case .unsupportedJPEG(let detail):
            return "unsupported JPEG: \(detail)"
        case .imageTooLarge(let width, let height, let limits):
            if width > limits.maxWidth || height > limits.maxHeight {
                return "image is \(width)×\(height), the limit is \(limits.maxWidth)×\(limits.maxHeight)"
            }
            return "image is \(width)×\(height) = \(width * height) pixels, the limit is \(limits.maxPixels) pixels"
        case .unsupportedPixelLayout(let detail):
            return "unsupported pixel layout: \(detail)"
        case .invalidImage(let detail):
            return "invalid image: \(detail)"
        case .encodingFailed(let detail):
            return "encoding failed: \(detail)"
        case .truncatedWAV(let detail):
            return "truncated WAV: \(detail)"
        case .invalidWAV(let detail):
            return "invalid WAV: \(detail)"
        case .missingWAVChunk(let chunk):
            return "invalid WAV: no '\(chunk)' chunk"
        case .unsupportedWAVCodec(let tag, let bits):
            let name = WAVFormatTag.name(of: tag).map { " (\($0))" } ?? ""
            return "unsupported WAV codec: format tag \(String(format: "0x%04X", tag))\(name) with \(bits) bits per sample; "
                + "only PCM integer (8/16/24/32-bit) and IEEE float (32/64-bit) are supported"
        case .invalidAudio(let detail):
            return "invalid audio: \(detail)"
        case .invalidVideo(let detail):
            return "invalid video: \(detail)"
        case .unsupportedVideo(let detail):
            return "unsupported video: \(detail)"
        case .missingStream(let detail):
            return detail
        case .videoLimit(let detail):
            return detail
        case .cancelled:
            return "cancelled"
        }
    }

    public var errorDescription: String? { description }
}

func hexString(_ bytes: [UInt8]) -> String {
    bytes.isEmpty ? "nothing" : bytes.map { String(format: "%02X", $0) }.joined(separator: " ")
}
