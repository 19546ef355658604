import Testing
@testable import ChorusMedia

@Suite("Image format sniffing and limits")
struct ImageCodecTests {
    @Test("random garbage is an unsupported format that names its first bytes")
    func garbageIsUnsupported() {
        let bytes = garbage(count: 1000)
        let error = #expect(throws: MediaError.self) { try ImageCodec.decode(bytes) }
        #expect(error == .unsupportedImageFormat(firstBytes: Array(bytes.prefix(8))))
        let text = error?.description ?? ""
        #expect(text.contains(hexString(Array(bytes.prefix(8)))), "\(text)")
    }

    @Test("common wrong formats are named")
    func namesKnownFormats() {
        let gif = Array("GIF89a".utf8) + [1, 0, 1, 0]
        let error = #expect(throws: MediaError.self) { try ImageCodec.decode(gif) }
        #expect(error?.description.contains("looks like GIF") == true)
    }

    @Test("empty input")
    func empty() {
        #expect(throws: MediaError.emptyInput(kind: "image")) { try ImageCodec.decode([]) }
    }

    @Test("limits apply to both width/height and pixel count")
    func customLimits() throws {
        let png = try ImageCodec.encodePNG(try testImage(width: 40, height: 30, channels: 3))
        let jpeg = try ImageCodec.encodeJPEG(try testImage(width: 40, height: 30, channels: 3))
        let narrow = ImageLimits(maxWidth: 32, maxHeight: 64, maxPixels: 10_000)
        let few = ImageLimits(maxWidth: 64, maxHeight: 64, maxPixels: 1000)
        for bytes in [png, jpeg] {
            #expect(throws: MediaError.imageTooLarge(width: 40, height: 30, limits: narrow)) {
                try ImageCodec.decode(bytes, limits: narrow)
            }
            let error = #expect(throws: MediaError.self) { try ImageCodec.decode(bytes, limits: few) }
            #expect(error?.description == "image is 40×30 = 1200 pixels, the limit is 1000 pixels")
        }
    }

    @Test("Image checks its layout")
    func imageValidation() {
        #expect(throws: MediaError.self) { try Image(width: 2, height: 2, channels: 2, pixels: [UInt8](repeating: 0, count: 8)) }
        #expect(throws: MediaError.self) { try Image(width: 2, height: 2, channels: 3, pixels: [0]) }
        #expect(throws: MediaError.self) { try Image(width: 0, height: 2, channels: 1, pixels: []) }
    }
}
