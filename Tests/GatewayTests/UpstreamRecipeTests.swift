import ChorusAPI
import ChorusWire
import Foundation
@testable import Gateway
import Testing

/// The spoken-question recipe with `upstream_model`: its answer step is the upstream chat, whose request carries the
/// image as OpenAI's data URL and the transcript as the text part; without the input the recipe is unchanged.
@Suite struct UpstreamRecipeTests {
    static let png = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 1, 2, 3])

    static func external() -> ExternalSteps {
        let steps = ExternalSteps()
        steps.register("upstream.chat") { _, _ in Data("{}".utf8) }
        return steps
    }

    func request(_ pipeline: Pipeline, _ id: String, outputs: [String: Any]) throws -> [String: Any] {
        let step = try #require(pipeline.steps.first { $0.id == id })
        return try #require(try JSONSerialization.jsonObject(with: pipeline.request(for: step, outputs: outputs)) as? [String: Any])
    }

    @Test func anUpstreamModelAnswersWithTheImageAsADataURL() throws {
        let pipeline = try Pipeline(ComposeRequest(recipe: "spoken-question", inputs: [KeyValue(key: "upstream_model", value: "gpt-4v")],
                                                   images: [EncodedImage(data: Self.png)], audio: [Audio(wav: Data("RIFF".utf8))]),
                                    external: Self.external())
        #expect(pipeline.steps.map(\.id) == ["transcript", "answer", "speech"])
        #expect(pipeline.steps[1].target.name == "upstream.chat" && pipeline.steps[1].dependencies == ["transcript"])
        let answer = try request(pipeline, "answer", outputs: ["transcript": ["result": ["text": "What is this?"]]])
        #expect(answer["model"] as? String == "gpt-4v" && answer["max_tokens"] as? Int == 256)
        let content = ((answer["messages"] as? [[String: Any]])?.first?["content"] as? [[String: Any]]) ?? []
        #expect(content.count == 2 && content[0]["type"] as? String == "image_url" && content[1]["text"] as? String == "What is this?")
        #expect((content[0]["image_url"] as? [String: Any])?["url"] as? String == "data:image/png;base64," + Self.png.base64EncodedString())
    }

    @Test func withoutAnImageTheUpstreamGetsTheTextAlone() throws {
        let pipeline = try Pipeline(ComposeRequest(recipe: "spoken-question", inputs: [KeyValue(key: "upstream_model", value: "gpt-4o"),
                                                                                      KeyValue(key: "max_tokens", value: "9")],
                                                   audio: [Audio(wav: Data("RIFF".utf8))]), external: Self.external())
        let answer = try request(pipeline, "answer", outputs: ["transcript": ["result": ["text": "Hello?"]]])
        let content = ((answer["messages"] as? [[String: Any]])?.first?["content"] as? [[String: Any]]) ?? []
        #expect(answer["max_tokens"] as? Int == 9 && content.count == 1 && content[0]["text"] as? String == "Hello?")
    }

    @Test func withoutUpstreamsTheRecipeSaysWhichStepsExist() throws {
        let refused = #expect(throws: WireStatus.self) {
            try Pipeline(ComposeRequest(recipe: "spoken-question", inputs: [KeyValue(key: "upstream_model", value: "gpt-4v")],
                                        audio: [Audio(wav: Data("RIFF".utf8))]))
        }
        #expect(refused?.message.contains("step 'answer': upstream.chat calls an upstream model, and this gateway has none (start it with --upstreams FILE") == true)
        // Local as before: LLaVA's Ask with an image.
        let local = try Pipeline(ComposeRequest(recipe: "spoken-question", images: [EncodedImage(data: Self.png)], audio: [Audio(wav: Data("RIFF".utf8))]))
        #expect(local.steps[1].target.name == "Ask")
    }

    @Test func imageReferencesAreBytesOrADataURL() throws {
        let jpeg = Data([0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10])
        let pipeline = try Pipeline(ComposeRequest(steps: [
            PipelineStep(id: "a", method: "upstream.chat", inputs: [StepInput(field: "bytes", value: "$image.0"),
                                                                    StepInput(field: "url", value: "$image.0.data_url")]),
        ], images: [EncodedImage(data: jpeg)]), external: Self.external())
        let body = try request(pipeline, "a", outputs: [:])
        #expect(body["bytes"] as? String == jpeg.base64EncodedString() && body["url"] as? String == "data:image/jpeg;base64," + jpeg.base64EncodedString())
        let wrong = try Pipeline(ComposeRequest(steps: [
            PipelineStep(id: "a", method: "upstream.chat", inputs: [StepInput(field: "url", value: "$image.0.url")]),
        ], images: [EncodedImage(data: jpeg)]), external: Self.external())
        #expect(throws: WireStatus.self) { try request(wrong, "a", outputs: [:]) }
        #expect(Pipeline.mimeType(Data("GIF89a".utf8)) == "image/gif" && Pipeline.mimeType(Data([1, 2])) == "application/octet-stream")
    }
}
