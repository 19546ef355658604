import ChorusAPI
import ChorusWire
import Foundation
import Testing

/// VisionService's LLaVA methods as a real process with the tiny LLaVA fixture, over the wire:
/// streamed tokens with usage, transformers' greedy ids, a second turn served from the cached
/// prefix, the unary wrappers, cancellation and bad input.
@Suite(.serialized) struct ChatProcessTests {
    static let llavaFolder = VisionProcessTests.repository.appendingPathComponent("Tests/ChorusLLaVATests/Fixtures/llava")
    static let png = FileManager.default.contents(atPath: llavaFolder.appendingPathComponent("input_image.png").path)!
    /// transformers' greedy ids for "What is shown in this image?" (the fixture's manifest).
    static let greedyIDs: [Int32] = [69, 281, 168, 159, 168]

    static func start() async throws -> (ChorusProcess, VisionClient) {
        let (process, client, _) = try await startWithAddress()
        return (process, client)
    }

    static func startWithAddress() async throws -> (ChorusProcess, VisionClient, String) {
        let models = NSTemporaryDirectory() + "chorus-chat-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: models, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: models + "/llava-tiny", withDestinationPath: llavaFolder.path)
        let (process, address) = try await ChorusProcess.serve(["vision", "--port", "0", "--models", models])
        return (process, VisionClient(try WireClient(address: address)), address)
    }

    func question(_ text: String) -> ChatTurn {
        ChatTurn(role: "user", parts: [ChatPart(image: EncodedImage(data: Self.png)), ChatPart(text: text)])
    }

    func events(_ vision: VisionClient, _ request: ChatRequest) async throws -> [ChatEvent] {
        var events: [ChatEvent] = []
        for try await event in vision.chat(request) { events.append(event) }
        return events
    }

    @Test func chatStreamsTokensAndEndsWithUsageAndASecondTurnReusesTheCache() async throws {
        let (process, vision) = try await Self.start()
        defer { (vision.channel as? WireClient)?.close(); process.signal(SIGKILL) }

        let first = try await events(vision, ChatRequest(messages: [question("What is shown in this image?")],
                                                        generation: GenerationOptions(maxNewTokens: 5)))
        // One event per token, then the closing event (with any text no token completed).
        #expect(first.count == 6)
        #expect(first.dropLast().map(\.tokenId) == Self.greedyIDs)
        let last = try #require(first.last)
        #expect(last.finishReason == "length")
        #expect(last.usage == Usage(promptTokens: 46, completionTokens: 5, cachedPromptTokens: 0))
        let reply = first.map(\.text).joined()

        let second = try await events(vision, ChatRequest(messages: [
            question("What is shown in this image?"),
            ChatTurn(role: "assistant", parts: [ChatPart(text: reply)]),
            ChatTurn(role: "user", parts: [ChatPart(text: "And what colour is it?")]),
        ], generation: GenerationOptions(maxNewTokens: 4)))
        let usage = try #require(second.last?.usage)
        #expect(usage.cachedPromptTokens >= 46 && usage.cachedPromptTokens < usage.promptTokens, "\(usage)")
        #expect(usage.completionTokens == 4)
    }

    @Test func captionAndAskAnswerWithUsage() async throws {
        let (process, vision) = try await Self.start()
        defer { (vision.channel as? WireClient)?.close(); process.signal(SIGKILL) }
        let asked = try await vision.ask(AskRequest(image: EncodedImage(data: Self.png), question: "What is shown in this image?",
                                                    generation: GenerationOptions(maxNewTokens: 5)))
        #expect(asked.finishReason == "length" && asked.usage?.promptTokens == 46 && asked.usage?.completionTokens == 5)
        let caption = try await vision.caption(CaptionRequest(image: EncodedImage(data: Self.png), generation: GenerationOptions(maxNewTokens: 3)))
        #expect(caption.usage?.completionTokens == 3)
        // Seeded sampling is reproducible across calls.
        let sampled = GenerationOptions(maxNewTokens: 12, temperature: 1.2, topP: 0.9, seed: 42)
        let a = try await vision.ask(AskRequest(image: EncodedImage(data: Self.png), question: "Where?", generation: sampled))
        let b = try await vision.ask(AskRequest(image: EncodedImage(data: Self.png), question: "Where?", generation: sampled))
        #expect(a.text == b.text)
    }

