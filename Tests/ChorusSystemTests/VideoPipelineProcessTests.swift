import ChorusAPI
import ChorusTestSupport
import ChorusWire
import Foundation
import Testing

/// The video recipes over real processes: VisionService with the tiny LLaVA (1024-token context, as in
/// VideoProcessTests) and SpeechService with the real tiny.en (scripts/fetch-models) behind a gateway. The frames
/// are captioned while the audio track is transcribed, and the answer reads both on one timeline.
@Suite(.serialized) struct VideoPipelineProcessTests {
    struct Stack {
        let processes: [ChorusProcess]
        let gateway: GatewayClient
        let vision: VisionClient
        let speech: SpeechClient

        func stop() {
            for channel in [gateway.channel, vision.channel, speech.channel] { (channel as? WireClient)?.close() }
            for process in processes { process.signal(SIGKILL) }
        }
    }

    static func start() async throws -> Stack {
        let speechModels = NSTemporaryDirectory() + "chorus-video-speech-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: speechModels, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: speechModels + "/whisper-tiny.en", withDestinationPath: try RealModels.path("whisper-tiny.en"))
        let (vision, visionAddress) = try await ChorusProcess.serve(["vision", "--port", "0", "--models", try VideoProcessTests.models()])
        let (speech, speechAddress) = try await ChorusProcess.serve(["speech", "--port", "0", "--models", speechModels, "--beam-size", "1"])
        let (gateway, address) = try await ChorusProcess.serve(["gateway", "--port", "0", "--http-port=-1",
                                                                "--vision", visionAddress, "--speech", speechAddress])
        return Stack(processes: [gateway, vision, speech], gateway: GatewayClient(try WireClient(address: address)),
                     vision: VisionClient(try WireClient(address: visionAddress)), speech: SpeechClient(try WireClient(address: speechAddress)))
    }

    static func run(_ stack: Stack, _ request: ComposeRequest) async throws -> [String: ComposeEvent] {
        var events: [String: ComposeEvent] = [:]
        for try await event in stack.gateway.compose(request) where !event.stepId.isEmpty { events[event.stepId] = event }
        return events
    }

    static func output(_ event: ComposeEvent?) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(try #require(event).outputJson.utf8)) as! [String: Any]
    }

    @Test func videoQACaptionsWhileItTranscribesThenAnswersOverBoth() async throws {
        let stack = try await Self.start()
        defer { stack.stop() }
        let inputs = [KeyValue(key: "question", value: "What colour is the square?"), KeyValue(key: "num_frames", value: "3"),
                      KeyValue(key: "caption_tokens", value: "3"), KeyValue(key: "max_tokens", value: "5")]
        let events = try await Self.run(stack, ComposeRequest(recipe: "video-qa", inputs: inputs, videos: [VideoProcessTests.video("scenes.mp4")]))
        #expect(Set(events.keys) == ["frames", "transcript", "answer"])
        let frames = try #require(events["frames"]), transcript = try #require(events["transcript"]), answer = try #require(events["answer"])
        // Side by side: each started before the other finished; the answer after both.
        #expect(frames.startedMs < transcript.finishedMs && transcript.startedMs < frames.finishedMs, "\(frames) \(transcript)")
        #expect(answer.startedMs >= max(frames.finishedMs, transcript.finishedMs))

        let captions = try Self.output(frames)["captions"] as! [[String: Any]]
        let times = captions.map { $0["time"] as? Double ?? 0 }
        #expect(times.count == 3 && zip(times, [0, 71.0 / 24, 143.0 / 24]).allSatisfy { abs($0 - $1) < 1e-6 }, "\(times)")
        let result = try Self.output(transcript)["result"] as! [String: Any]
        let said = result["text"] as! String
        #expect(said.contains("square"), "\(said)")
        let spoken = (result["segments"] as! [[String: Any]]).map {
            TimedText(start: $0["start"] as? Double ?? 0, end: $0["end"] as? Double ?? 0, text: $0["text"] as? String ?? "")
        }

        // The answer is AskVideo's over those captions and that speech: the same tokens and usage asked directly,
        // and more prompt than over the captions alone.
        let answered = try Self.output(answer)
        let given = captions.map { FrameCaption(index: UInt32($0["index"] as? Int ?? 0), time: $0["time"] as? Double ?? 0, text: $0["text"] as? String ?? "") }
        let direct = AskVideoRequest(question: "What colour is the square?", mode: "captions", transcript: spoken, captions: given,
                                     generation: GenerationOptions(maxNewTokens: 5))
        var withSpeech: [VideoEvent] = []
        for try await event in stack.vision.askVideo(direct) { withSpeech.append(event) }
        #expect(answered["text"] as? String == withSpeech.map(\.text).joined())
        let usage = answered["usage"] as? [String: Any]
        #expect(usage?["prompt_tokens"] as? Int == Int(withSpeech.last?.usage?.promptTokens ?? 0))
        var silent = direct
        silent.transcript = []
        var withoutSpeech: [VideoEvent] = []
        for try await event in stack.vision.askVideo(silent) { withoutSpeech.append(event) }
        #expect((withoutSpeech.last?.usage?.promptTokens ?? 0) < (withSpeech.last?.usage?.promptTokens ?? 0))
    }

