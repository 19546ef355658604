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
    static let fixture = PromptEmbeddingFixture("a1111_embeddings")
    static let pipeline = PromptEmbeddingFixture.pipeline
    static var cases: [String: [String: Any]] { fixture.cases }

    func expectClose(_ actual: Tensor, _ name: String, atol: Float, sourceLocation: SourceLocation = #_sourceLocation) throws {
        try Self.fixture.expectClose(actual, name, atol: atol, sourceLocation: sourceLocation)
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
        let prompts = try Self.fixture.expectTwoStepRunMatches(syntax: .a1111)
        #expect(prompts.promptTokens == 179)
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
