import ChorusStableDiffusion
import ChorusTensor
import ChorusTestSupport
import Foundation
import Testing

/// compel's embeddings against compel itself (`Compel(tokenizer, text_encoder, truncate_long_prompts=False)`
/// on the tiny SD fixture with a LayerNorm bias; scripts/fixtures/make_compel_cases.py): up-weighting (moved
/// from the empty prompt's embedding), down-weighting (mixed with the prompt re-encoded with the fragment's
/// keys masked out), blends, weighted conjunctions, a 231-position prompt chunked at full stops, and a
/// two-step diffusers run on the long prompt against a down-weighted negative padded to its length.
@Suite struct CompelPromptEmbeddingTests {
    static let fixture = PromptEmbeddingFixture("compel_embeddings")
    static let pipeline = PromptEmbeddingFixture.pipeline
    static var cases: [String: [String: Any]] { fixture.cases }

    func expectClose(_ actual: Tensor, _ name: String, atol: Float, sourceLocation: SourceLocation = #_sourceLocation) throws {
        try Self.fixture.expectClose(actual, name, atol: atol, sourceLocation: sourceLocation)
    }

    @Test(arguments: ["plain", "up", "down", "mixed", "blend", "and", "long", "negative", "empty"])
    func tokensAndEmbeddingsAreCompels(_ name: String) throws {
        let c = try #require(Self.cases[name])
        let tokens = try Self.pipeline.compelTokens(try CompelPrompt(parsing: c["prompt"] as! String))
        // compel's tokenization: every run's ids (a blend reports its first run's).
        let ids = tokens.parts.flatMap { part -> [Int] in part.runs.first!.ids }
        #expect(ids == c["tokens"] as! [Int], "\(name): tokens")
        try expectClose(Self.pipeline.encode(tokens, empty: Self.pipeline.emptyCompelChunk()), "\(name)_embeds", atol: 5e-5)
    }

    @Test func theLongPromptSplitsAtFullStops() throws {
        let tokens = try Self.pipeline.compelTokens(try CompelPrompt(parsing: Self.cases["long"]!["prompt"] as! String))
        let run = try #require(tokens.parts.first?.runs.first)
        #expect(run.chunks == 3)
        let stop = try #require(Self.pipeline.tokenizer.tokenID(".</w>"))
        let end = try #require(Self.pipeline.tokenizer.tokenID("<|endoftext|>"))
        // Each full chunk's last prompt token is a full stop, the rest of the window end-of-text and padding.
        for chunk in 0..<2 {
            let window = Array(run.ids[(chunk * 77)..<((chunk + 1) * 77)])
            let closing = try #require(window.firstIndex(of: end))
            #expect(window[closing - 1] == stop, "chunk \(chunk)")
        }
        // Eight down-weighted fragments: each re-encodes the three chunks.
        #expect(tokens.encoderPasses == 3 * (1 + 3))
    }

    @Test func aTwoStepRunOnALongCompelPromptMatchesTheReference() throws {
        let prompts = try Self.fixture.expectTwoStepRunMatches(syntax: .compel)
        let tokenizer = Self.pipeline.tokenizer
        let frame = Set([tokenizer.tokenID("<|startoftext|>"), tokenizer.tokenID("<|endoftext|>"), Self.pipeline.padID])
        #expect(prompts.promptTokens == (Self.cases["long"]!["tokens"] as! [Int]).count { !frame.contains($0) })
    }

    @Test func blendsThatCannotNormaliseAndPromptsPastTheLimitsAreRefused() throws {
        #expect(throws: CompelConditioningError.self) {
            try Self.pipeline.compelTokens(try CompelPrompt(parsing: "(\"a cat\", \"a dog\").blend(1, -1)"))
        }
        // 30 down-weighted fragments (kept apart by plain words, or they would join): each re-encodes the run.
        let words = (0..<30).map { "w\($0)- x" }.joined(separator: " ")
        let tokens = try Self.pipeline.compelTokens(try CompelPrompt(parsing: words))
        let run = try #require(tokens.parts.first?.runs.first)
        #expect(tokens.encoderPasses == run.chunks * 31 && tokens.encoderPasses <= StableDiffusionPipeline.maxCompelEncoderPasses)
        let long = words + ". " + String(repeating: "a b c d e f g h. ", count: 40)
        #expect(performing: { try Self.pipeline.compelTokens(try CompelPrompt(parsing: long)) }, throws: { error in
            if case CompelConditioningError.tooManyPasses = error { return true }
            return false
        })
    }
}
