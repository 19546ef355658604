import ChorusAPI
import ChorusWire
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

/// The gateway's OpenAI-compatible HTTP front over real processes: VisionService with the tiny LLaVA and
/// CLIP fixtures behind a gateway, called with plain HTTP as the official clients send it.
@Suite(.serialized) struct OpenAIHTTPTests {
    struct Stack {
        let vision: ChorusProcess
        let gateway: ChorusProcess
        let gatewayAddress: String
        let http: String

        func stop() {
            gateway.signal(SIGKILL)
            vision.signal(SIGKILL)
        }
    }

    static let png = ChatProcessTests.png
    static var imageURL: String { "data:image/png;base64," + png.base64EncodedString() }

    static func start(gatewayFlags: [String] = []) async throws -> Stack {
        let models = NSTemporaryDirectory() + "chorus-http-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: models, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: models + "/llava-tiny", withDestinationPath: ChatProcessTests.llavaFolder.path)
        try FileManager.default.createSymbolicLink(atPath: models + "/clip-tiny", withDestinationPath: VisionProcessTests.clipFolder.path)
        let (vision, address) = try await ChorusProcess.serve(["vision", "--port", "0", "--models", models])
        let (gateway, gatewayAddress) = try await ChorusProcess.serve(["gateway", "--port", "0", "--vision", address, "--http-port", "0"] + gatewayFlags)
        let line = try await gateway.waitForLine(containing: "OpenAI-compatible HTTP on http://")
        let http = String(line[line.range(of: "http://")!.lowerBound...].split(separator: " ").first!)
        return Stack(vision: vision, gateway: gateway, gatewayAddress: gatewayAddress, http: http)
    }

    func call(_ stack: Stack, _ method: String, _ path: String, json: Any? = nil, body: Data? = nil,
              headers: [String: String] = [:]) async throws -> (status: Int, body: Data, contentType: String) {
        var request = URLRequest(url: URL(string: stack.http + path)!)
        request.httpMethod = method
        if let json { request.httpBody = try JSONSerialization.data(withJSONObject: json) }
        if let body { request.httpBody = body }
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as! HTTPURLResponse
        return (http.statusCode, data, http.value(forHTTPHeaderField: "Content-Type") ?? "")
    }

