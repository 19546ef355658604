import ChorusAPI
import ChorusTestSupport
import ChorusWire
import Foundation
import Testing

/// Compose over real processes: VisionService (tiny CLIP and LLaVA) and SpeechService (no models;
/// its Echo is enough) behind a gateway.
@Suite(.serialized) struct PipelineProcessTests {
    struct Stack {
        let processes: [ChorusProcess]
        let gateway: GatewayClient
        let vision: VisionClient

        func stop() {
            (gateway.channel as? WireClient)?.close()
            (vision.channel as? WireClient)?.close()
            for process in processes { process.signal(SIGKILL) }
        }
    }

    static func start() async throws -> Stack {
        let models = NSTemporaryDirectory() + "chorus-compose-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: models, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: models + "/clip-tiny", withDestinationPath: VisionProcessTests.clipFolder.path)
        let (vision, visionAddress) = try await ChorusProcess.serve(["vision", "--port", "0", "--models", models])
        let (speech, speechAddress) = try await ChorusProcess.serve(["speech", "--port", "0"])
        let (gateway, address) = try await ChorusProcess.serve(["gateway", "--port", "0", "--http-port=-1",
                                                                "--vision", visionAddress, "--speech", speechAddress])
        return Stack(processes: [gateway, vision, speech], gateway: GatewayClient(try WireClient(address: address)),
                     vision: VisionClient(try WireClient(address: visionAddress)))
    }

    func step(_ id: String, _ method: String, _ inputs: [String: String]) -> PipelineStep {
        PipelineStep(id: id, method: method, inputs: inputs.sorted { $0.key < $1.key }.map { StepInput(field: $0.key, value: $0.value) })
    }

    func run(_ stack: Stack, _ request: ComposeRequest, options: CallOptions = .init()) async throws -> [ComposeEvent] {
        var events: [ComposeEvent] = []
        for try await event in stack.gateway.compose(request, options: options) { events.append(event) }
        return events
    }

    @Test func independentStepsRunConcurrentlyAndDependentOnesAfter() async throws {
        let stack = try await Self.start()
        defer { stack.stop() }
        let started = Date()
        let events = try await run(stack, ComposeRequest(steps: [
            step("slow-vision", "vision.Echo", ["delay_ms": "1000", "payload": "\"aGk=\""]),
            step("slow-speech", "speech.Echo", ["delay_ms": "1000"]),
            step("after", "/chorus.speech.v1.Speech/Echo", ["payload": "$slow-vision.payload"]),
        ]))
        let elapsed = Date().timeIntervalSince(started)
        // Two one-second steps side by side take one second, not two; the dependent one waits.
        #expect(elapsed >= 1.0 && elapsed < 1.8, "\(elapsed) s")
        // "after" waits for slow-vision only, so it may finish before or after slow-speech; it never
        // finishes before the step it reads.
        let order = events.map(\.stepId).filter { !$0.isEmpty }
        #expect(Set(order) == ["slow-vision", "slow-speech", "after"] && order.count == 3, "\(order)")
        #expect((order.firstIndex(of: "slow-vision") ?? .max) < (order.firstIndex(of: "after") ?? -1), "\(order)")
        #expect(events.last?.done == true)
        let after = try #require(events.first { $0.stepId == "after" })
        let output = try #require(try JSONSerialization.jsonObject(with: Data(after.outputJson.utf8)) as? [String: Any])
        #expect(output["payload"] as? String == "aGk=", "the reference carried the first step's bytes")
    }

