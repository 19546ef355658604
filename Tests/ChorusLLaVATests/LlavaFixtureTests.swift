import ChorusLLaVA
import ChorusMedia
import ChorusTensor
import ChorusTestSupport
import Foundation
import Testing

/// The tiny random LLaVA of ../shared/fixtures/llava (CLIP tower 2×32, Llama 2×64 with 4 query and
/// 2 key/value heads), made with transformers 5.23: every case of its manifest.
@Suite struct LlavaFixtureTests {
    static let folder = Bundle.module.resourcePath! + "/Fixtures/llava"
    static let fixture = try! SafeTensorsFile(path: folder + "/fixtures.safetensors")
    static let pipeline = try! LlavaPipeline(folder: folder)
    static let prompt = "USER: <image>\nWhat is shown in this image? ASSISTANT:"

    /// The manifest's rule: |actual − expected| ≤ atol + rtol·|expected| everywhere.
    func expectClose(_ actual: [Float], _ name: String, atol: Float = 1e-5, rtol: Float = 1e-4,
                     sourceLocation: SourceLocation = #_sourceLocation) throws {
        let mismatch = fixtureMismatch(name, actual, try Self.fixture.tensor(name).storage, atol: atol, rtol: rtol)
        #expect(mismatch == nil, "\(mismatch ?? "")", sourceLocation: sourceLocation)
    }

    func promptIDs() throws -> [Int] { try Self.fixture.int64s("input_ids").map(Int.init) }
    func pixels() throws -> Tensor { try Self.fixture.tensor("pixel_values") }

    @Test func processorExpandsTheImageTokenAndPreprocessesLikeLlavaProcessor() throws {
        #expect(try Self.pipeline.promptIDs(Self.prompt) == (try promptIDs()))
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.folder + "/input_image.png")))
        try expectClose(Self.pipeline.pixelValues(ImageCodec.decode(bytes)), "pixel_values", atol: 0.02, rtol: 0)
    }

    @Test func withoutAChatTemplateThePromptIsLlava15s() throws {
        #expect(Self.pipeline.chatTemplate == nil)
        let text = try Self.pipeline.promptText([ChatMessage(role: "user", parts: [.image, .text("What is shown in this image?")])])
        #expect(text == Self.prompt)
    }

    @Test func imageFeaturesMatchTransformers() throws {
        try expectClose(Self.pipeline.model.imageFeatures(pixels()).storage, "image_features")
    }

    @Test func promptLogitsMatchTransformers() throws {
        let model = Self.pipeline.model
        var cache = model.languageModel.newCache()
        let ids = try promptIDs()
        let hidden = model.languageModel.forward(model.embed(ids: ids, imageFeatures: model.imageFeatures(try pixels())), cache: &cache)
        try expectClose(model.languageModel.logits(hidden).storage, "prompt_logits")
        #expect(cache.length == ids.count)
    }

    /// Each step's logits through the KV cache equal transformers' full recompute, and greedy
    /// generation picks the recorded ids.
    @Test func greedyDecodingMatchesTransformers() throws {
        let model = Self.pipeline.model, lm = model.languageModel
        let expectedIDs = try Self.fixture.int64s("generated_ids").map(Int.init)
        var cache = lm.newCache(capacity: 8)  // small, so the cache grows while decoding
        var hidden = lm.forward(model.embed(ids: try promptIDs(), imageFeatures: model.imageFeatures(try pixels())), cache: &cache)
        var stepLogits: [Float] = []
        for id in expectedIDs {
            let h = lm.hiddenSize, last = hidden.shape[0] - 1
            stepLogits += lm.logits(Tensor(shape: [1, h], storage: Array(hidden.storage[(last * h)...]))).storage
            hidden = lm.forward(lm.embed([id]), cache: &cache)
        }
        try expectClose(stepLogits, "step_logits")

        let generator = LlavaGenerator(pipeline: Self.pipeline)
        let completion = try generator.generate(GenerationRequest(promptIDs: try promptIDs(), images: [pixels().storage], maxNewTokens: 5))
        #expect(completion.tokenIDs == expectedIDs)
        #expect(completion.finishReason == .length)
        #expect(completion.promptTokens == 46)
    }
}

