import ChorusMedia
import Foundation
import Testing

@Suite struct ImageCodecTests {
    static func pattern(width: Int, height: Int, channels: Int) -> Image {
        Image(width: width, height: height, channels: channels,
              pixels: (0..<(width * height * channels)).map { UInt8(truncatingIfNeeded: $0 * 37 + ($0 / 7) * 11) })
    }

    @Test(arguments: [1, 3, 4])
    func pngRoundTripsExactly(channels: Int) throws {
        let image = Self.pattern(width: 31, height: 17, channels: channels)
        let png = try ImageCodec.encodePNG(image)
        #expect(ImageCodec.sniff(png) == .png)
        #expect(try ImageCodec.decode(png) == image)
    }

    @Test func sixteenBitGrayPNGRoundTripsExactly() throws {
        let heights = Image16(width: 64, height: 32, pixels: (0..<2048).map { UInt16(truncatingIfNeeded: $0 * 1021) })
        let png = try ImageCodec.encodePNG(heights)
        #expect(try ImageCodec.decode16(png) == heights)
    }

    @Test func jpegRoundTripsWithinCompressionError() throws {
        // A smooth gradient: JPEG's error on it stays small.
        let image = Image(width: 64, height: 48, channels: 3, pixels: (0..<(64 * 48 * 3)).map { i in
            let p = i / 3, c = i % 3
            return UInt8((p % 64) * 2 + (p / 64) * 2 + c * 10)
        })
        let jpeg = try ImageCodec.encodeJPEG(image, quality: 95)
        #expect(ImageCodec.sniff(jpeg) == .jpeg)
        let decoded = try ImageCodec.decode(jpeg)
        #expect(decoded.width == 64 && decoded.height == 48 && decoded.channels == 3)
        let worst = zip(decoded.pixels, image.pixels).map { abs(Int($0) - Int($1)) }.max()!
        #expect(worst <= 12, "largest JPEG error \(worst)")
    }

    @Test func theCLIPFixtureImageDecodes() throws {
        let image = try ImageCodec.decode(Fixture.bytes("clip-input.png"))
        let expected = try Fixture.tensors("clip-preprocess.safetensors").tensor("input_image_uint8")
        #expect(image.width == 320 && image.height == 240 && image.rgb().pixels.map(Float.init) == expected.storage)
    }

    @Test func truncatedAndCorruptImagesAreErrorsNotCrashes() throws {
        let png = try ImageCodec.encodePNG(Self.pattern(width: 40, height: 40, channels: 3))
        let jpeg = try ImageCodec.encodeJPEG(Self.pattern(width: 40, height: 40, channels: 3))
        for broken in [Array(png.prefix(png.count / 2)), Array(png.prefix(30)), Array(jpeg.prefix(jpeg.count / 2)), Array(jpeg.prefix(20))] {
            #expect {
                _ = try ImageCodec.decode(broken)
            } throws: { error in
                guard case .corrupt(let message)? = error as? MediaError else { return false }
                return message.contains("PNG") || message.contains("JPEG")
            }
        }
        var flipped = png
        for i in 60..<min(200, flipped.count) { flipped[i] ^= 0x5A }
        #expect(throws: MediaError.self) { try ImageCodec.decode(flipped) }
    }

    @Test func garbageIsUnsupportedAndNamesItsFirstBytes() {
        #expect {
            _ = try ImageCodec.decode([0x47, 0x49, 0x46, 0x38, 0x39, 0x61])
        } throws: { error in
            (error as? MediaError) == .unsupported("not a PNG or JPEG image (first bytes: 47 49 46 38 39 61)")
        }
        #expect(throws: MediaError.self) { try ImageCodec.decode([]) }
    }

    @Test func aDecompressionBombPNGIsRefusedFromItsHeader() throws {
        // A valid PNG signature, an IHDR chunk claiming 100000×100000, an empty IDAT and IEND: 57 bytes
        // that would decode to 30 GB.
        func chunk(_ type: String, _ body: [UInt8]) -> [UInt8] {
            let typed = Array(type.utf8) + body
            return bigEndian(UInt32(body.count)) + typed + bigEndian(crc32(typed))
        }
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
            + chunk("IHDR", bigEndian(100_000) + bigEndian(100_000) + [8, 2, 0, 0, 0]) + chunk("IDAT", []) + chunk("IEND", [])
        #expect {
            _ = try ImageCodec.decode(png)
        } throws: { error in
            (error as? MediaError) == .tooLarge("image is 100000×100000, the limit is 8192×8192")
        }
    }

    @Test func anOversizedJPEGIsRefusedFromItsHeader() throws {
        // JPEG sizes are 16-bit (and libjpeg stops at 65500), so 60000×60000: patch a real file's SOF0 frame.
        var jpeg = try ImageCodec.encodeJPEG(Self.pattern(width: 16, height: 16, channels: 3))
        let sof = try #require((0..<(jpeg.count - 1)).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xC0 })
        jpeg.replaceSubrange((sof + 5)..<(sof + 9), with: [0xEA, 0x60, 0xEA, 0x60])
        #expect {
            _ = try ImageCodec.decode(jpeg)
        } throws: { error in
            (error as? MediaError) == .tooLarge("image is 60000×60000, the limit is 8192×8192")
        }
    }

    @Test func clipPreprocessingMatchesTransformers() throws {
        let config = try CLIPPreprocessing(json: Data(Fixture.bytes("clip-processor_config.json")))
        let pixels = config.pixelValues(try ImageCodec.decode(Fixture.bytes("clip-input.png")))
        let expected = try Fixture.tensors("clip-preprocess.safetensors").tensor("pixel_values")
        #expect(pixels.shape == [3, 224, 224])
        let (worst, at) = pixels.maxAbsDifference(expected.reshaped([3, 224, 224]))
        #expect(worst <= 0.02, "max |Δ| \(worst) at \(at) (manifest atol 2e-2)")
        // PIL's fixed-point bicubic is reproduced exactly, so the real difference is rounding only.
        #expect(worst < 1e-5, "max |Δ| \(worst) at \(at)")
    }

    private func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }

    private func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }
}
