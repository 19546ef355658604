import ChorusAPI
import ChorusMedia
import ChorusWire
import Foundation

/// A chat completion about a video: a `video_url` content part, as vLLM takes it — a data URL of a container
/// (`data:video/mp4;base64,...`, WebM, MKV, MOV) or of frames already sampled (`data:video/jpeg;base64,` and the
/// frames' base64 JPEGs joined by commas). Extra fields: `num_frames`, `fps`, `max_frames`, `start`, `end`,
/// `frame_interval` (seconds between given frames), `video_mode` (frames, captions, auto), `use_audio` (default
/// true: a container's audio track is transcribed by SpeechService and put on the timeline), `answer_model`,
/// `caption_max_tokens`. The answer streams as any chat completion's.
package struct VideoChat {
    var request: AskVideoRequest
    /// Whether the video's speech is transcribed first.
    var transcribes: Bool

    /// The body as a question about its video, or nil when no message holds a video part.
    package static func parse(_ body: [String: Any], generation: GenerationOptions) throws -> VideoChat? {
        guard let messages = body["messages"] as? [[String: Any]] else { return nil }
        func videoParts(_ message: [String: Any]) -> [[String: Any]] {
            ((message["content"] as? [[String: Any]]) ?? []).filter { $0["type"] as? String == "video_url" }
        }
        let holding = messages.indices.filter { !videoParts(messages[$0]).isEmpty }
        guard let index = holding.first else { return nil }
        guard holding.count == 1, videoParts(messages[index]).count == 1 else {
            throw OpenAIError.invalid("one video per request: \(holding.map { videoParts(messages[$0]).count }.reduce(0, +)) video_url parts were given", param: "messages")
        }
        guard index == messages.count - 1, messages[index]["role"] as? String == "user" else {
            throw OpenAIError.invalid("the video must be in the last message, a user's", param: "messages[\(index)]")
        }
        // A system prompt is kept as the question's preamble; a video conversation is otherwise one question.
        var question: [String] = []
        for (i, message) in messages.enumerated() {
            let role = message["role"] as? String ?? ""
            guard i == index || role == "system" || role == "developer" else {
                throw OpenAIError.invalid("a question about a video is one user message (a system message may come first); messages[\(i)] is '\(role)'", param: "messages[\(i)]")
            }
            switch message["content"] {
            case let text as String: question.append(text)
            case let parts as [[String: Any]]:
                for (j, part) in parts.enumerated() {
                    switch part["type"] as? String {
                    case "text": question.append(part["text"] as? String ?? "")
                    case "video_url": break
                    case let other:
                        throw OpenAIError.invalid("messages[\(i)].content[\(j)] has type '\(other ?? "none")'; beside a video, parts are text", param: "messages[\(i)]")
                    }
                }
            default:
                throw OpenAIError.invalid("messages[\(i)].content must be a string or a list of parts", param: "messages[\(i)]")
            }
        }
        let part = videoParts(messages[index])[0]
        let field = "messages[\(index)].video_url.url"
        guard let url = (part["video_url"] as? [String: Any])?["url"] as? String ?? part["video_url"] as? String else {
            throw OpenAIError.invalid("\(field) is required", param: field)
        }
        let fields = JSONFields(body)
        var video = VideoInput()
        if url.hasPrefix("data:video/jpeg;base64,") {
            // vLLM's form: the frames' base64 JPEGs, comma-separated.
            let frames = url.dropFirst("data:video/jpeg;base64,".count).split(separator: ",")
            video.frames = try frames.enumerated().map { i, text in
                guard let data = Data(base64Encoded: String(text), options: .ignoreUnknownCharacters), !data.isEmpty else {
                    throw OpenAIError.invalid("\(field): frame \(i) is not base64", param: field)
                }
                return EncodedImage(data: data)
            }
            video.frameInterval = try fields.number("frame_interval") ?? 0
        } else {
            video.data = Data(try dataURLBytes(url, field: field))
        }
        let sampling = VideoSampling(numFrames: try fields.integer("num_frames", in: UInt32(1)...UInt32(4096)) ?? 0,
                                     fps: try fields.number("fps") ?? 0, maxFrames: try fields.integer("max_frames", in: UInt32(1)...UInt32(4096)) ?? 0,
                                     start: try fields.number("start") ?? 0, end: try fields.number("end") ?? 0)
        let request = AskVideoRequest(model: try fields.requiredString("model"), video: video,
                                      question: question.filter { !$0.isEmpty }.joined(separator: "\n\n"), sampling: sampling,
                                      mode: try fields.string("video_mode") ?? "", answerModel: try fields.string("answer_model") ?? "",
                                      generation: generation, captionMaxTokens: try fields.integer("caption_max_tokens", in: UInt32(0)...UInt32(4096)) ?? 0)
        // Only a container has sound, and only when its headers say so (read here; nothing is decoded).
        let sound = !video.data.isEmpty && ((try? VideoFile(video.data, limits: Self.probeLimits).info.audio != nil) ?? false)
        return VideoChat(request: request, transcribes: (try fields.bool("use_audio") ?? true) && sound)
    }

    static let probeLimits = VideoLimits(maxBytes: .max, maxSeconds: .greatestFiniteMagnitude, maxFrameSide: 1 << 20)

    /// The speech of the video as timeline lines, from SpeechService.
    static func transcript(_ speech: SpeechClient, media: Data, options: CallOptions) async throws -> [TimedText] {
        var result: TranscribeResult?
        for try await event in speech.transcribe(TranscribeRequest(audio: Audio(media: media)), options: options) where event.result != nil {
            result = event.result
        }
        return (result?.segments ?? []).map { TimedText(start: $0.start, end: $0.end, text: $0.text) }
    }

    /// The answer's events as Chat's: the summary and caption events left out.
    static func chatEvents(_ events: ResponseStream<VideoEvent>) -> ResponseStream<ChatEvent> {
        let (stream, continuation) = AsyncThrowingStream<ChatEvent, Error>.makeStream()
        let task = Task {
            do {
                for try await event in events where event.video == nil && event.caption == nil {
                    continuation.yield(ChatEvent(text: event.text, tokenId: event.tokenId, finishReason: event.finishReason, usage: event.usage))
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return ResponseStream(stream, cancel: { task.cancel() })
    }
}
