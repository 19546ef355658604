/// An 8-bit image with interleaved channels, stored row by row (HWC).
/// 1 channel is gray, 3 is RGB and 4 is RGBA with straight (not premultiplied) alpha.
public struct Image: Equatable, Sendable {
    public let width: Int
    public let height: Int
    public let channels: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) throws {
        guard width > 0, height > 0 else {
            throw MediaError.invalidImage("size \(width)×\(height) is empty")
        }
        guard [1, 3, 4].contains(channels) else {
            throw MediaError.invalidImage("\(channels) channels; expected 1 (gray), 3 (RGB) or 4 (RGBA)")
        }
        guard pixels.count == width * height * channels else {
            throw MediaError.invalidImage(
                "\(pixels.count) bytes of pixels for \(width)×\(height)×\(channels) (\(width * height * channels) expected)")
        }
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// For callers that have already validated the layout (decoders, resizers).
    init(unchecked width: Int, _ height: Int, _ channels: Int, _ pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    public var rowLength: Int { width * channels }
}

/// A single-channel 16-bit image, for heightfields and depth maps where 8 bits lose precision.
public struct Image16: Equatable, Sendable {
    public let width: Int
    public let height: Int
    public var pixels: [UInt16]

    public init(width: Int, height: Int, pixels: [UInt16]) throws {
        guard width > 0, height > 0 else {
            throw MediaError.invalidImage("size \(width)×\(height) is empty")
        }
        guard pixels.count == width * height else {
            throw MediaError.invalidImage("\(pixels.count) samples for \(width)×\(height) (\(width * height) expected)")
        }
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}

extension Image16 {
    /// Maps 0...255 onto 0...65535 (v × 257), so that keeping the high byte gives v back.
    init(unchecked gray: Image) {
        self.width = gray.width
        self.height = gray.height
        self.pixels = gray.pixels.map { UInt16($0) &* 257 }
    }
}
