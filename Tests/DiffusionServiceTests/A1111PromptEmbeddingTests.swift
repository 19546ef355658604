import ChorusStableDiffusion
import ChorusTensor
import ChorusTestSupport
import Foundation
import Testing

/// Weighted, chunked prompts against AUTOMATIC1111's own text-encoder wrapper on the tiny Stable Diffusion
/// fixture (scripts/fixtures/make_prompt_embedding_cases.py runs its FrozenCLIPEmbedderWithCustomWords): the
/// same chunks, tokens and weights; the same embeddings; and a two-step diffusers run on a 179-token weighted
/// prompt with a weighted negative, padded with the empty prompt's chunks as A1111 pads them.
@Suite struct A1111PromptEmbeddingTests {
    static let folder = Bundle.module.resourcePath! + "/Fixtures"
    /// The fixture with a final LayerNorm bias in its text encoder: A1111's rescaling to the mean is
    /// meaningful only when the mean is not float rounding (the random fixture's is ~1e-8).
    static let pipeline = try! StableDiffusionPipeline(folder: folder + "/prompts/sd-biased")
    static let tensors = try! SafeTensorsFile(path: folder + "/prompts/a1111_embeddings.safetensors")
    static let cases: [String: [String: Any]] = {
        let data = FileManager.default.contents(atPath: folder + "/prompts/a1111_embeddings.json")!
        return (try! JSONSerialization.jsonObject(with: data) as! [String: Any])["cases"] as! [String: [String: Any]]
    }()

    func expectClose(_ actual: Tensor, _ name: String, atol: Float, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let expected = try Self.tensors.tensor(name)
        #expect(actual.shape == expected.shape, "\(name): shape \(actual.shape) vs \(expected.shape)", sourceLocation: sourceLocation)
        let mismatch = fixtureMismatch(name, actual.storage, expected.storage, atol: atol)
        #expect(mismatch == nil, "\(mismatch ?? "")", sourceLocation: sourceLocation)
    }

    @Test(arguments: ["short", "break", "long", "negative", "empty"])
    func chunksAndEmbeddingsAreA1111s(_ name: String) throws {
        let c = try #require(Self.cases[name])
        let chunks = Self.pipeline.chunks(try A1111Prompt(parsing: c["prompt"] as! String))
        #expect(chunks.tokens == c["tokens"] as! [[Int]], "\(name): tokens")
        #expect(chunks.multipliers == (c["multipliers"] as! [[String]]).map { $0.map { Double($0)! } }, "\(name): multipliers")
        #expect(chunks.tokenCount == c["token_count"] as! Int, "\(name): token count")
        try expectClose(Self.pipeline.encode(chunks), "\(name)_embeds", atol: 5e-5)
    }

    @Test func theLongPromptTakesThreeChunksAndBacktracksToACommaAsA1111Does() throws {
        let chunks = Self.pipeline.chunks(try A1111Prompt(parsing: Self.cases["long"]!["prompt"] as! String))
        let end = try #require(Self.pipeline.tokenizer.tokenID("<|endoftext|>"))
        #expect(chunks.tokens.count == 3 && chunks.tokens.allSatisfy { $0.count == 77 })
        // The second chunk ends early: the words after its last comma moved to the third.
        #expect(chunks.tokens[1].suffix(2) == [end, end])
        #expect(chunks.tokens[0][75] != end)
    }

    /// The 179-token prompt (3 chunks) against the one-chunk negative, padded with two empty-prompt chunks,
    /// through two DDIM steps at guidance 7.5 as diffusers runs prompt_embeds / negative_prompt_embeds.
    @Test func aTwoStepRunOnAWeightedLongPromptMatchesTheReference() throws {
        let prompts = try Self.pipeline.conditioning(prompt: Self.cases["long"]!["prompt"] as! String,
                                                     negative: Self.cases["negative"]!["prompt"] as! String, syntax: .a1111, guided: true)
        let uncond = try #require(prompts.uncond)
        try expectClose(prompts.cond, "pipeline_cond", atol: 5e-5)
        try expectClose(uncond, "pipeline_uncond", atol: 5e-5)
        #expect(prompts.promptTokens == 179)

        let config = try SchedulerConfig.decode(try Data(contentsOf: URL(fileURLWithPath: Self.folder + "/sd/scheduler/scheduler_config.json")))
        var scheduler = try SchedulerKind.ddim.make(config: config, steps: 2)
        let latents = try SafeTensorsFile(path: Self.folder + "/sd/fixtures.safetensors").tensor("latents_init") * scheduler.initNoiseSigma
        var after: [Tensor] = []
        let final = Self.pipeline.denoise(latents, context: Tensor.concatenate([uncond, prompts.cond], axis: 0), guidance: 7.5,
                                          scheduler: &scheduler, noise: { Issue.record("DDIM drew noise"); return [] }) { _, x in after.append(x) }
        try expectClose(Tensor.concatenate(after, axis: 0), "pipeline_step_latents", atol: 3e-4)
        try expectClose(Self.pipeline.decodeImages(final), "pipeline_image", atol: 3e-4)
    }

    @Test func plainPromptsKeepDiffusersWindowAndSayWhatWasCut() throws {
        let long = Self.cases["long"]!["prompt"] as! String
        let plain = try Self.pipeline.conditioning(prompt: long, negative: "", syntax: .plain, guided: true)
        #expect(plain.cond.shape == [1, 77, 32] && plain.uncond?.shape == [1, 77, 32])
        #expect(plain.truncatedTokens > 0 && plain.truncatedTokens == Self.pipeline.truncatedTokens(long))
    }

    @Test func promptsPastThirtyTwoChunksAreRefusedWithTheNumbers() {
        let huge = String(repeating: "a cat, ", count: 2_000)
        #expect(throws: PromptConditioningError.self) {
            try Self.pipeline.conditioning(prompt: huge, negative: "", syntax: .a1111, guided: true)
        }
        #expect(throws: A1111Prompt.SyntaxError.self) {
            try Self.pipeline.conditioning(prompt: "(cat:1.2.3)", negative: "", syntax: .a1111, guided: false)
        }
    }
}