    @Test func describeVideoReturnsASummaryAndTheSpeechAsSRTAndASilentVideoSkipsSpeech() async throws {
        let stack = try await Self.start()
        defer { stack.stop() }
        let inputs = [KeyValue(key: "num_frames", value: "2"), KeyValue(key: "caption_tokens", value: "2"), KeyValue(key: "max_tokens", value: "4")]
        let events = try await Self.run(stack, ComposeRequest(recipe: "describe-video", inputs: inputs, videos: [VideoProcessTests.video("scenes.webm")]))
        let srt = ((try Self.output(events["transcript"]))["result"] as? [String: Any])?["formatted"] as? String ?? ""
        #expect(srt.hasPrefix("1\n00:00:0") && srt.contains(" --> ") && srt.contains("square"), "\(srt)")
        #expect((try Self.output(events["answer"]))["text"] != nil)

        let silent = try await Self.run(stack, ComposeRequest(recipe: "describe-video", inputs: inputs, videos: [VideoProcessTests.video("silent.mp4")]))
        #expect(Set(silent.keys) == ["frames", "answer"])
    }

    @Test func cancellingTheRecipeStopsBothBranches() async throws {
        let stack = try await Self.start()
        defer { stack.stop() }
        // Long enough to be caught running: 16 frames of 48-token captions, and the speech.
        let request = ComposeRequest(recipe: "video-qa", inputs: [KeyValue(key: "question", value: "What happens?"), KeyValue(key: "num_frames", value: "16")],
                                     videos: [VideoProcessTests.video("scenes.mp4")])
        let call = Task { for try await _ in stack.gateway.compose(request) {} }
        // Both services busy (their Status call counts itself).
        func inFlight() async -> (vision: UInt32, speech: UInt32) {
            let vision = (try? await stack.vision.status(StatusRequest()).inFlight) ?? 0
            let speech = (try? await stack.speech.status(StatusRequest()).inFlight) ?? 0
            return (vision, speech)
        }
        let busy = await eventually(timeout: .seconds(20)) {
            let now = await inFlight()
            return now.vision >= 2 && now.speech >= 2
        }
        #expect(busy, "both branches running")
        call.cancel()
        let idle = await eventually(timeout: .seconds(20)) {
            let now = await inFlight()
            return now.vision == 1 && now.speech == 1
        }
        #expect(idle, "both branches stopped after the caller went away")
    }

    @Test func recipeInputsAreChecked() async throws {
        let stack = try await Self.start()
        defer { stack.stop() }
        await #expect(throws: WireStatus(.invalidArgument, "video-qa needs a video")) {
            _ = try await Self.run(stack, ComposeRequest(recipe: "video-qa", inputs: [KeyValue(key: "question", value: "?")]))
        }
        await #expect(throws: WireStatus(.invalidArgument, "video-qa needs the input 'question'")) {
            _ = try await Self.run(stack, ComposeRequest(recipe: "video-qa", videos: [VideoProcessTests.video("scenes.mp4")]))
        }
    }
}
