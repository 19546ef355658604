import Testing
@testable import ChorusMedia

@Suite("JPEG codec")
struct JPEGCodecTests {
    @Test("round trips stay within JPEG's error", arguments: [1, 3])
    func roundTrip(channels: Int) throws {
        let image = try testImage(width: 64, height: 48, channels: channels)
        let jpeg = try ImageCodec.encodeJPEG(image, quality: 95)
        #expect(ImageFormat.sniff(jpeg) == .jpeg)
        let decoded = try ImageCodec.decode(jpeg)
        #expect((decoded.width, decoded.height, decoded.channels) == (64, 48, channels))
        let errors = zip(image.pixels, decoded.pixels).map { abs(Int($0) - Int($1)) }
        let mean = Double(errors.reduce(0, +)) / Double(errors.count)
        #expect(mean < 2, "mean abs error \(mean)")
        #expect(errors.max()! < 24, "max abs error \(errors.max()!)")
    }

    @Test("RGBA is encoded without its alpha channel")
    func rgbaDropsAlpha() throws {
        let rgba = try testImage(width: 16, height: 16, channels: 4)
        let decoded = try ImageCodec.decode(try ImageCodec.encodeJPEG(rgba))
        #expect(decoded.channels == 3)
    }

    @Test("lower quality gives smaller files")
    func quality() throws {
        let image = try testImage(width: 128, height: 96, channels: 3)
        #expect(try ImageCodec.encodeJPEG(image, quality: 30).count < ImageCodec.encodeJPEG(image, quality: 95).count)
    }

    @Test("a truncated JPEG is an error, not a gray-padded picture")
    func truncated() throws {
        let jpeg = try ImageCodec.encodeJPEG(try testImage(width: 64, height: 48, channels: 3))
        for length in [3, 40, 200, jpeg.count / 2, jpeg.count * 3 / 4] {
            let cut = Array(jpeg.prefix(length))
            let error = #expect(throws: MediaError.self) { try ImageCodec.decode(cut) }
            if case .truncatedJPEG = error {} else { Issue.record("cut at \(length): \(String(describing: error))") }
        }
        // Only the end-of-image marker missing: every pixel is there, so it decodes.
        #expect(try ImageCodec.decode(Array(jpeg.dropLast(2))) == ImageCodec.decode(jpeg))
    }

    @Test("a corrupt JPEG header is an error")
    func corrupt() throws {
        var jpeg = try ImageCodec.encodeJPEG(try testImage(width: 32, height: 32, channels: 3))
        let sof = try #require(startOfFrame(jpeg))
        jpeg[sof + 9] = 0 // no components, which contradicts the segment length
        let error = #expect(throws: MediaError.self) { try ImageCodec.decode(jpeg) }
        #expect(error.map { "\($0)" }?.hasPrefix("corrupt JPEG:") == true, "\(String(describing: error))")
    }

    @Test("garbage after a JPEG signature is an error, never a crash")
    func garbageBody() {
        for seed in 1...20 {
            let bytes: [UInt8] = [0xFF, 0xD8, 0xFF] + garbage(count: 300, seed: UInt64(seed))
            #expect(throws: MediaError.self) { try ImageCodec.decode(bytes) }
        }
    }

    @Test("huge headers are rejected before decoding")
    func hugeHeader() throws {
        let jpeg = try ImageCodec.encodeJPEG(try testImage(width: 8, height: 8, channels: 3))
        // JPEG sizes are 16-bit, so 100000 cannot be written; 60000 passes libjpeg and meets our
        // limit, 65535 meets libjpeg's own 65500 limit first. Both must read as "too large".
        for side in [60_000, 65_535] {
            let huge = try withSize(jpeg, width: side, height: side)
            let error = #expect(throws: MediaError.self) { try ImageCodec.decode(huge) }
            #expect(error == .imageTooLarge(width: side, height: side, limits: .default))
            #expect(error?.description == "image is \(side)×\(side), the limit is 8192×8192")
        }
    }

    private func startOfFrame(_ jpeg: [UInt8]) -> Int? {
        (2..<(jpeg.count - 1)).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xC0 }
    }

    /// SOF0: FF C0, length (2), precision (1), height (2), width (2).
    private func withSize(_ jpeg: [UInt8], width: Int, height: Int) throws -> [UInt8] {
        let sof = try #require(startOfFrame(jpeg))
        var bytes = jpeg
        bytes.replaceSubrange((sof + 5)..<(sof + 9), with: [UInt8(height >> 8), UInt8(height & 0xFF), UInt8(width >> 8), UInt8(width & 0xFF)])
        return bytes
    }
}
