@testable import ChorusLLaVA
@testable import ChorusLLM
import ChorusMedia
import ChorusTensor
import Foundation
import Testing

/// Generation beyond the manifest: transformers' `generate` on longer runs, with a repetition
/// penalty and on a second turn (scripts/fixtures/make_llava_generation_cases.py), sampling,
/// stop strings, the prefix cache of multi-turn chat and the context limit.
@Suite struct LlavaGenerationTests {
    struct Case: Decodable {
        let prompt: String
        let input_ids: [Int]
        let generated_ids: [Int]
        let options: [String: Double]
    }

    static let pipeline = LlavaFixtureTests.pipeline
    static let cases = try! JSONDecoder().decode([Case].self, from: Data(contentsOf: URL(fileURLWithPath: LlavaFixtureTests.folder + "/generation_cases.json")))
    static let image = try! ImageCodec.decode([UInt8](Data(contentsOf: URL(fileURLWithPath: LlavaFixtureTests.folder + "/input_image.png"))))
    static let pixels = try! pipeline.pixelValues(image)
    /// The image turned upside down (PIL's rotate(180)): its pixels in reverse order.
    static let upsideDown: [Float] = {
        let c = image.channels
        let count = image.width * image.height
        let pixels = (0..<count).reversed().flatMap { p in image.pixels[(p * c)..<((p + 1) * c)] }
        return try! pipeline.pixelValues(Image(width: image.width, height: image.height, channels: c, pixels: pixels))
    }()

    func request(_ prompt: String, maxNewTokens: Int, sampling: SamplingOptions = .init(), stop: [String] = []) throws -> GenerationRequest {
        GenerationRequest(promptIDs: try Self.pipeline.promptIDs(prompt), images: [Self.pixels], maxNewTokens: maxNewTokens, sampling: sampling, stop: stop)
    }

    /// Longer greedy runs, a repetition penalty, a second turn's prompt and two images in one prompt.
    @Test(arguments: 0..<4) func greedyMatchesTransformersGenerate(index: Int) throws {
        let reference = Self.cases[index]
        #expect(try Self.pipeline.promptIDs(reference.prompt) == reference.input_ids)
        let sampling = SamplingOptions(repetitionPenalty: Float(reference.options["repetition_penalty"] ?? 1))
        var generation = try request(reference.prompt, maxNewTokens: reference.generated_ids.count, sampling: sampling)
        if index == 3 { generation.images = [Self.pixels, Self.upsideDown] }
        let completion = try LlavaGenerator(pipeline: Self.pipeline).generate(generation)
        #expect(completion.tokenIDs == reference.generated_ids)
        if index == 3 {
            // Features come out image after image, each image's rows as when it is alone.
            let model = Self.pipeline.model
            let both = model.imageFeatures(Tensor(shape: [2, 3, 32, 32], storage: Self.pixels + Self.upsideDown)).storage
            let first = model.imageFeatures(Tensor(shape: [1, 3, 32, 32], storage: Self.pixels)).storage
            let second = model.imageFeatures(Tensor(shape: [1, 3, 32, 32], storage: Self.upsideDown)).storage
            #expect(zip(both, first + second).allSatisfy { abs($0 - $1) < 1e-5 })
            #expect(first != second)
        }
    }

