import Testing
@testable import ChorusMedia

@Suite("CLIP image preprocessing")
struct CLIPPreprocessTests {
    /// Case clip/preprocess_image: input_image.png (240×320) through CLIPImageProcessor ->
    /// pixel_values (1, 3, 224, 224), atol 2e-2.
    @Test("matches transformers' CLIPImageProcessor on the fixture")
    func matchesFixture() throws {
        let config = try CLIPImageProcessorConfig.load(json: try Fixtures.data("clip/processor_config.json"))
        #expect(config.size.shortestEdge == 224 && config.resample == 3)
        let image = try ImageCodec.decode(try Fixtures.bytes("clip/input_image.png"))
        let (values, width, height) = try CLIPImagePreprocessor(config: config).pixelValues(image)
        #expect((width, height) == (224, 224))
        let expected = try Fixtures.tensors("clip/preprocess_image.safetensors").tensor("pixel_values")
        #expect(expected.shape == [1, 3, 224, 224])
        let worst = maxAbsDifference(values, try expected.floats())
        print("clip/preprocess_image: max |diff| \(worst.value) at \(worst.index)")
        #expect(worst.value <= 2e-2, "max |diff| \(worst.value) at \(worst.index)")
    }

    @Test("the shortest edge becomes 224 and the long side is truncated")
    func resizedSize() throws {
        let preprocessor = CLIPImagePreprocessor()
        #expect(try preprocessor.resizedSize(width: 320, height: 240) == (298, 224))
        #expect(try preprocessor.resizedSize(width: 240, height: 320) == (224, 298))
        #expect(try preprocessor.resizedSize(width: 100, height: 100) == (224, 224))
    }

    @Test("gray and RGBA inputs are converted to RGB first")
    func convertsToRGB() throws {
        let preprocessor = CLIPImagePreprocessor()
        let gray = try testImage(width: 30, height: 20, channels: 1)
        let out = try preprocessor.pixelValues(gray)
        #expect(out.values.count == 3 * 224 * 224)
        let rgba = try testImage(width: 30, height: 20, channels: 4)
        #expect(try preprocessor.pixelValues(rgba).values == preprocessor.pixelValues(rgba.rgb()).values)
    }
}