    func object(_ data: Data) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any], "\(String(decoding: data, as: UTF8.self))")
    }

    func question(_ text: String) -> [String: Any] {
        ["role": "user", "content": [["type": "image_url", "image_url": ["url": Self.imageURL]], ["type": "text", "text": text]]]
    }

    @Test func healthReadinessAndModels() async throws {
        let stack = try await Self.start()
        defer { stack.stop() }
        #expect(try await call(stack, "GET", "/healthz").status == 200)
        let ready = try await call(stack, "GET", "/readyz")
        #expect(ready.status == 200, "\(String(decoding: ready.body, as: UTF8.self))")
        let models = try object(try await call(stack, "GET", "/v1/models").body)
        let ids = (models["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String }
        #expect(ids == ["clip-tiny", "llava-tiny"])

        // With VisionService gone, readiness says so (the gateway ejects it at once).
        stack.vision.signal(SIGKILL)
        var status = 200
        for _ in 0..<100 where status == 200 {
            status = try await call(stack, "GET", "/readyz").status
            if status == 200 { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(status == 503)
    }

    @Test func chatCompletionsAnswerAndStream() async throws {
        let stack = try await Self.start()
        defer { stack.stop() }
        let answer = try await call(stack, "POST", "/v1/chat/completions", json: [
            "model": "llava-tiny", "max_tokens": 5, "messages": [question("What is shown in this image?")]])
        #expect(answer.status == 200)
        let completion = try object(answer.body)
        #expect(completion["object"] as? String == "chat.completion")
        let usage = try #require(completion["usage"] as? [String: Any])
        #expect(usage["prompt_tokens"] as? Int == 46 && usage["completion_tokens"] as? Int == 5 && usage["total_tokens"] as? Int == 51)
        let choice = try #require((completion["choices"] as? [[String: Any]])?.first)
        #expect(choice["finish_reason"] as? String == "length")
        let text = try #require((choice["message"] as? [String: Any])?["content"] as? String)

        let streamed = try await call(stack, "POST", "/v1/chat/completions", json: [
            "model": "llava-tiny", "max_tokens": 5, "stream": true, "stream_options": ["include_usage": true],
            "messages": [question("What is shown in this image?")]])
        #expect(streamed.status == 200 && streamed.contentType.hasPrefix("text/event-stream"))
        let events = String(decoding: streamed.body, as: UTF8.self).components(separatedBy: "\n\n").filter { !$0.isEmpty }
        #expect(events.allSatisfy { $0.hasPrefix("data: ") })
        #expect(events.last == "data: [DONE]")
        let chunks = try events.dropLast().map { try object(Data($0.dropFirst(6).utf8)) }
        let deltas = chunks.compactMap { (($0["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any])?["content"] as? String }
        #expect(deltas.joined() == text, "the stream carries the same text as the answer")
        #expect(chunks.count >= 4, "a role chunk, token chunks, the finish and the usage")
        let lastUsage = try #require(chunks.last?["usage"] as? [String: Any])
        #expect(lastUsage["completion_tokens"] as? Int == 5)
        // The same conversation again: its prompt comes from the KV cache.
        #expect(((lastUsage["prompt_tokens_details"] as? [String: Any])?["cached_tokens"] as? Int ?? 0) >= 45)

        _ = try await call(stack, "POST", "/v1/chat/completions", json: ["model": "nope", "messages": [question("hi")]])
        let metrics = String(decoding: try await call(stack, "GET", "/metrics").body, as: UTF8.self)
        for line in [#"chorus_http_requests_total{method="POST",route="/v1/chat/completions",status="200"} 2"#,
                     #"chorus_http_requests_total{method="POST",route="/v1/chat/completions",status="404"} 1"#,
                     #"chorus_gateway_calls_total{method="/chorus.vision.v1.Vision/Chat",code="OK"} 2"#,
                     #"chorus_gateway_calls_total{method="/chorus.vision.v1.Vision/Chat",code="NOT_FOUND"} 1"#,
                     #"chorus_http_request_seconds_count{method="POST",route="/v1/chat/completions"} 3"#,
                     #"chorus_replica_healthy{service="vision",address=""#] {
            #expect(metrics.contains(line), "\(line) in:\n\(metrics)")
        }
    }

    @Test func embeddingsForTextsAndImagesAsFloatsOrBase64() async throws {
        let stack = try await Self.start()
        defer { stack.stop() }
        let floats = try object(try await call(stack, "POST", "/v1/embeddings", json: [
            "model": "clip-tiny", "input": ["a photo of a cat", "data:image/png;base64," + VisionProcessTests.png.base64EncodedString()]]).body)
        let data = try #require(floats["data"] as? [[String: Any]])
        #expect(data.count == 2 && data.map { $0["index"] as? Int } == [0, 1])
        let text = try #require(data[0]["embedding"] as? [Double])
        let image = try #require(data[1]["embedding"] as? [Double])
        // transformers' numbers for the fixture (VisionProcessTests).
        for (a, b) in zip(text, VisionProcessTests.textEmbedsStart) { #expect(abs(Float(a) - b) < 2e-4) }
        for (a, b) in zip(image, VisionProcessTests.imageEmbedsStart) { #expect(abs(Float(a) - b) < 5e-3) }

        let encoded = try object(try await call(stack, "POST", "/v1/embeddings", json: [
            "model": "clip-tiny", "input": "a photo of a cat", "encoding_format": "base64"]).body)
        let base64 = try #require((encoded["data"] as? [[String: Any]])?.first?["embedding"] as? String)
        let bytes = try #require(Data(base64Encoded: base64))
        let decoded = bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        #expect(decoded == text.map(Float.init))
    }

    @Test func badRequestsGetOpenAIErrorsAndTheGatewayStaysUp() async throws {
        let stack = try await Self.start(gatewayFlags: ["--http-max-body-mib", "1"])
        defer { stack.stop() }
        func expectError(_ status: Int, _ type: String, containing text: String, _ response: (status: Int, body: Data, contentType: String),
                         sourceLocation: SourceLocation = #_sourceLocation) throws {
            #expect(response.status == status, "\(String(decoding: response.body, as: UTF8.self))", sourceLocation: sourceLocation)
            let error = try #require(try object(response.body)["error"] as? [String: Any], sourceLocation: sourceLocation)
            #expect(error["type"] as? String == type, sourceLocation: sourceLocation)
            #expect((error["message"] as? String)?.contains(text) == true, "\(error)", sourceLocation: sourceLocation)
        }
        try expectError(400, "invalid_request_error", containing: "not a JSON object",
                        try await call(stack, "POST", "/v1/chat/completions", body: Data("{\"model\": ".utf8)))
        try expectError(404, "invalid_request_error", containing: "no chat model named 'gpt-4o'",
                        try await call(stack, "POST", "/v1/chat/completions", json: ["model": "gpt-4o", "messages": [question("hi")]]))
        try expectError(400, "invalid_request_error", containing: "image",
                        try await call(stack, "POST", "/v1/chat/completions", json: ["model": "llava-tiny", "messages": [
                            ["role": "user", "content": [["type": "image_url", "image_url": ["url": "data:image/png;base64," + Data("not a picture".utf8).base64EncodedString()]]]]]]))
        try expectError(400, "invalid_request_error", containing: "does not fetch remote URLs",
                        try await call(stack, "POST", "/v1/chat/completions", json: ["model": "llava-tiny", "messages": [
                            ["role": "user", "content": [["type": "image_url", "image_url": ["url": "https://example.com/cat.png"]]]]]]))
        try expectError(400, "invalid_request_error", containing: "'messages'",
                        try await call(stack, "POST", "/v1/chat/completions", json: ["model": "llava-tiny"]))
        try expectError(413, "invalid_request_error", containing: "larger than the limit",
                        try await call(stack, "POST", "/v1/embeddings", body: Data(repeating: 32, count: 2 << 20)))
        try expectError(503, "service_unavailable", containing: "speech",
                        try await call(stack, "POST", "/v1/audio/speech", json: ["model": "tts-1", "input": "hi", "voice": "alloy"]))
        #expect(try await call(stack, "GET", "/healthz").status == 200)
    }

    @Test func anAPIKeyIsRequiredWhenSet() async throws {
        let stack = try await Self.start(gatewayFlags: ["--api-key", "sk-chorus-test"])
        defer { stack.stop() }
        // The probes stay open for an orchestrator (a readiness probe sends no key); /metrics does not.
        #expect(try await call(stack, "GET", "/healthz").status == 200)
        #expect(try await call(stack, "GET", "/readyz").status != 401)
        #expect(try await call(stack, "GET", "/metrics").status == 401)
        #expect(try await call(stack, "GET", "/v1/models").status == 401)
        #expect(try await call(stack, "GET", "/v1/models", headers: ["Authorization": "Bearer sk-chorus-tesT"]).status == 401)
        #expect(try await call(stack, "GET", "/v1/models", headers: ["Authorization": "Bearer sk-chorus-test"]).status == 200)
        let chat: [String: Any] = ["model": "llava-tiny", "max_tokens": 2, "messages": [question("hi")]]
        #expect(try await call(stack, "POST", "/v1/chat/completions", json: chat, headers: ["Authorization": "Bearer sk-chorus-test"]).status == 200)

        // Native calls through the gateway need the key too (as metadata); its Health does not.
        let native = stack.gatewayAddress
        let (refused, message) = try await ChorusProcess.run(["call", "vision.ListModels", "--target", native])
        #expect(refused != 0 && message.contains("UNAUTHENTICATED"), "\(message)")
        let (allowed, models) = try await ChorusProcess.run(["call", "vision.ListModels", "--target", native,
                                                             "--metadata", "authorization=Bearer sk-chorus-test"])
        #expect(allowed == 0 && models.contains("llava-tiny"), "\(models)")
        let (health, _) = try await ChorusProcess.run(["health", "--target", native])
        #expect(health == 0)
    }

    /// /v1/images/generations served by Stable Diffusion (the tiny diffusers fixture) behind the gateway.
    @Test func imageGenerationsRunStableDiffusion() async throws {
        let models = try StableDiffusionProcessTests.models()
        try FileManager.default.createSymbolicLink(atPath: models + "/edges", withDestinationPath: ControlNetProcessTests.fixtures + "/controlnet/a")
        let (diffusion, address) = try await ChorusProcess.serve(["diffusion", "--port", "0", "--models", models])
        defer { diffusion.signal(SIGKILL) }
        let (gateway, _) = try await ChorusProcess.serve(["gateway", "--port", "0", "--diffusion", address, "--http-port", "0"])
        defer { gateway.signal(SIGKILL) }
        let line = try await gateway.waitForLine(containing: "OpenAI-compatible HTTP on http://")
        let http = String(line[line.range(of: "http://")!.lowerBound...].split(separator: " ").first!)
        let stack = Stack(vision: diffusion, gateway: gateway, gatewayAddress: "", http: http)
        let request: [String: Any] = ["model": "sd-tiny", "prompt": "a photo of a cat", "size": "32x32", "n": 2, "seed": 4, "steps": 2,
                                      "response_format": "b64_json"]
        let answer = try await call(stack, "POST", "/v1/images/generations", json: request)
        #expect(answer.status == 200, "\(String(decoding: answer.body, as: UTF8.self))")
        let data = try #require(try object(answer.body)["data"] as? [[String: Any]])
        let pngs = data.compactMap { ($0["b64_json"] as? String).flatMap { Data(base64Encoded: $0) } }
        #expect(pngs.count == 2 && pngs[0] != pngs[1])
        for png in pngs {
            let b = [UInt8](png)
            #expect(b.count > 26 && b[0...3] == [0x89, 0x50, 0x4E, 0x47] && b[19] == 32 && b[23] == 32 && b[25] == 2, "a 32×32 RGB PNG")
        }
        let again = try await call(stack, "POST", "/v1/images/generations", json: request)
        let repeated = (try object(again.body)["data"] as? [[String: Any]])?.compactMap { $0["b64_json"] as? String }
        #expect(repeated == data.compactMap { $0["b64_json"] as? String }, "same seed, same images")
        var bad = request
        bad["size"] = "33x32"
        let refused = try await call(stack, "POST", "/v1/images/generations", json: bad)
        #expect(refused.status == 400 && String(decoding: refused.body, as: UTF8.self).contains("multiples of 8"))

        // Prompt syntax: A1111 weights change the images and count the tokens; plain says what it cut.
        var weighted = request
        weighted["prompt"] = "a (photo:1.5) of a [cat]"
        let emphasised = try await call(stack, "POST", "/v1/images/generations", json: weighted)
        let emphasisedBody = try object(emphasised.body)
        #expect(emphasised.status == 200 && (emphasisedBody["prompt_tokens"] as? Int ?? 0) > 0)
        #expect((emphasisedBody["data"] as? [[String: Any]])?.first?["b64_json"] as? String != data.first?["b64_json"] as? String)
        var plain = request
        plain["prompt"] = String(repeating: "a photo of a cat, ", count: 20)
        plain["prompt_syntax"] = "plain"
        let cut = try object(try await call(stack, "POST", "/v1/images/generations", json: plain).body)
        #expect((cut["truncated_tokens"] as? Int ?? 0) > 0, "\(cut.keys)")
        // compel's syntax: weights change the images; a compel syntax error is a 400 naming it.
        var compel = request
        compel["prompt"] = "a photo++ of a cat--"
        compel["prompt_syntax"] = "compel"
        let compelled = try await call(stack, "POST", "/v1/images/generations", json: compel)
        let compelledBody = try object(compelled.body)
        #expect(compelled.status == 200 && (compelledBody["prompt_tokens"] as? Int ?? 0) > 0, "\(String(decoding: compelled.body, as: UTF8.self))")
        #expect((compelledBody["data"] as? [[String: Any]])?.first?["b64_json"] as? String != data.first?["b64_json"] as? String)
        compel["prompt"] = "(\"a cat\", \"a dog\").blend(1)"
        let mismatched = try await call(stack, "POST", "/v1/images/generations", json: compel)
        #expect(mismatched.status == 400 && String(decoding: mismatched.body, as: UTF8.self).contains(".blend() has 2 prompts and 1 weights"))
        // ControlNet: canny edges of a scene steer the run; the edges come back; a bad image is a 400, an
        // unknown ControlNet a 404.
        let scene = try Data(contentsOf: URL(fileURLWithPath: ControlNetProcessTests.media + "/canny/scene-0.png")).base64EncodedString()
        var controlled = request
        controlled["controlnet"] = ["model": "edges", "image": scene, "preprocessor": "canny", "scale": 0.9]
        let steered = try await call(stack, "POST", "/v1/images/generations", json: controlled)
        let steeredBody = try object(steered.body)
        #expect(steered.status == 200, "\(String(decoding: steered.body, as: UTF8.self))")
        #expect((steeredBody["control_images"] as? [[String: Any]])?.count == 1)
        #expect((steeredBody["data"] as? [[String: Any]])?.first?["b64_json"] as? String != data.first?["b64_json"] as? String)
        controlled["controlnet"] = [["model": "edges", "image": "!!!"]]
        #expect(try await call(stack, "POST", "/v1/images/generations", json: controlled).status == 400)
        controlled["controlnet"] = [["model": "nope", "image": scene]]
        let missing = try await call(stack, "POST", "/v1/images/generations", json: controlled)
        #expect(missing.status == 404 && String(decoding: missing.body, as: UTF8.self).contains("no ControlNet named 'nope'"), "\(missing.status)")
        var unknown = request
        unknown["prompt_syntax"] = "sdxl"
        let unknownAnswer = try await call(stack, "POST", "/v1/images/generations", json: unknown)
        #expect(unknownAnswer.status == 400 && String(decoding: unknownAnswer.body, as: UTF8.self).contains("prompt_syntax"))
    }
}