    @Test func chorusCallChatsThroughTheGatewayWithAnImageInAList() async throws {
        let (process, vision, address) = try await Self.startWithAddress()
        defer { (vision.channel as? WireClient)?.close(); process.signal(SIGKILL) }
        let (gateway, gatewayAddress) = try await ChorusProcess.serve(["gateway", "--port", "0", "--vision", address])
        defer { gateway.signal(SIGKILL) }
        let request = #"{"messages": [{"role": "user", "parts": [{"image": {}}, {"text": "What is shown in this image?"}]}], "generation": {"max_new_tokens": 5}}"#
        let png = Self.llavaFolder.appendingPathComponent("input_image.png").path
        let (status, output) = try await ChorusProcess.run(["call", "vision.Chat", request, "--file", "messages.0.parts.0.image.data=\(png)",
                                                            "--field", "usage.completion_tokens", "--target", gatewayAddress], timeout: 60)
        #expect(status == 0, "\(output)")
        #expect(output.split(separator: "\n").last == "5", "\(output)")
    }

    @Test func cancellingAChatStopsItAndTheServiceStaysUp() async throws {
        let (process, vision) = try await Self.start()
        defer { (vision.channel as? WireClient)?.close(); process.signal(SIGKILL) }
        for try await event in vision.chat(ChatRequest(messages: [question("Tell me everything.")])) where event.tokenId != 0 { break }
        var idle = false
        for _ in 0..<100 where !idle {
            idle = try await vision.status(StatusRequest()).inFlight == 1
            if !idle { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(idle, "generation stopped after CANCEL")
        let after = try await events(vision, ChatRequest(messages: [question("What is shown in this image?")], generation: GenerationOptions(maxNewTokens: 2)))
        #expect(after.last?.usage?.completionTokens == 2)
    }

    @Test func badConversationsGetClearErrors() async throws {
        let (process, vision) = try await Self.start()
        defer { (vision.channel as? WireClient)?.close(); process.signal(SIGKILL) }
        func expectStatus(_ code: StatusCode, containing text: String, _ request: ChatRequest,
                          sourceLocation: SourceLocation = #_sourceLocation) async {
            do {
                _ = try await events(vision, request)
                Issue.record("expected \(code)", sourceLocation: sourceLocation)
            } catch let status as WireStatus {
                #expect(status.code == code && status.message.contains(text), "\(status)", sourceLocation: sourceLocation)
            } catch {
                Issue.record("\(error)", sourceLocation: sourceLocation)
            }
        }
        await expectStatus(.invalidArgument, containing: "no messages", ChatRequest())
        await expectStatus(.invalidArgument, containing: "role 'robot'", ChatRequest(messages: [ChatTurn(role: "robot", parts: [ChatPart(text: "hi")])]))
        await expectStatus(.invalidArgument, containing: "image", ChatRequest(messages: [
            ChatTurn(role: "user", parts: [ChatPart(image: EncodedImage(data: Data("not a picture".utf8))), ChatPart(text: "hi")])]))
        await expectStatus(.invalidArgument, containing: "context is 128", ChatRequest(messages: [
            question(String(repeating: "word ", count: 200))]))
        await expectStatus(.invalidArgument, containing: "limit is 8", ChatRequest(messages: [
            ChatTurn(role: "user", parts: Array(repeating: ChatPart(image: EncodedImage(data: Self.png)), count: 9))]))
        await expectStatus(.invalidArgument, containing: "max_new_tokens", ChatRequest(messages: [question("hi")],
                                                                                      generation: GenerationOptions(maxNewTokens: 100_000)))
        await expectStatus(.notFound, containing: "llava-tiny", ChatRequest(model: "gpt-9", messages: [question("hi")]))
        let fine = try await events(vision, ChatRequest(messages: [question("hi")], generation: GenerationOptions(maxNewTokens: 1)))
        #expect(fine.last?.usage?.completionTokens == 1)
    }
}
