import ChorusAPI
import ChorusTestSupport
import ChorusWire
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

/// Prompt craft over real processes: DiffusionService with the tiny Stable Diffusion fixture, VisionService
/// with the real SmolLM2 (scripts/fetch-models) for expansion, and a gateway with its HTTP front.
@Suite(.serialized) struct PromptCraftProcessTests {
    struct Stack {
        let processes: [ChorusProcess]
        let gateway: GatewayClient
        let diffusion: DiffusionClient
        let http: String

        func stop() {
            (gateway.channel as? WireClient)?.close()
            (diffusion.channel as? WireClient)?.close()
            for process in processes { process.signal(SIGKILL) }
        }
    }

    static func start() async throws -> Stack {
        let visionModels = NSTemporaryDirectory() + "chorus-craft-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: visionModels, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: visionModels + "/smollm2-135m-instruct",
                                                   withDestinationPath: try RealModels.path("smollm2-135m-instruct"))
        let (vision, visionAddress) = try await ChorusProcess.serve(["vision", "--port", "0", "--models", visionModels])
        let (diffusion, diffusionAddress) = try await ChorusProcess.serve(["diffusion", "--port", "0", "--models", try StableDiffusionProcessTests.models()])
        let (gateway, address) = try await ChorusProcess.serve(["gateway", "--port", "0", "--http-port", "0",
                                                                "--vision", visionAddress, "--diffusion", diffusionAddress])
        let line = try await gateway.waitForLine(containing: "OpenAI-compatible HTTP on http://")
        let http = String(line[line.range(of: "http://")!.lowerBound...].split(separator: " ").first!)
        return Stack(processes: [gateway, vision, diffusion], gateway: GatewayClient(try WireClient(address: address)),
                     diffusion: DiffusionClient(try WireClient(address: diffusionAddress)), http: http)
    }

    func post(_ stack: Stack, _ path: String, _ json: [String: Any]) async throws -> (status: Int, body: [String: Any], text: String) {
        var request = URLRequest(url: URL(string: stack.http + path)!, timeoutInterval: 120)
        request.httpMethod = "POST"
        request.httpBody = try JSONSerialization.data(withJSONObject: json)
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        let (data, response) = try await URLSession.shared.data(for: request)
        let text = String(decoding: data, as: UTF8.self)
        return ((response as! HTTPURLResponse).statusCode, (try? JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:], text)
    }

    /// A multipart form (binary-safe): text fields, then the file.
    func postForm(_ stack: Stack, _ path: String, _ fields: [(String, String)], file: (name: String, data: Data)) async throws -> (status: Int, body: [String: Any], text: String) {
        let boundary = "chorus-form-\(UUID().uuidString)"
        var body = Data()
        for (name, value) in fields {
            body += Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n".utf8)
        }
        body += Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(file.name)\"; filename=\"in.png\"\r\nContent-Type: image/png\r\n\r\n".utf8)
        body += file.data + Data("\r\n--\(boundary)--\r\n".utf8)
        var request = URLRequest(url: URL(string: stack.http + path)!, timeoutInterval: 120)
        request.httpMethod = "POST"
        request.httpBody = body
        request.setValue("multipart/form-data; boundary=\(boundary)", forHTTPHeaderField: "Content-Type")
        let (data, response) = try await URLSession.shared.data(for: request)
        let text = String(decoding: data, as: UTF8.self)
        return ((response as! HTTPURLResponse).statusCode, (try? JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:], text)
    }

    /// craft-and-generate with expansion: SmolLM2 enriches the subject (bounded, seeded), the builder puts it
    /// through the style and adds the negatives, and the generate step says what it ran.
    @Test func craftAndGenerateExpandsBuildsAndReturnsThePrompt() async throws {
        let stack = try await Self.start()
        defer { stack.stop() }
        func run() async throws -> [String: Any] {  // the compose call's step outputs by id
            let request = ComposeRequest(recipe: "craft-and-generate", inputs: [
                KeyValue(key: "subject", value: "a lighthouse"), KeyValue(key: "style", value: "oil-painting"),
                KeyValue(key: "expand", value: "true"), KeyValue(key: "seed", value: "3"), KeyValue(key: "steps", value: "2"),
            ])
            var outputs: [String: Any] = [:]
            for try await event in stack.gateway.compose(request) where !event.stepId.isEmpty {
                #expect(event.statusCode == 0, "\(event.stepId): \(event.statusMessage)")
                outputs[event.stepId] = try? JSONSerialization.jsonObject(with: Data(event.outputJson.utf8))
            }
            return outputs
        }
        let outputs = try await run()
        let expanded = try #require((outputs["expand"] as? [String: Any])?["text"] as? String)
        #expect(!expanded.trimmingCharacters(in: .whitespaces).isEmpty && !expanded.contains("\n"), "\(expanded)")
        let result = try #require((outputs["generate"] as? [String: Any])?["result"] as? [String: Any])
        let prompt = try #require(result["prompt"] as? String), negative = try #require(result["negative_prompt"] as? String)
        #expect(prompt.hasPrefix("oil painting of ") && prompt.contains(expanded.trimmingCharacters(in: .whitespaces)), "\(prompt)")
        #expect(prompt.hasSuffix("highly detailed, sharp focus, high resolution"), "\(prompt)")
        #expect(negative.hasPrefix("lowres, low quality") && negative.contains("photograph"), "\(negative)")
        let image = try #require((result["images"] as? [[String: Any]])?.first?["data"] as? String)
        #expect(Data(base64Encoded: image)?.prefix(4) == Data([0x89, 0x50, 0x4E, 0x47]))
        // Bounded: at most 64 new tokens, so well under 64 words.
        #expect(expanded.split(separator: " ").count < 64, "\(expanded)")
        // Seeded: the same seed expands the same way, though the second time the prompt is in the prefix cache.
        let again = try await run()
        #expect((again["expand"] as? [String: Any])?["text"] as? String == expanded)
    }

    @Test func theHTTPFrontPreviewsStylesExpandsAndRefusesUnknownStyles() async throws {
        let stack = try await Self.start()
        defer { stack.stop() }
        let preview = try await post(stack, "/v1/prompts/preview", ["prompt": "a (cat:1.5) BREAK on a [mat]", "negative_prompt": "blurry",
                                                                    "styles": ["photo"]])
        #expect(preview.status == 200, "\(preview.text)")
        #expect(preview.body["prompt"] as? String == "photograph of a (cat:1.5) BREAK on a [mat], 50mm lens, natural colors, detailed skin and textures")
        let pieces = try #require(preview.body["pieces"] as? [[String: Any]])
        #expect(pieces.contains { $0["text"] as? String == "cat" && $0["weight"] as? Double == 1.5 })
        let chunks = try #require(preview.body["chunks"] as? [[String: Any]])
        #expect(chunks.count == 2 && chunks.allSatisfy { ($0["tokens"] as? [Any])?.count == 77 }, "BREAK makes two chunks")
        #expect((preview.body["styles"] as? [String])?.contains("pixel-art") == true)

        // compel: the flattened fragments with compel's weights, and its chunks.
        let compel = try await post(stack, "/v1/prompts/preview", ["prompt": "a cat++ on a (wooden mat)0.5", "prompt_syntax": "compel"])
        #expect(compel.status == 200 && compel.body["prompt_syntax"] as? String == "compel", "\(compel.text)")
        let fragments = try #require(compel.body["pieces"] as? [[String: Any]])
        #expect(fragments.map { $0["text"] as? String ?? "" } == ["a", "cat", "on a", "wooden mat"])
        // (JSON text to Double may move the last bit; the parse itself is checked exactly in CompelPromptSyntaxTests.)
        #expect(zip(fragments.map { $0["weight"] as? Double ?? 0 }, [1, 1.1 * 1.1, 1, 0.5]).allSatisfy { abs($0 - $1) < 1e-12 })
        #expect((compel.body["chunks"] as? [[String: Any]])?.count == 1)
        let swap = try await post(stack, "/v1/prompts/preview", ["prompt": "a cat.swap(dog)", "prompt_syntax": "compel"])
        #expect(swap.status == 400 && swap.text.contains(".swap() is not supported"), "\(swap.text)")

        let unknown = try await post(stack, "/v1/images/generations", ["prompt": "a cat", "styles": ["nope"], "size": "32x32", "steps": 1])
        #expect(unknown.status == 400 && unknown.text.contains("unknown style 'nope'") && unknown.text.contains("oil-painting"), "\(unknown.text)")

        let generated = try await post(stack, "/v1/images/generations", ["prompt": "a red boat", "expand": true, "seed": 11, "size": "32x32",
                                                                          "steps": 1, "styles": ["pixel-art"]])
        #expect(generated.status == 200, "\(generated.text)")
        let expanded = try #require(generated.body["expanded_prompt"] as? String)
        #expect(!expanded.isEmpty && (generated.body["prompt"] as? String) == "pixel art of \(expanded), 16-bit, limited palette, crisp pixels, retro game")

        // img2img over multipart takes styles (one comma-separated field) and the builder (one field of JSON).
        let initImage = try #require((generated.body["data"] as? [[String: Any]])?.first?["b64_json"] as? String).flatMap { Data(base64Encoded: $0) }
        let edited = try await postForm(stack, "/v1/images/edits", [
            ("prompt", "ignored when built"), ("steps", "2"), ("strength", "0.5"), ("seed", "4"), ("styles", "pixel-art"),
            ("build", #"{"subject": "a heron", "style": "watercolor", "lighting": "dawn light", "extra_negative": ["frame"]}"#),
        ], file: ("image", try #require(initImage)))
        #expect(edited.status == 200, "\(edited.text)")
        let editedPrompt = try #require(edited.body["prompt"] as? String)
        #expect(editedPrompt.hasPrefix("pixel art of ") && editedPrompt.contains("a heron") && editedPrompt.contains("dawn light"), "\(editedPrompt)")
        #expect((edited.body["negative_prompt"] as? String)?.contains("frame") == true)
        let badBuild = try await postForm(stack, "/v1/images/edits", [("build", "{not json")], file: ("image", try #require(initImage)))
        #expect(badBuild.status == 400 && (badBuild.body["error"] as? [String: Any])?["param"] as? String == "build", "\(badBuild.text)")

        do {
            let previewed = try await stack.diffusion.promptPreview(TextToImageRequest(prompt: "a (cat:1.2.3)"))
            Issue.record("a weight that is not a number was previewed: \(previewed.pieces)")
        } catch let status as WireStatus {
            #expect(status.code == .invalidArgument && status.message.contains("\"1.2.3\""), "\(status)")
        }
    }

    /// A style file with a mistake stops the service at start-up with the file and line named.
    @Test func aBrokenStyleFileStopsStartUpNamingTheLine() async throws {
        let path = NSTemporaryDirectory() + "chorus-styles-\(UUID().uuidString).json"
        try "{\"styles\": [\n  {\"name\": \"mine\", \"prompt\": \"{prompt}, mine\"},\n  {\"prompt\": \"no name\"}\n]}".write(toFile: path, atomically: true, encoding: .utf8)
        let (code, output) = try await ChorusProcess.run(["diffusion", "--port", "0", "--styles", path])
        #expect(code != 0 && output.contains("--styles: \(path):3: a style has no \"name\""), "\(code): \(output)")
        // YAML too, read by the service's own loader.
        let yaml = NSTemporaryDirectory() + "chorus-styles-\(UUID().uuidString).yaml"
        try "styles:\n  - name: mine\n    prompt: x\n  - name: mine\n    prompt: y\n".write(toFile: yaml, atomically: true, encoding: .utf8)
        let (yamlCode, yamlOutput) = try await ChorusProcess.run(["diffusion", "--port", "0", "--styles", yaml])
        #expect(yamlCode != 0 && yamlOutput.contains("--styles: \(yaml):4: style 'mine' is defined twice"), "\(yamlCode): \(yamlOutput)")
    }
}
