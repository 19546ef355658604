import Testing
@testable import ChorusMedia

@Suite("PNG codec")
struct PNGCodecTests {
    @Test("8-bit round trips are lossless", arguments: [1, 3, 4])
    func roundTrip(channels: Int) throws {
        let image = try testImage(width: 37, height: 23, channels: channels)
        for fast in [true, false] {
            let png = try ImageCodec.encodePNG(image, fast: fast)
            #expect(ImageFormat.sniff(png) == .png)
            #expect(try ImageCodec.decode(png) == image)
        }
    }

    @Test("16-bit gray round trip keeps every bit")
    func roundTrip16() throws {
        let samples = (0..<(41 * 17)).map { UInt16(truncatingIfNeeded: $0 &* 40503 &+ 7) }
        let image = try Image16(width: 41, height: 17, pixels: samples)
        let png = try ImageCodec.encodePNG(image)
        #expect(try ImageCodec.decodeGray16(png) == image)
        // Read as 8 bits, each sample is scaled to 0...255 (not gamma-encoded).
        let eight = try ImageCodec.decode(png)
        #expect(eight.channels == 1)
        for (wide, narrow) in zip(samples, eight.pixels) {
            #expect(abs(Int(wide) - Int(narrow) * 257) <= 128)
        }
    }

    @Test("an 8-bit gray PNG read as 16 bits is widened by 257")
    func widen8To16() throws {
        let image = try testImage(width: 5, height: 4, channels: 1)
        let wide = try ImageCodec.decodeGray16(try ImageCodec.encodePNG(image))
        #expect(wide.pixels == image.pixels.map { UInt16($0) * 257 })
    }

    @Test("16-bit decoding refuses colour instead of guessing a conversion")
    func gray16RejectsColor() throws {
        let png = try ImageCodec.encodePNG(try testImage(width: 4, height: 4, channels: 3))
        let error = #expect(throws: MediaError.self) { try ImageCodec.decodeGray16(png) }
        #expect(error.map { "\($0)" }?.contains("grayscale PNG") == true)
    }

    @Test("gamma chunks do not change the pixels (as in PIL)")
    func gammaIgnored() throws {
        let image = try testImage(width: 9, height: 7, channels: 3)
        let png = try ImageCodec.encodePNG(image)
        let linearGamma = PNGBytes.inserting(type: "gAMA", data: PNGBytes.bigEndian(100_000), into: png)
        #expect(try ImageCodec.decode(linearGamma) == image)
        let image16 = try Image16(width: 3, height: 2, pixels: [0, 1000, 20000, 30000, 50000, 65535])
        let png16 = PNGBytes.inserting(type: "gAMA", data: PNGBytes.bigEndian(45455), into: try ImageCodec.encodePNG(image16))
        #expect(try ImageCodec.decodeGray16(png16) == image16)
    }

    @Test("the CLIP fixture decodes to 320×240 RGB")
    func decodesFixture() throws {
        let image = try ImageCodec.decode(try Fixtures.bytes("clip/input_image.png"))
        #expect((image.width, image.height, image.channels) == (320, 240, 3))
    }

    @Test("a truncated PNG is an error, at any cut")
    func truncated() throws {
        let png = try ImageCodec.encodePNG(try testImage(width: 64, height: 48, channels: 3), fast: false)
        for length in [8, 20, 33, 40, png.count / 2, png.count - 13] {
            let cut = Array(png.prefix(length))
            let error = #expect(throws: MediaError.self) { try ImageCodec.decode(cut) }
            if case .corruptPNG = error {} else { Issue.record("cut at \(length): \(String(describing: error))") }
        }
    }

    @Test("a corrupt PNG is an error")
    func corrupt() throws {
        var png = try ImageCodec.encodePNG(try testImage(width: 64, height: 48, channels: 3))
        png[png.count / 2] ^= 0x5A
        let error = #expect(throws: MediaError.self) { try ImageCodec.decode(png) }
        if case .corruptPNG(let detail) = error {
            #expect(!detail.isEmpty)
        } else {
            Issue.record("unexpected \(String(describing: error))")
        }
    }

    @Test("a 100000×100000 header is rejected before decoding")
    func hugeHeader() throws {
        let png = try ImageCodec.encodePNG(try testImage(width: 4, height: 4, channels: 1))
        let huge = PNGBytes.withSize(png, width: 100_000, height: 100_000)
        let error = #expect(throws: MediaError.self) { try ImageCodec.decode(huge) }
        #expect(error == .imageTooLarge(width: 100_000, height: 100_000, limits: .default))
        #expect(error?.description == "image is 100000×100000, the limit is 8192×8192")
        #expect(throws: MediaError.imageTooLarge(width: 100_000, height: 100_000, limits: .default)) {
            try ImageCodec.decodeGray16(huge)
        }
        // Beyond libpng's own limit (1,000,000) it is still our size error, not a libpng one.
        let absurd = PNGBytes.withSize(png, width: 0x7FFF_FFFF, height: 1)
        #expect(throws: MediaError.imageTooLarge(width: 0x7FFF_FFFF, height: 1, limits: .default)) {
            try ImageCodec.decode(absurd)
        }
    }
}