    @Test func aFailingStepFailsThePipelineWithItsStatus() async throws {
        let stack = try await Self.start()
        defer { stack.stop() }
        let png = VisionProcessTests.png
        var events: [ComposeEvent] = []
        do {
            for try await event in stack.gateway.compose(ComposeRequest(
                recipe: "zero-shot", inputs: [KeyValue(key: "labels", value: "[]")], images: [EncodedImage(data: png)])) {
                events.append(event)
            }
            Issue.record("expected INVALID_ARGUMENT")
        } catch let status as WireStatus {
            #expect(status.code == .invalidArgument && status.message.contains("step 'classify'"), "\(status)")
        }
        #expect(events.first?.stepId == "classify" && events.first?.statusCode == StatusCode.invalidArgument.rawValue)

        // The same recipe with labels answers probabilities.
        let good = try await run(stack, ComposeRequest(recipe: "zero-shot", inputs: [KeyValue(key: "labels", value: #"["a photo of a cat", "a diagram"]"#)],
                                                       images: [EncodedImage(data: png)]))
        let output = try #require(try JSONSerialization.jsonObject(with: Data(good[0].outputJson.utf8)) as? [String: Any])
        #expect((output["labels"] as? [[String: Any]])?.count == 2)
    }

    @Test func theDeadlineCoversThePipelineAndCancellationReachesTheServices() async throws {
        let stack = try await Self.start()
        defer { stack.stop() }
        let started = Date()
        do {
            _ = try await run(stack, ComposeRequest(steps: [step("long", "vision.Echo", ["delay_ms": "20000"])]),
                              options: CallOptions(timeout: .milliseconds(400)))
            Issue.record("expected DEADLINE_EXCEEDED")
        } catch let status as WireStatus {
            #expect(status.code == .deadlineExceeded, "\(status)")
        }
        #expect(Date().timeIntervalSince(started) < 3)
        // VisionService stopped the echo: only the Status call itself is in flight.
        let idle = try await eventually(pollInterval: .milliseconds(50)) {
            try await stack.vision.status(StatusRequest()).inFlight == 1
        }
        #expect(idle)

        // A caller that leaves cancels what is running.
        let caller = Task { try await run(stack, ComposeRequest(steps: [step("long", "vision.Echo", ["delay_ms": "20000"])])) }
        // The step's echo is running on VisionService: it and the Status call asking are in flight.
        let running = try await eventually(pollInterval: .milliseconds(50)) {
            try await stack.vision.status(StatusRequest()).inFlight == 2
        }
        #expect(running, "the step reached VisionService")
        caller.cancel()
        let idleAgain = try await eventually(pollInterval: .milliseconds(50)) {
            try await stack.vision.status(StatusRequest()).inFlight == 1
        }
        #expect(idleAgain, "the step was cancelled when the caller left")
    }

    @Test func badPipelinesAreRefusedBeforeAnythingRuns() async throws {
        let stack = try await Self.start()
        defer { stack.stop() }
        let cases: [(ComposeRequest, String)] = [
            (ComposeRequest(recipe: "sing-a-song"), "unknown recipe"),
            (ComposeRequest(), "give a recipe or steps"),
            (ComposeRequest(steps: [step("a", "vision.Fly", [:])]), "unknown method"),
            (ComposeRequest(steps: [step("a", "vision.Echo", [:]), step("a", "speech.Echo", [:])]), "two steps are named 'a'"),
            (ComposeRequest(steps: [step("a", "vision.Echo", ["payload": "$b.payload"]), step("b", "speech.Echo", ["payload": "$a.payload"])]), "cycle"),
            (ComposeRequest(steps: [step("a", "vision.Echo", ["payload": "$nobody.payload"])]), "no step is named 'nobody'"),
            (ComposeRequest(steps: [step("a", "speech.TranscribeUpload", [:])]), "streams requests"),
            (ComposeRequest(steps: [step("a", "vision.Caption", ["image.data": "$image.3"])]), "the request has 0 images"),
            (ComposeRequest(steps: [step("a", "vision.Chat", ["messages.1.role": "\"user\""])]), "set the elements in order"),
        ]
        for (request, message) in cases {
            do {
                _ = try await run(stack, request)
                Issue.record("expected INVALID_ARGUMENT for \(message)")
            } catch let status as WireStatus {
                #expect(status.code == .invalidArgument && status.message.contains(message), "\(status)")
            }
        }
    }
}
