import ChorusAPI
import ChorusLLM
import ChorusLLaVA
import ChorusMedia
import ChorusServiceKit
import ChorusWire
import Foundation

/// AskVideo and DescribeVideo: a video's sampled frames read by a LLaVA model, as images in one conversation
/// or captioned one by one, and questions answered over them and the speech a caller puts on the timeline.
extension VisionServer {
    /// The frames read from a request's video, and what the answer events report of it.
    struct SampledVideo: Sendable {
        var summary: VideoSummary
        var frames: [VideoFile.Frame]
    }

    public func askVideo(_ request: AskVideoRequest, context: CallContext, responses: ResponseWriter<VideoEvent>) async throws {
        guard !request.question.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw WireStatus(.invalidArgument, "the request has no question")
        }
        let asked = request.mode.isEmpty ? "auto" : request.mode.lowercased()
        guard ["auto", "frames", "captions"].contains(asked) else {
            throw WireStatus(.invalidArgument, "mode '\(request.mode)' is not frames, captions or auto")
        }
        try Self.checkTimeline(request.transcript, field: "transcript")
        let generation = try GenerationSettings(request.generation, limits: chatLimits)
        let hasVideo = !(request.video?.data.isEmpty ?? true) || !(request.video?.frames.isEmpty ?? true)
        var usage = Usage()
        let write: @Sendable (StreamedToken) async throws -> Void = { token in
            try await responses.write(VideoEvent(text: token.text, tokenId: Int32(token.id)))  // checked: vocabulary ids, as Chat's
        }

        // Captions made already (DescribeVideo's, in the video-qa recipe): only the answer is left.
        if !hasVideo {
            guard !request.captions.isEmpty else {
                throw WireStatus(.invalidArgument, "the request has no video (video.data or video.frames) and no captions")
            }
            guard asked != "frames" else { throw WireStatus(.invalidArgument, "mode frames needs the video itself, not captions") }
            try Self.checkTimeline(request.captions.map { TimedText(start: $0.time, end: $0.time, text: $0.text) }, field: "captions")
            let summary = VideoSummary(duration: request.captions.map(\.time).max() ?? 0, frames: request.captions.map { FrameCaption(index: $0.index, time: $0.time) })
            try await responses.write(VideoEvent(video: summary, mode: "captions"))
            let completion = try await answer(request, captions: request.captions, duration: summary.duration, onToken: write)
            try await responses.write(VideoEvent(text: completion.tail, finishReason: completion.finishReason.rawValue, usage: completion.usage))
            return
        }