/// A folder's chat template is found where transformers looks (chat_template.jinja, chat_template.json,
/// tokenizer_config.json) and drives the prompt; llava-hf's template writes what the built-in format does.
@Suite struct LlavaChatTemplateTests {
    static let llava15 = #"{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}{% endif %}{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}{# Render all text next #}{% if message['role'] != 'assistant' %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' '}}{% endfor %}{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{% generation %}{{ content['text'] + ' '}}{% endgeneration %}{% endfor %}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"#

    static let conversation = [
        ChatMessage(role: "user", parts: [.image, .text("What is shown in this image?")]),
        ChatMessage(role: "assistant", parts: [.text("A red chair.")]),
        ChatMessage(role: "user", parts: [.image, .text("And in this one?")]),
    ]

    /// A copy of the fixture folder with `files` added.
    func folder(with files: [String: String]) throws -> String {
        let copy = NSTemporaryDirectory() + "llava-template-\(UUID().uuidString)"
        try FileManager.default.copyItem(atPath: LlavaFixtureTests.folder, toPath: copy)
        for (name, text) in files { try text.write(toFile: copy + "/" + name, atomically: true, encoding: .utf8) }
        return copy
    }

    @Test func llavaHFsTemplateWritesTheBuiltInFormat() throws {
        let json = String(decoding: try JSONSerialization.data(withJSONObject: ["chat_template": Self.llava15]), as: UTF8.self)
        let pipeline = try LlavaPipeline(folder: folder(with: ["chat_template.json": json]))
        #expect(pipeline.chatTemplate != nil)
        let text = try pipeline.promptText(Self.conversation)
        #expect(text == "USER: <image>\nWhat is shown in this image? ASSISTANT: A red chair. USER: <image>\nAnd in this one? ASSISTANT:")
        #expect(text == (try LlavaFixtureTests.pipeline.promptText(Self.conversation)))
        #expect(try pipeline.promptIDs(text).filter { $0 == 401 }.count == 32)
    }

    @Test func aJinjaFileWinsAndBOSWrittenByTheTemplateIsNotDoubled() throws {
        let template = "{{ bos_token }}{% for m in messages %}[{{ m['role'] }}] {% for c in m['content'] %}{% if c['type'] == 'image' %}<image>{% else %}{{ c['text'] }}{% endif %}{% endfor %}\n{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}"
        let pipeline = try LlavaPipeline(folder: folder(with: ["chat_template.jinja": template]))
        let text = try pipeline.promptText([ChatMessage(role: "user", parts: [.image, .text("hi")])])
        // trim_blocks, as transformers renders: the newline right after a block tag goes.
        #expect(text == "<s>[user] <image>hi[assistant]")
        let ids = try pipeline.promptIDs(text)
        #expect(ids.first == 1 && ids.dropFirst().first != 1)
    }

    @Test func aTemplateThatRefusesTheConversationIsARequestError() throws {
        let template = "{% if messages[0]['role'] != 'user' %}{{ raise_exception('Conversations must start with the user') }}{% endif %}ok"
        let pipeline = try LlavaPipeline(folder: folder(with: ["chat_template.jinja": template]))
        #expect(throws: LlavaRequestError.self) { try pipeline.promptText([ChatMessage(role: "assistant", parts: [.text("hi")])]) }
        do {
            _ = try pipeline.promptText([ChatMessage(role: "assistant", parts: [.text("hi")])])
        } catch {
            #expect("\(error)".contains("Conversations must start with the user"))
        }
        #expect(throws: WeightFileError.self) { try LlavaPipeline(folder: folder(with: ["chat_template.jinja": "{% for %}"])) }
    }
}

extension LlavaFixtureTests {
    /// "<image>" typed into a message is the image token; 150,000 of them expanded to 86 M ids before the
    /// context check. Now a prompt that cannot fit is refused before the expansion.
    @Test func typedImagePlaceholdersCannotExpandPastTheContext() throws {
        let pipeline = Self.pipeline
        let flood = String(repeating: "<image>", count: 20_000)
        #expect(throws: LlavaRequestError.self) { try pipeline.promptIDs(flood) }
        #expect(try pipeline.promptIDs("<image> hi").count < pipeline.model.config.text.maxPositionEmbeddings)
    }
}
