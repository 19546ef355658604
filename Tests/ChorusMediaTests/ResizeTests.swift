import Testing
@testable import ChorusMedia

@Suite("Resize and crop (Pillow)")
struct ResizeTests {
    /// pil/resize.safetensors: "<image>" inputs (HWC uint8) and "<image>.<filter>.<W>x<H>" outputs
    /// of Pillow 13.0.0's Image.resize. Pillow's arithmetic is integer, so results must be equal.
    @Test("matches Pillow's Image.resize exactly")
    func matchesPillow() throws {
        let fixtures = try Fixtures.tensors("pil/resize.safetensors")
        let cases = fixtures.names.filter { $0.split(separator: ".").count == 3 }
        #expect(cases.count == 13)
        for name in cases {
            let parts = name.split(separator: ".")
            let input = try image(fixtures.tensor(String(parts[0])))
            let expected = try image(fixtures.tensor(name))
            let filter: ResizeFilter = parts[1] == "bicubic" ? .bicubic : .bilinear
            let resized = try input.resized(width: expected.width, height: expected.height, filter: filter)
            let worst = zip(resized.pixels, expected.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
            #expect(resized == expected, "\(name): max difference \(worst)")
        }
    }

    @Test("same size is a no-op; a constant image stays constant")
    func trivialCases() throws {
        let image = try testImage(width: 10, height: 7, channels: 3)
        #expect(try image.resized(width: 10, height: 7) == image)
        let flat = try Image(width: 13, height: 9, channels: 1, pixels: [UInt8](repeating: 77, count: 13 * 9))
        for (width, height) in [(5, 4), (40, 3), (13, 30)] {
            for filter in [ResizeFilter.bicubic, .bilinear] {
                #expect(try flat.resized(width: width, height: height, filter: filter).pixels.allSatisfy { $0 == 77 })
            }
        }
        #expect(throws: MediaError.self) { try image.resized(width: 0, height: 5) }
    }

    @Test("centre crop takes the middle, rounding the offset down")
    func centerCrop() throws {
        let image = try Image(width: 5, height: 4, channels: 1, pixels: Array(0..<20))
        let crop = try image.centerCropped(width: 2, height: 3)
        // left = (5 - 2) // 2 = 1, top = (4 - 3) // 2 = 0
        #expect(crop.pixels == [1, 2, 6, 7, 11, 12])
    }

    @Test("centre crop larger than the image pads with zeros like transformers")
    func centerCropPads() throws {
        let image = try Image(width: 2, height: 1, channels: 1, pixels: [5, 6])
        let crop = try image.centerCropped(width: 5, height: 4)
        // transformers puts the image at ceil((5 - 2) / 2) = 2, ceil((4 - 1) / 2) = 2.
        var expected = [UInt8](repeating: 0, count: 20)
        expected[2 * 5 + 2] = 5
        expected[2 * 5 + 3] = 6
        #expect(crop.pixels == expected)
    }

    private func image(_ tensor: SafeTensors.Tensor) throws -> Image {
        let channels = tensor.shape.count == 3 ? tensor.shape[2] : 1
        return try Image(width: tensor.shape[1], height: tensor.shape[0], channels: channels, pixels: tensor.bytes())
    }
}
