import Foundation
@testable import ChorusMedia

/// Deterministic test pictures: smooth waves (which JPEG keeps well) with a different phase per
/// channel, so channel mix-ups show.
func testImage(width: Int, height: Int, channels: Int) throws -> Image {
    var pixels: [UInt8] = []
    for y in 0..<height {
        for x in 0..<width {
            for c in 0..<channels {
                let wave = sin(Double(x) / 6 + Double(c)) * cos(Double(y) / 5 - Double(c))
                pixels.append(UInt8(128 + 120 * wave))
            }
        }
    }
    return try Image(width: width, height: height, channels: channels, pixels: pixels)
}

/// Builds and patches PNG byte streams for tests of malformed input.
enum PNGBytes {
    /// Replaces IHDR's width and height and fixes its CRC, so the header is valid but lies.
    static func withSize(_ png: [UInt8], width: UInt32, height: UInt32) -> [UInt8] {
        var bytes = png
        bytes.replaceSubrange(16..<24, with: bigEndian(width) + bigEndian(height))
        bytes.replaceSubrange(29..<33, with: bigEndian(crc32(bytes[12..<29])))
        return bytes
    }

    /// Inserts a chunk right after IHDR (which ends at byte 33).
    static func inserting(type: String, data: [UInt8], into png: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        let chunk = bigEndian(UInt32(data.count)) + body + bigEndian(crc32(body[...]))
        var bytes = png
        bytes.insert(contentsOf: chunk, at: 33)
        return bytes
    }

    static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }

    static func crc32(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }
}
