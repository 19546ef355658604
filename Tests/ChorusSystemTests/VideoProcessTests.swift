import ChorusAPI
import ChorusTestSupport
import ChorusWire
import Foundation
import Testing

/// VisionService's AskVideo and DescribeVideo as a real process over the wire, with the tiny LLaVA fixture and the
/// videos of scripts/fixtures/make_video_cases.py: transformers' greedy tokens for the same prompts
/// (make_video_llava_cases.py) in frames and captions mode, frames sampled from MP4 and WebM, the auto mode's
/// choice, cancellation, and bad videos answered with precise codes while the service stays up.
///
/// The fixture's config says 128 positions; these tests serve it with 1024 (config.json rewritten in a copy, the
/// weights the same: its rotary embedding has no length of its own), so that two frames, speech and a question fit.
@Suite(.serialized) struct VideoProcessTests {
    static let videos = VisionProcessTests.repository.appendingPathComponent("Tests/ChorusMediaTests/Fixtures/video")
    static let llava = ChatProcessTests.llavaFolder
    static let cases = try! JSONSerialization.jsonObject(with: Data(contentsOf: llava.appendingPathComponent("video_cases.json"))) as! [String: Any]

    static func video(_ name: String) -> Data { FileManager.default.contents(atPath: videos.appendingPathComponent(name).path)! }

