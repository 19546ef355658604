import ChorusCLIP
import ChorusMedia
import ChorusTensor
import ChorusTestSupport
import Foundation
import Testing

/// The tiny random CLIP of ../shared/fixtures/clip, made with transformers: every case of its manifest.
@Suite struct CLIPFixtureTests {
    static let folder = Bundle.module.resourcePath! + "/Fixtures/clip"
    static let fixture = try! SafeTensorsFile(path: folder + "/fixtures.safetensors")
    static let pipeline = try! CLIPPipeline(folder: folder)
    static let texts = ["a photo of a cat", "a painting of a mountain lake at sunset"]

    /// The manifest's rule: |actual − expected| ≤ atol + rtol·|expected| everywhere.
    func expectClose(_ actual: Tensor, _ name: String, atol: Float = 2e-4, rtol: Float = 1e-4,
                     sourceLocation: SourceLocation = #_sourceLocation) throws {
        let mismatch = fixtureMismatch(name, actual.storage, try Self.fixture.tensor(name).storage, atol: atol, rtol: rtol)
        #expect(mismatch == nil, "\(mismatch ?? "")", sourceLocation: sourceLocation)
    }

    func inputIDs() throws -> [[Int]] {
        let flat = try Self.fixture.int64s("input_ids").map(Int.init)
        return [Array(flat[0..<10]), Array(flat[10..<20])]
    }

    @Test func tokenizerPadsLikeTransformers() throws {
        let (ids, mask) = Self.pipeline.tokenize(Self.texts)
        #expect(ids == (try inputIDs()))
        let expectedMask = try Self.fixture.int64s("attention_mask").map(Int.init)
        #expect(mask.flatMap { $0 } == expectedMask)
    }

    @Test func preprocessingMatchesCLIPImageProcessor() throws {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.folder + "/input_image.png")))
        let pixels = try Self.pipeline.pixelValues([ImageCodec.decode(bytes)])
        try expectClose(pixels, "pixel_values", atol: 0.02, rtol: 0)
    }

    @Test func textTowerMatchesTransformers() throws {
        let mask = try Self.fixture.int64s("attention_mask").map(Int.init)
        let (hidden, pooled) = Self.pipeline.model.textModel(ids: try inputIDs(), attentionMask: [Array(mask[0..<10]), Array(mask[10..<20])])
        try expectClose(hidden, "text_last_hidden_state")
        try expectClose(pooled, "text_pooled")
    }

    @Test func visionTowerMatchesTransformers() throws {
        let (hidden, pooled) = Self.pipeline.model.visionModel(try Self.fixture.tensor("pixel_values"))
        try expectClose(hidden, "vision_last_hidden_state")
        try expectClose(pooled, "vision_pooled")
        // hidden_states[L] is the last layer's output, before the post-norm.
        let last = Self.pipeline.model.visionModel.hiddenState(try Self.fixture.tensor("pixel_values"), layer: 2)
        try expectClose(last, "vision_last_hidden_state")
    }

    @Test func embeddingsAndLogitsMatchTransformers() throws {
        let model = Self.pipeline.model
        let image = model.imageEmbeddings(try Self.fixture.tensor("pixel_values"))
        let text = Self.pipeline.embed(texts: Self.texts).embeddings
        try expectClose(image, "image_embeds")
        try expectClose(text, "text_embeds")
        let logits = MatMul.matmul(image, text, transposeB: true) * model.logitScale
        try expectClose(logits, "logits_per_image")
    }

    /// Batching must not change answers: a text alone (no padding) and inside a padded batch agree.
    @Test func batchedAndSingleTextsAgree() throws {
        let batch = Self.pipeline.embed(texts: Self.texts + ["x"]).embeddings
        for (i, text) in Self.texts.enumerated() {
            let alone = Self.pipeline.embed(texts: [text]).embeddings
            #expect(alone.maxAbsDifference(batch.slice(axis: 0, i..<(i + 1))).value < 1e-5)
        }
        #expect(batch.shape == [3, 32])
    }

    /// The PNG straight through preprocessing and the tower lands on the reference embedding (the
    /// small resampling differences of the preprocessing case barely move it).
    @Test func imageBytesToEmbedding() throws {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.folder + "/input_image.png")))
        let embedding = try Self.pipeline.embed(images: [ImageCodec.decode(bytes)])
        try expectClose(embedding, "image_embeds", atol: 5e-3, rtol: 0)
    }

    @Test func longTextsKeepTheirEndToken() throws {
        let long = Array(repeating: "cat", count: 200).joined(separator: " ")
        let (ids, _) = Self.pipeline.tokenize([long])
        #expect(ids[0].count == 77)
        #expect(ids[0].last == 776)
    }
}