        guard let llava = try chatEngine(request.model, needsImages: true).engine as? ServedLLaVA else {
            throw WireStatus(.invalidArgument, "'\(request.model)' does not read images; a video needs a LLaVA model")
        }
        let video = try await sample(request.video, request.sampling)
        let times = video.frames.map(\.time)
        let conversation = VideoPrompts.framesConversation(times: times, transcript: request.transcript, question: request.question)
        let mode: String
        switch asked {
        case "auto":
            // Frames when every frame and the answer fit the model's context; else the describe-then-answer path.
            let fits = llava.promptLength(conversation).map { $0 + generation.maxNewTokens <= llava.contextLength } ?? false
            mode = fits ? "frames" : "captions"
        default:
            mode = asked
        }
        try await responses.write(VideoEvent(video: video.summary, mode: mode))
        if mode == "frames" {
            try admit([], generating: true, for: "a video conversation")
            let completion = try await llava.chat(conversation, images: video.frames.map(\.image), maxImages: settings.video.maxFrames,
                                                  options: request.generation, onToken: write)
            try await responses.write(VideoEvent(text: completion.tail, finishReason: completion.finishReason.rawValue, usage: completion.usage))
            return
        }
        let maxTokens = request.captionMaxTokens == 0 ? VideoPrompts.captionMaxTokens : Int(request.captionMaxTokens)  // checked: UInt32 widened
        guard maxTokens <= chatLimits.maxNewTokens else {
            throw WireStatus(.invalidArgument, "caption_max_tokens \(maxTokens) is above the limit of \(chatLimits.maxNewTokens)")
        }
        var captions: [FrameCaption] = []
        for frame in video.frames {
            let (text, used) = try await caption(frame, llava: llava, prompt: request.captionPrompt,
                                                 options: GenerationOptions(maxNewTokens: UInt32(maxTokens), seed: request.generation?.seed ?? 0))  // checked: at most maxNewTokens (checked above)
            let made = FrameCaption(index: UInt32(clamping: frame.index), time: frame.time, text: text)
            captions.append(made)
            usage = usage.adding(used)
            try await responses.write(VideoEvent(caption: made))
        }
        let completion = try await answer(request, captions: captions, duration: video.summary.duration, onToken: write)
        try await responses.write(VideoEvent(text: completion.tail, finishReason: completion.finishReason.rawValue, usage: usage.adding(completion.usage)))
    }

    public func describeVideo(_ request: DescribeVideoRequest, context: CallContext) async throws -> VideoDescription {
        guard let llava = try chatEngine(request.model, needsImages: true).engine as? ServedLLaVA else {
            throw WireStatus(.invalidArgument, "'\(request.model)' does not read images; a video needs a LLaVA model")
        }
        _ = try GenerationSettings(request.generation, limits: chatLimits)
        let video = try await sample(request.video, request.sampling)
        var captions: [FrameCaption] = [], usage = Usage()
        let options = request.generation ?? GenerationOptions(maxNewTokens: UInt32(VideoPrompts.captionMaxTokens))  // checked: a constant
        for frame in video.frames {
            let (text, used) = try await caption(frame, llava: llava, prompt: request.prompt, options: options)
            captions.append(FrameCaption(index: UInt32(clamping: frame.index), time: frame.time, text: text))
            usage = usage.adding(used)
        }
        return VideoDescription(video: video.summary, captions: captions, usage: usage)
    }

    var chatLimits: ChatLimits {
        ChatLimits(maxImages: settings.maxChatImages, defaultMaxNewTokens: settings.defaultMaxNewTokens,
                   maxNewTokens: settings.maxNewTokens, maxStops: 16, image: settings.imageLimits)
    }

    private func caption(_ frame: VideoFile.Frame, llava: ServedLLaVA, prompt: String, options: GenerationOptions) async throws -> (String, Usage) {
        let text = prompt.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? VideoPrompts.captionPrompt : prompt
        let completion = try await llava.chat([ChatMessage(role: "user", parts: [.image, .text(text)])], images: [frame.image], maxImages: 1,
                                              options: options, onToken: { _ in })
        return (completion.text.trimmingCharacters(in: .whitespacesAndNewlines), completion.usage)
    }

    /// The answer over the timeline of captions and speech, by answer_model, else the service's language model,
    /// else the LLaVA model reading text alone.
    private func answer(_ request: AskVideoRequest, captions: [FrameCaption], duration: Double,
                        onToken: @escaping @Sendable (StreamedToken) async throws -> Void) async throws -> Completion {
        let name = !request.answerModel.isEmpty ? request.answerModel
            : (registry.models(ServedLanguageModel.self).keys.sorted().first ?? request.model)
        let engine = try chatEngine(name).engine
        let prompt = VideoPrompts.timeline(duration: duration, captions: captions, transcript: request.transcript, question: request.question)
        return try await engine.chat([ChatTurn(role: "user", parts: [ChatPart(text: prompt)])], options: request.generation, onToken: onToken)
    }

    /// Times and texts from a caller, checked before they become a prompt.
    static func checkTimeline(_ lines: [TimedText], field: String) throws {
        guard lines.count <= 4096 else { throw WireStatus(.invalidArgument, "\(lines.count) \(field) lines; the limit is 4096") }
        for (i, line) in lines.enumerated() {
            guard line.start.isFinite, line.end.isFinite, line.start >= 0, line.end >= 0, line.start <= 1e7, line.end <= 1e7 else {
                throw WireStatus(.invalidArgument, "\(field)[\(i)] has a time outside 0 ... 1e7 s (\(line.start) ... \(line.end))")
            }
            guard line.text.utf8.count <= 16384 else {
                throw WireStatus(.invalidArgument, "\(field)[\(i)] is \(line.text.utf8.count) bytes; the limit is 16384")
            }
        }
    }

    // MARK: - Frames

    /// The request's sampling, checked against the service's limits.
    func frameSampling(_ sampling: VideoSampling?) throws -> FrameSampling {
        let s = sampling ?? VideoSampling()
        let limit = settings.video.maxFrames
        guard s.maxFrames <= limit else { throw WireStatus(.invalidArgument, "max_frames \(s.maxFrames) is above the limit of \(limit) (--max-video-frames)") }
        guard s.numFrames <= limit else { throw WireStatus(.invalidArgument, "num_frames \(s.numFrames) is above the limit of \(limit) (--max-video-frames)") }
        guard s.fps.isFinite, s.fps >= 0, s.fps <= 1000 else { throw WireStatus(.invalidArgument, "fps \(s.fps) is outside 0 ... 1000") }
        for (name, value) in [("start", s.start), ("end", s.end)] where !(value.isFinite && value >= 0 && value <= 1e7) {
            throw WireStatus(.invalidArgument, "\(name) \(value) s is outside 0 ... 1e7")
        }
        guard s.end == 0 || s.end > s.start else { throw WireStatus(.invalidArgument, "end \(s.end) s is not after start \(s.start) s") }
        let spacing: FrameSampling.Spacing = s.numFrames > 0 ? .count(Int(s.numFrames)) : s.fps > 0 ? .perSecond(s.fps) : .count(8)  // checked: UInt32 widened
        return FrameSampling(spacing, maxFrames: s.maxFrames == 0 ? limit : Int(s.maxFrames), start: s.start, end: s.end == 0 ? nil : s.end)  // checked: UInt32 widened
    }

    /// Decodes the frames a request picks, on a compute thread under the concurrency limit: from a container
    /// through FFmpeg, or from frames the caller sampled.
    func sample(_ input: VideoInput?, _ sampling: VideoSampling?) async throws -> SampledVideo {
        guard let input, !input.data.isEmpty || !input.frames.isEmpty else { throw WireStatus(.invalidArgument, "the request has no video (video.data or video.frames)") }
        guard input.data.isEmpty || input.frames.isEmpty else { throw WireStatus(.invalidArgument, "give video.data or video.frames, not both") }
        let plan = try frameSampling(sampling)
        let limits = settings.video, side = settings.videoFrameSide, imageLimits = settings.imageLimits
        guard input.data.count <= limits.maxBytes else {
            throw WireStatus(.invalidArgument, "video: the video is \(input.data.count) bytes, the limit is \(limits.maxBytes) bytes (--max-video-bytes)")
        }
        // The bytes, and the frames at the largest size they are scaled to.
        let (framePixels, overflow) = plan.maxFrames.multipliedReportingOverflow(by: side * side * 3)
        try runtime.admit(needing: overflow ? .max : input.data.count + framePixels, for: "sampling a video's frames")
        if input.data.isEmpty {
            guard input.frames.count <= settings.maxImagesPerRequest else {
                throw WireStatus(.invalidArgument, "\(input.frames.count) video frames; the limit is \(settings.maxImagesPerRequest)")
            }
            let interval = input.frameInterval == 0 ? 1 : input.frameInterval
            guard interval.isFinite, interval >= 0.001, interval <= 3600 else {
                throw WireStatus(.invalidArgument, "frame_interval \(input.frameInterval) s is outside 0.001 ... 3600")
            }
            return try await compute(runtime) { _ in try Self.pickFrames(input.frames, interval: interval, plan: plan, limits: imageLimits) }
        }
        let data = input.data
        return try await compute(runtime) { flag in
            let file = try VideoFile(data, limits: limits)
            let frames = try file.frames(plan, maxSide: side, isCancelled: { flag.isCancelled })
            return SampledVideo(summary: Self.summary(file.info, frames), frames: frames)
        }
    }

    private func compute<T: Sendable>(_ runtime: ServiceRuntime, _ body: @escaping @Sendable (CancellationFlag) throws -> T) async throws -> T {
        do {
            return try await runtime.limiter.run { try await self.compute.run(body) }
        } catch let error as MediaError {
            if error == .cancelled { throw WireStatus(.cancelled, "cancelled") }
            let hint: String
            switch error {
            case .videoLimit(let detail) where detail.contains("s long"): hint = " (--max-video-seconds)"
            case .videoLimit(let detail) where detail.contains("frames are"): hint = " (the frame size limit)"
            default: hint = ""
            }
            throw WireStatus(.invalidArgument, "video: \(error)\(hint)")
        }
    }

    /// Frames a caller sampled: picked as a stream at one frame per `interval` seconds.
    static func pickFrames(_ encoded: [EncodedImage], interval: Double, plan: FrameSampling, limits: ImageLimits) throws -> SampledVideo {
        let images = try encoded.enumerated().map { i, frame in
            do { return try ImageCodec.decode([UInt8](frame.data), limits: limits) } catch let error as MediaError {
                throw WireStatus(.invalidArgument, "video.frames[\(i)]: \(error)")
            }
        }
        let info = VideoInfo(container: "frames", duration: Double(images.count) * interval,
                             video: .init(codec: "images", width: images[0].width, height: images[0].height, frameRate: 1 / interval,
                                          frameCount: images.count, start: 0, duration: Double(images.count) * interval))
        let frames = try plan.picks(info).map { VideoFile.Frame(index: $0.index, time: Double($0.index) * interval, image: images[$0.index]) }
        return SampledVideo(summary: summary(info, frames), frames: frames)
    }

    static func summary(_ info: VideoInfo, _ frames: [VideoFile.Frame]) -> VideoSummary {
        VideoSummary(container: info.container, duration: info.duration, width: UInt32(clamping: info.video?.width ?? 0),
                     height: UInt32(clamping: info.video?.height ?? 0), frameRate: info.video?.frameRate ?? 0, hasAudio: info.audio != nil,
                     frames: frames.map { FrameCaption(index: UInt32(clamping: $0.index), time: $0.time) })
    }
}

extension Usage {
    func adding(_ other: Usage) -> Usage {
        Usage(promptTokens: promptTokens &+ other.promptTokens, completionTokens: completionTokens &+ other.completionTokens,
              cachedPromptTokens: cachedPromptTokens &+ other.cachedPromptTokens)
    }
}
