@testable import ChorusMedia
import Testing

/// Sizes and values from a client's file that used to cost gigabytes or trap.
@Suite struct HostileSizesTests {
    /// A 16384×1 PNG is about 100 bytes and would have been resized to 3,670,016×224 for CLIP.
    @Test func clipPreprocessingRefusesStripImages() throws {
        let preprocessor = CLIPImagePreprocessor()
        #expect(throws: MediaError.self) { try preprocessor.resizedSize(width: 16384, height: 1) }
        #expect(throws: MediaError.self) { try preprocessor.resizedSize(width: 1, height: 16384) }
        #expect(throws: MediaError.self) { try preprocessor.resizedSize(width: 0, height: 10) }
        let panorama = try preprocessor.resizedSize(width: 4000, height: 1000)
        #expect(panorama.height == 224 && panorama.width == 896)
        let strip = try Image(width: 4096, height: 1, channels: 3, pixels: [UInt8](repeating: 9, count: 4096 * 3))
        #expect(throws: MediaError.self) { try preprocessor.pixelValues(strip) }
    }

    /// UInt8(Float.nan) traps; model outputs reach these conversions.
    @Test func unitQuantizationClipsAndMapsNaNToZero() {
        #expect(UInt8(unitInterval: .nan) == 0 && UInt16(unitInterval: .nan) == 0)
        #expect(UInt8(unitInterval: -.infinity) == 0 && UInt8(unitInterval: .infinity) == 255)
        #expect(UInt8(unitInterval: 2) == 255 && UInt8(unitInterval: -1) == 0 && UInt16(unitInterval: 7) == 65535)
        #expect(UInt8(unitInterval: 0.5) == 128 && UInt8(unitInterval: 1) == 255 && UInt16(unitInterval: 0.5) == 32768)
        // The same levels as diffusers' (image * 255).round() everywhere inside the range.
        for level in 0...1000 {
            let unit = Float(level) / 1000
            #expect(UInt8(unitInterval: unit) == UInt8((unit * 255).rounded()))
        }
    }
}