    /// The LLaVA fixture in a models folder of its own, with a 1024-token context.
    static func models() throws -> String {
        let models = NSTemporaryDirectory() + "chorus-video-\(UUID().uuidString)"
        let folder = models + "/llava-tiny"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for name in try FileManager.default.contentsOfDirectory(atPath: llava.path) where name != "config.json" {
            try FileManager.default.createSymbolicLink(atPath: folder + "/" + name, withDestinationPath: llava.appendingPathComponent(name).path)
        }
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: llava.appendingPathComponent("config.json"))) as! [String: Any]
        var text = config["text_config"] as! [String: Any]
        text["max_position_embeddings"] = 1024
        config["text_config"] = text
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: folder + "/config.json"))
        return models
    }

    static func start(_ extra: [String] = []) async throws -> (ChorusProcess, VisionClient, String) {
        let (process, address) = try await ChorusProcess.serve(["vision", "--port", "0", "--models", try models()] + extra)
        return (process, VisionClient(try WireClient(address: address)), address)
    }

    /// The two PNG frames the reference read, as a caller-sampled video, with the speech and the question.
    static func request(mode: String, maxNewTokens: UInt32 = 6) -> AskVideoRequest {
        let frames = (cases["frames"] as! [[String: Any]]).map { EncodedImage(data: video($0["png"] as! String)) }
        let transcript = (cases["transcript"] as! [[String: Any]]).map {
            TimedText(start: $0["start"] as! Double, end: $0["end"] as! Double, text: $0["text"] as! String)
        }
        return AskVideoRequest(video: VideoInput(frames: frames, frameInterval: cases["interval"] as! Double), question: cases["question"] as! String,
                               sampling: VideoSampling(numFrames: 2), mode: mode, transcript: transcript,
                               generation: GenerationOptions(maxNewTokens: maxNewTokens), captionMaxTokens: 4)
    }

    static func events(_ vision: VisionClient, _ request: AskVideoRequest) async throws -> [VideoEvent] {
        var events: [VideoEvent] = []
        for try await event in vision.askVideo(request) { events.append(event) }
        return events
    }

    static func ids(_ reference: String) -> [Int32] {
        ((cases[reference] as! [String: Any])["generated_ids"] as! [Int]).map { Int32($0) }
    }

    @Test func framesModeAnswersWithTransformersTokens() async throws {
        let (process, vision, _) = try await Self.start()
        defer { (vision.channel as? WireClient)?.close(); process.signal(SIGKILL) }
        let events = try await Self.events(vision, Self.request(mode: "frames"))
        let first = try #require(events.first)
        #expect(first.mode == "frames")
        #expect(first.video?.frames.map(\.index) == [0, 1] && first.video?.frames.map(\.time) == [0, Self.cases["interval"] as! Double])
        let tokens = events.dropFirst().filter { $0.finishReason.isEmpty }.map(\.tokenId)
        #expect(tokens == Self.ids("frames_mode"))
        let frames = Self.cases["frames_mode"] as! [String: Any]
        #expect(events.last?.usage?.promptTokens == UInt32(frames["prompt_tokens"] as! Int))
        #expect(events.last?.finishReason == "length")
    }

    @Test func captionsModeCaptionsEachFrameThenAnswersOverTheTimeline() async throws {
        let (process, vision, _) = try await Self.start()
        defer { (vision.channel as? WireClient)?.close(); process.signal(SIGKILL) }
        let events = try await Self.events(vision, Self.request(mode: "captions"))
        #expect(events.first?.mode == "captions")
        let captions = events.compactMap(\.caption)
        let expected = (Self.cases["captions"] as! [[String: Any]]).map { $0["text"] as! String }
        #expect(captions.map(\.text) == expected)
        #expect(captions.map(\.time) == [0, Self.cases["interval"] as! Double])
        let answer = events.filter { $0.caption == nil && $0.video == nil && $0.finishReason.isEmpty }.map(\.tokenId)
        #expect(answer == Self.ids("captions_answer"))
        // Usage sums the captions and the answer.
        let prompts = (Self.cases["captions"] as! [[String: Any]]).map { $0["prompt_tokens"] as! Int }.reduce(0, +)
            + ((Self.cases["captions_answer"] as! [String: Any])["prompt_tokens"] as! Int)
        #expect(events.last?.usage?.promptTokens == UInt32(prompts) && events.last?.usage?.completionTokens == 2 * 4 + 6)

        // The same captions given back (as the video-qa recipe does) answer the same, with nothing captioned again.
        var again = Self.request(mode: "")
        again.video = nil
        again.captions = captions
        let replay = try await Self.events(vision, again)
        #expect(replay.first?.mode == "captions" && replay.compactMap(\.caption).isEmpty)
        #expect(replay.dropFirst().filter { $0.finishReason.isEmpty }.map(\.tokenId) == Self.ids("captions_answer"))
    }

    @Test func framesAreSampledFromContainersAndAutoChoosesByContext() async throws {
        let (process, vision, _) = try await Self.start()
        defer { (vision.channel as? WireClient)?.close(); process.signal(SIGKILL) }
        var request = AskVideoRequest(video: VideoInput(data: Self.video("scenes.mp4")), question: "What happens?",
                                      sampling: VideoSampling(numFrames: 3), generation: GenerationOptions(maxNewTokens: 4))
        let events = try await Self.events(vision, request)
        let summary = try #require(events.first?.video)
        #expect(summary.container.contains("mp4") && summary.width == 320 && summary.height == 240 && summary.frameRate == 24 && summary.hasAudio)
        #expect(summary.frames.map(\.index) == [0, 71, 143])
        // Three frames of 16 tokens and the question fit 1024 positions: auto reads the frames.
        #expect(events.first?.mode == "frames" && events.last?.usage?.completionTokens == 4)
        // With room asked for 1000 new tokens they do not: auto captions them first.
        request.generation = GenerationOptions(maxNewTokens: 1000)
        request.captionMaxTokens = 2
        request.video = VideoInput(data: Self.video("scenes.webm"))
        var chosen = ""
        var captions = 0
        for try await event in vision.askVideo(request) {
            if !event.mode.isEmpty { chosen = event.mode }
            if event.caption != nil { captions += 1 }
            if event.tokenId != 0 { break }  // the answer has begun: enough
        }
        #expect(chosen == "captions" && captions == 3)

        let description = try await vision.describeVideo(DescribeVideoRequest(video: VideoInput(data: Self.video("scenes.webm")),
                                                                              sampling: VideoSampling(fps: 0.5), generation: GenerationOptions(maxNewTokens: 2)))
        #expect(description.video?.container.contains("webm") == true)
        #expect(description.captions.map(\.index) == [0, 71, 143] && description.captions.map(\.time) == [0, 2.958, 5.958])
        #expect(description.usage?.completionTokens == 6)
    }

    @Test func cancellingStopsTheAnswerAndTheServiceStaysUp() async throws {
        let (process, vision, _) = try await Self.start()
        defer { (vision.channel as? WireClient)?.close(); process.signal(SIGKILL) }
        var request = Self.request(mode: "frames", maxNewTokens: 900)
        for try await event in vision.askVideo(request) where event.tokenId != 0 { break }
        var idle = false
        for _ in 0..<100 where !idle {
            idle = try await vision.status(StatusRequest()).inFlight == 1  // the Status call itself
            if !idle { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(idle, "the answer stopped after CANCEL")
        #expect(try await Self.events(vision, Self.request(mode: "frames", maxNewTokens: 1)).last?.usage?.completionTokens == 1)
    }

    @Test func badVideosGetPreciseCodes() async throws {
        let (process, vision, _) = try await Self.start()
        defer { (vision.channel as? WireClient)?.close(); process.signal(SIGKILL) }
        func refusal(_ request: AskVideoRequest) async -> String {
            do {
                _ = try await Self.events(vision, request)
                return "accepted"
            } catch let status as WireStatus {
                return "\(status.code): \(status.message)"
            } catch {
                return "\(error)"
            }
        }
        func asking(_ data: Data, _ sampling: VideoSampling = VideoSampling(numFrames: 2)) -> AskVideoRequest {
            AskVideoRequest(video: VideoInput(data: data), question: "What?", sampling: sampling, generation: GenerationOptions(maxNewTokens: 1))
        }
        let png = FileManager.default.contents(atPath: Self.llava.appendingPathComponent("input_image.png").path)!
        let mp4 = Self.video("scenes.mp4")
        #expect(await refusal(asking(png)) == "INVALID_ARGUMENT: video: invalid video: the data is an image (png_pipe), not a video")
        #expect(await refusal(asking(Self.video("voice.m4a"))) == "INVALID_ARGUMENT: video: the file has no video stream")
        #expect(await refusal(asking(Data(MP4Headers.rewritingDuration([UInt8](mp4), hours: 10))))
                == "INVALID_ARGUMENT: video: the video is 36000.0 s long, the limit is 3600 s (--max-video-seconds)")
        #expect(await refusal(asking(mp4.prefix(1000))).hasPrefix("INVALID_ARGUMENT: video: invalid video: not a video container FFmpeg can read"))
        #expect(await refusal(asking(Data("YUV4MPEG2 W100000 H100000 F25:1 Ip A1:1 C420jpeg\nFRAME\n".utf8))).hasSuffix("(Picture size 100000x100000 is invalid)"))
        #expect(await refusal(asking(Data("YUV4MPEG2 W16 H16 F25:1 Ip A1:1 C420jpeg\n".utf8))).contains("has no frame that decodes at 0.000 s"))
        let webm = Self.video("scenes.webm")
        #expect(await refusal(asking(webm, VideoSampling(numFrames: 65))) == "INVALID_ARGUMENT: num_frames 65 is above the limit of 64 (--max-video-frames)")
        #expect(await refusal(asking(webm, VideoSampling(numFrames: 2, start: 4, end: 3))) == "INVALID_ARGUMENT: end 3.0 s is not after start 4.0 s")
        #expect(await refusal(asking(webm, VideoSampling(fps: .nan))) == "INVALID_ARGUMENT: fps nan is outside 0 ... 1000")
        #expect(await refusal(AskVideoRequest(question: "What?")) == "INVALID_ARGUMENT: the request has no video (video.data or video.frames) and no captions")
        #expect(await refusal(AskVideoRequest(video: VideoInput(data: webm), question: " ")) == "INVALID_ARGUMENT: the request has no question")
        #expect(await refusal(AskVideoRequest(video: VideoInput(data: webm), question: "What?", mode: "guess")) == "INVALID_ARGUMENT: mode 'guess' is not frames, captions or auto")
        // Still serving.
        let ok = try await Self.events(vision, asking(webm))
        #expect(ok.last?.usage?.completionTokens == 1)
        // FFmpeg's own complaints ("[mov,mp4,... @ 0x...] error reading header") went through the service's logger
        // (its errors at info level, prefixed "ffmpeg:"), not straight to stderr.
        let ffmpegLines = process.log.split(separator: "\n").filter { $0.contains(" @ 0x") }
        #expect(!ffmpegLines.isEmpty && ffmpegLines.allSatisfy { $0.contains(" info ") && $0.contains("ffmpeg: [") }, "\(process.log)")
    }
}
