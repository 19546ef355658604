import ChorusAPI
import ChorusTestSupport
import ChorusWire
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

/// The vision service serving SmolLM2-135M-Instruct from its GGUF file (scripts/fetch-models) as a chat
/// model, over the wire and through the gateway's OpenAI API.
@Suite(.serialized) struct LanguageModelProcessTests {
    static let name = "smollm2-135m-instruct"

    /// A models folder with SmolLM2, and a folder holding a GGUF file that is not one.
    static func models() throws -> String {
        let folder = NSTemporaryDirectory() + "chorus-llm-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder + "/broken", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: folder + "/" + name,
                                                   withDestinationPath: (try RealModels.path("\(name)/SmolLM2-135M-Instruct.Q4_1.gguf") as NSString).deletingLastPathComponent)
        try Data("GGUF but not really".utf8).write(to: URL(fileURLWithPath: folder + "/broken/model.gguf"))
        return folder
    }

    static func question(_ text: String) -> ChatTurn { ChatTurn(role: "user", parts: [ChatPart(text: text)]) }

    /// A conversation SmolLM2 answers firmly ("The capital of Germany is Berlin.", 4.2 logits ahead at the
    /// first token, as llama.cpp). A one-turn "capital of France" is too close to call: llama.cpp itself
    /// starts "L'Étoile…" there.
    static let conversation = [question("What is the capital of France?"),
                               ChatTurn(role: "assistant", parts: [ChatPart(text: "The capital of France is Paris.")]),
                               question("And what is the capital of Germany?")]

    func events(_ vision: VisionClient, _ request: ChatRequest) async throws -> [ChatEvent] {
        var events: [ChatEvent] = []
        for try await event in vision.chat(request) { events.append(event) }
        return events
    }

    func status(_ call: () async throws -> Void) async -> (StatusCode?, String) {
        do {
            try await call()
            return (nil, "")
        } catch {
            let status = WireStatus.from(error)
            return (status.code, status.message)
        }
    }

    @Test func chatsOverTheWireReusesTheConversationAndRefusesWhatItCannotDo() async throws {
        let (process, address) = try await ChorusProcess.serve(["vision", "--port", "0", "--models", try Self.models()])
        defer { process.signal(SIGKILL) }
        // A broken GGUF is named in the log; the good one still loads.
        try await process.waitForLine(containing: "broken")
        let vision = VisionClient(try WireClient(address: address))
        defer { (vision.channel as? WireClient)?.close() }
        let models = try await vision.listModels(ListModelsRequest()).models
        #expect(models.contains { $0.name == Self.name && $0.format == "GGUF" }, "\(models)")

        let first = try await events(vision, ChatRequest(model: Self.name, messages: Self.conversation,
                                                        generation: GenerationOptions(maxNewTokens: 24)))
        let reply = first.map(\.text).joined()
        #expect(reply.contains("Berlin"), "\(reply)")
        let usage = try #require(first.last?.usage)
        #expect(first.dropLast().allSatisfy { $0.tokenId > 0 } && Int(usage.completionTokens) == first.count - 1, "\(usage)")

        // The next turn repeats the conversation: its prefix comes from the cache.
        let second = try await events(vision, ChatRequest(model: Self.name, messages: Self.conversation + [
            ChatTurn(role: "assistant", parts: [ChatPart(text: reply)]), Self.question("And of Italy?")], generation: GenerationOptions(maxNewTokens: 16)))
        let reused = try #require(second.last?.usage)
        #expect(reused.cachedPromptTokens > usage.promptTokens / 2 && reused.cachedPromptTokens < reused.promptTokens, "\(reused)")

        // A stop string ends the answer before it.
        let stopped = try await events(vision, ChatRequest(model: Self.name, messages: Self.conversation,
                                                          generation: GenerationOptions(maxNewTokens: 24, stop: ["Berlin"])))
        #expect(stopped.last?.finishReason == "stop" && !stopped.map(\.text).joined().contains("Berlin") && stopped.count > 2, "\(stopped.map(\.text))")

        // A prompt instead of messages is continued as it is (llama.cpp: " Paris." 2.5 logits ahead).
        let raw = try await events(vision, ChatRequest(model: Self.name, generation: GenerationOptions(maxNewTokens: 3), prompt: "The capital of France is"))
        #expect(raw.map(\.text).joined().hasPrefix(" Paris") && raw.last?.finishReason == "length", "\(raw.map(\.text))")
        let both = await status { _ = try await events(vision, ChatRequest(model: Self.name, messages: Self.conversation, prompt: "Hello")) }
        #expect(both.0 == .invalidArgument && both.1.contains("both messages and a prompt"), "\(both)")

        let image = await status { _ = try await events(vision, ChatRequest(model: Self.name, messages: [
            ChatTurn(role: "user", parts: [ChatPart(image: EncodedImage(data: Data([1, 2, 3]))), ChatPart(text: "What is this?")])])) }
        #expect(image.0 == .invalidArgument && image.1.contains("reads text only"), "\(image)")
        let caption = await status { _ = try await vision.caption(CaptionRequest(model: Self.name, image: EncodedImage(data: Data([1])))) }
        #expect(caption.0 == .invalidArgument && caption.1.contains("LLaVA"), "\(caption)")
        let long = String(repeating: "lorem ipsum ", count: 5000)
        let tooLong = await status { _ = try await events(vision, ChatRequest(model: Self.name, messages: [Self.question(long)])) }
        #expect(tooLong.0 == .invalidArgument && tooLong.1.contains("the model's context is 8192"), "\(tooLong)")
    }

    @Test func answersTheOpenAIChatAPIStreamingAndNot() async throws {
        let (vision, address) = try await ChorusProcess.serve(["vision", "--port", "0", "--models", try Self.models()])
        defer { vision.signal(SIGKILL) }
        let (gateway, _) = try await ChorusProcess.serve(["gateway", "--port", "0", "--vision", address, "--http-port", "0"])
        defer { gateway.signal(SIGKILL) }
        let line = try await gateway.waitForLine(containing: "OpenAI-compatible HTTP on http://")
        let http = String(line[line.range(of: "http://")!.lowerBound...].split(separator: " ").first!)
        func post(_ body: [String: Any]) async throws -> (Int, String) {
            var request = URLRequest(url: URL(string: http + "/v1/chat/completions")!)
            request.httpMethod = "POST"
            request.httpBody = try JSONSerialization.data(withJSONObject: body)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            let (data, response) = try await URLSession.shared.data(for: request)
            return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
        }
        let messages = [["role": "user", "content": "What is the capital of France?"], ["role": "assistant", "content": "The capital of France is Paris."],
                        ["role": "user", "content": "And what is the capital of Germany?"]]
        let (status, body) = try await post(["model": Self.name, "messages": messages, "max_tokens": 24])
        let json = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any], "\(body)")
        let content = ((json["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String
        #expect(status == 200 && content?.contains("Berlin") == true, "\(body)")
        let (streamStatus, stream) = try await post(["model": Self.name, "messages": messages, "max_tokens": 24, "stream": true])
        let pieces = stream.split(separator: "\n").filter { $0.hasPrefix("data: {") }.compactMap { line -> String? in
            let chunk = try? JSONSerialization.jsonObject(with: Data(line.dropFirst(6).utf8)) as? [String: Any]
            return ((chunk?["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any])?["content"] as? String
        }
        #expect(streamStatus == 200 && pieces.count > 3 && pieces.joined().contains("Berlin") && stream.contains("data: [DONE]"), "\(stream)")
    }
}