    @Test func llama3RopeFrequenciesMatchTransformers() throws {
        struct Reference: Decodable {
            let head_dim: Int
            let inv_freq: [Float]
        }
        let reference = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: URL(fileURLWithPath: LlavaFixtureTests.folder + "/rope_llama3.json")))
        let rotary = RotaryEmbedding(headSize: reference.head_dim, rope: LlamaConfig.RoPE(
            theta: 500_000, scaling: .llama3(factor: 8, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalContext: 8192)))
        #expect(rotary.inverseFrequencies.count == reference.inv_freq.count)
        for (ours, theirs) in zip(rotary.inverseFrequencies, reference.inv_freq) {
            #expect(abs(ours - theirs) <= 1e-6 * max(1, abs(theirs)), "\(ours) vs \(theirs)")
        }
    }

    @Test func aSecondTurnReusesTheCachedPrefixAndGivesTheSameTokens() throws {
        let generator = LlavaGenerator(pipeline: Self.pipeline)
        var messages = [ChatMessage(role: "user", parts: [.image, .text("Describe the image.")])]
        let first = try generator.generate(request(Self.pipeline.promptText(messages), maxNewTokens: 8))
        #expect(first.reusedPromptTokens == 0)
        messages.append(ChatMessage(role: "assistant", parts: [.text(first.text)]))
        messages.append(ChatMessage(role: "user", parts: [.text("What colour is it?")]))
        let secondPrompt = try Self.pipeline.promptText(messages)
        let second = try generator.generate(request(secondPrompt, maxNewTokens: 8))
        // Everything up to the first turn's "ASSISTANT:" (image included) was cached.
        #expect(second.reusedPromptTokens >= first.promptTokens)
        #expect(second.reusedPromptTokens < second.promptTokens)

        let fresh = try LlavaGenerator(pipeline: Self.pipeline, cachedConversations: 0).generate(request(secondPrompt, maxNewTokens: 8))
        #expect(fresh.reusedPromptTokens == 0)
        #expect(second.tokenIDs == fresh.tokenIDs)
        #expect(second.text == fresh.text)
    }

    @Test func theSamePromptTwiceRecomputesOnlyItsLastPosition() throws {
        let generator = LlavaGenerator(pipeline: Self.pipeline)
        let prompt = Self.cases[0].prompt
        let first = try generator.generate(request(prompt, maxNewTokens: 4))
        let again = try generator.generate(request(prompt, maxNewTokens: 4))
        #expect(again.reusedPromptTokens == again.promptTokens - 1)
        #expect(again.tokenIDs == first.tokenIDs)
    }

    @Test func aDifferentImageIsNotMistakenForACachedOne() throws {
        let generator = LlavaGenerator(pipeline: Self.pipeline)
        let prompt = Self.cases[0].prompt
        _ = try generator.generate(request(prompt, maxNewTokens: 4))
        var other = try request(prompt, maxNewTokens: 4)
        other.images = [Self.pixels.map { -$0 }]
        let completion = try generator.generate(other)
        // Only the text before the image tokens is shared.
        #expect(completion.reusedPromptTokens == Self.cases[0].input_ids.firstIndex(of: 401))
    }

    @Test func seededSamplingIsReproducibleAndTopKOneIsGreedy() throws {
        let generator = LlavaGenerator(pipeline: Self.pipeline, cachedConversations: 0)
        let prompt = Self.cases[0].prompt
        let sampling = SamplingOptions(temperature: 1.5, topP: 0.95, seed: 7)
        let a = try generator.generate(request(prompt, maxNewTokens: 16, sampling: sampling))
        let b = try generator.generate(request(prompt, maxNewTokens: 16, sampling: sampling))
        #expect(a.tokenIDs == b.tokenIDs)
        var reseeded = sampling
        reseeded.seed = 8
        let c = try generator.generate(request(prompt, maxNewTokens: 16, sampling: reseeded))
        #expect(c.tokenIDs != a.tokenIDs)
        #expect(a.tokenIDs != Array(Self.cases[0].generated_ids.prefix(16)))
        let topOne = try generator.generate(request(prompt, maxNewTokens: 16, sampling: SamplingOptions(temperature: 1.5, topK: 1, seed: 3)))
        #expect(topOne.tokenIDs == Array(Self.cases[0].generated_ids.prefix(16)))
    }

    @Test func aStopStringEndsTheTextBeforeIt() throws {
        let generator = LlavaGenerator(pipeline: Self.pipeline, cachedConversations: 0)
        let prompt = Self.cases[0].prompt
        let full = try generator.generate(request(prompt, maxNewTokens: 20))
        // A stop string from the middle of the greedy text.
        let text = full.text
        let middle = text.index(text.startIndex, offsetBy: text.count / 2)
        let stop = String(text[middle...].prefix(3))
        var streamed = ""
        let stopped = try generator.generate(request(prompt, maxNewTokens: 20, stop: [stop]), onToken: { _, piece in streamed += piece })
        #expect(stopped.finishReason == .stop)
        #expect(stopped.text == String(text[..<text.range(of: stop)!.lowerBound]))
        #expect(streamed == stopped.text)
        #expect(stopped.tokenIDs.count < full.tokenIDs.count)
    }

    @Test func streamedPiecesAddUpToTheText() throws {
        var pieces: [String] = []
        let completion = try LlavaGenerator(pipeline: Self.pipeline).generate(request(Self.cases[0].prompt, maxNewTokens: 20),
                                                                             onToken: { _, piece in pieces.append(piece) })
        #expect(pieces.joined() + completion.tail == completion.text)
        #expect(completion.text == Self.pipeline.tokenizer.decode(completion.tokenIDs, skipSpecialTokens: true))
        #expect(pieces.filter { !$0.isEmpty }.count > 1)
    }

    @Test func cancellationStopsBeforeTheNextToken() throws {
        var produced = 0
        let completion = try LlavaGenerator(pipeline: Self.pipeline).generate(request(Self.cases[0].prompt, maxNewTokens: 50),
                                                                             isCancelled: { produced >= 3 }, onToken: { _, _ in produced += 1 })
        #expect(completion.finishReason == .cancelled)
        #expect(completion.tokenIDs.count == 3)
    }

    @Test func aPromptLongerThanTheContextIsRefusedWithTheNumbers() throws {
        // The fixture's context is 128 positions; each image takes 16.
        let long = "USER: <image>\n" + String(repeating: "word ", count: 150) + "ASSISTANT:"
        #expect(throws: LlavaRequestError.self) { try LlavaGenerator(pipeline: Self.pipeline).generate(request(long, maxNewTokens: 4)) }
        do {
            _ = try LlavaGenerator(pipeline: Self.pipeline).generate(request(long, maxNewTokens: 4))
        } catch {
            #expect("\(error)".contains("context is 128"))
        }
        let twoPlaceholders = GenerationRequest(promptIDs: try Self.pipeline.promptIDs("<image><image> hi"), images: [Self.pixels])
        #expect(throws: LlavaRequestError.self) { try LlavaGenerator(pipeline: Self.pipeline).generate(twoPlaceholders) }
    }

    @Test func generationStopsAtTheEndOfTheContext() throws {
        let completion = try LlavaGenerator(pipeline: Self.pipeline).generate(request(Self.cases[0].prompt, maxNewTokens: 1000))
        #expect(completion.finishReason == .length)
        #expect(completion.promptTokens + completion.tokenIDs.count == 128)
    }
}
