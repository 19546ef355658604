import ChorusLLaVA
import ChorusMedia
import ChorusTensor
import Foundation
import Testing

/// A LLaVA whose language model is a GGUF file beside the vision tower and projector in safetensors
/// (scripts/fixtures/make_llava_gguf_fixtures.py converts the tiny LLaVA fixture's language model as
/// llama.cpp's converter does: llama.cpp names, permuted q/k rows). In float32 it must be the safetensors
/// LLaVA exactly; in Q8_0 it runs the quantized products and stays close to transformers.
@Suite struct LlavaGGUFTests {
    static let folder = Bundle.module.resourcePath! + "/Fixtures/llava-gguf"
    static let fixtures = LlavaFixtureTests()

    func logits(_ pipeline: LlavaPipeline) throws -> [Float] {
        let model = pipeline.model
        var cache = model.languageModel.newCache()
        let hidden = model.languageModel.forward(model.embed(ids: try Self.fixtures.promptIDs(), imageFeatures: model.imageFeatures(try Self.fixtures.pixels())),
                                                 cache: &cache)
        return model.languageModel.logits(hidden).storage
    }

    @Test func aFloat32GGUFLanguageModelIsTheSafetensorsLLaVAExactly() throws {
        let pipeline = try LlavaPipeline(folder: Self.folder)
        #expect(try logits(pipeline) == (try logits(LlavaFixtureTests.pipeline)))
        let generated = try LlavaGenerator(pipeline: pipeline).generate(GenerationRequest(promptIDs: try Self.fixtures.promptIDs(),
                                                                                          images: [Self.fixtures.pixels().storage], maxNewTokens: 5))
        #expect(generated.tokenIDs == (try LlavaFixtureTests.fixture.int64s("generated_ids").map(Int.init)))
    }

    /// The same language model in Q8_0: weights kept in their blocks, 8-bit activations. The logits stay
    /// within the error Q8_0 brings (measured 0.008 on logits of magnitude ~1; the bound is 0.05).
    @Test func aQ8_0GGUFLanguageModelRunsTheQuantizedProducts() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("llava-gguf-q8-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        for name in try FileManager.default.contentsOfDirectory(atPath: Self.folder) where !name.hasSuffix(".gguf") {
            try FileManager.default.copyItem(atPath: Self.folder + "/" + name, toPath: folder + "/" + name)
        }
        try FileManager.default.copyItem(atPath: Bundle.module.resourcePath! + "/Fixtures/language_model.q8_0.gguf", toPath: folder + "/language_model.gguf")
        let pipeline = try LlavaPipeline(folder: folder)
        let quantized = try logits(pipeline), exact = try LlavaFixtureTests.fixture.tensor("prompt_logits").storage
        #expect(quantized.count == exact.count)
        let worst = zip(quantized, exact).map { abs($0 - $1) }.max() ?? .infinity
        print("Q8_0 LLaVA: worst |Δlogit| \(worst) against transformers")
        #expect(worst > 0 && worst < 0.05, "worst |Δlogit| \(worst)")
    }

    @Test func aGGUFThatDoesNotFitTheConfigIsRefusedByName() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("llava-gguf-bad-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        for name in try FileManager.default.contentsOfDirectory(atPath: Self.folder) {
            try FileManager.default.copyItem(atPath: Self.folder + "/" + name, toPath: folder + "/" + name)
        }
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/config.json"))) as! [String: Any]
        var text = config["text_config"] as! [String: Any]
        text["num_hidden_layers"] = 3
        config["text_config"] = text
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: folder + "/config.json"))
        #expect { try LlavaPipeline(folder: folder) } throws: { "\($0)".contains("num_hidden_layers 2, but config.json's text_config says 3") }
    }
}
