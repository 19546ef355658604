import ChorusAPI
import ChorusWire
import Foundation
import Hummingbird

/// `POST /v1/chat/completions` on VisionService's Chat: OpenAI messages (text and `image_url` data-URL
/// parts) in, a completion or server-sent chunks out. A `video_url` part makes it a question about the video
/// (VideoChat): its speech transcribed by SpeechService, then VisionService's AskVideo.
package struct ChatCompletions {
    let vision: VisionClient
    let speech: SpeechClient
    let bodyLimit: Int
    /// Carries the API key on to the gateway's wire port when one is set.
    let options: CallOptions

    func handle(_ request: Request) async throws -> Response {
        let body = try await request.jsonObject(limit: bodyLimit)
        let fields = JSONFields(body)
        let model: String, events: () async throws -> ResponseStream<ChatEvent>
        if let video = try VideoChat.parse(body, generation: try Self.generation(fields)) {
            if try fields.integer("n", in: Int.min...Int.max).map({ $0 != 1 }) ?? false { throw OpenAIError.invalid("only n = 1 is supported", param: "n") }
            model = video.request.model
            events = { [vision, speech, options] in
                var ask = video.request
                if video.transcribes { ask.transcript = try await Self.speechOrNothing(speech, media: ask.video?.data ?? Data(), options: options) }
                return VideoChat.chatEvents(vision.askVideo(ask, options: options))
            }
        } else {
            let chat = try Self.chatRequest(body)
            model = chat.model
            events = { [vision, options] in vision.chat(chat, options: options) }
        }
        let id = "chatcmpl-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let created = Int(Date().timeIntervalSince1970)
        if try fields.bool("stream") ?? false {
            let includeUsage = ((body["stream_options"] as? [String: Any])?["include_usage"] as? Bool) ?? false
            return try await stream(try await events(), model: model, id: id, created: created, includeUsage: includeUsage)
        }
        let (text, usage, finish) = try await Self.gather(try await events())
        return Response.json([
            "id": id, "object": "chat.completion", "created": created, "model": model,
            "choices": [["index": 0, "message": ["role": "assistant", "content": text], "finish_reason": Self.finishReason(finish)] as [String: Any]],
            "usage": Self.usage(usage),
        ])
    }

    /// The first event is awaited before answering, so a bad request is a plain error status, not a
    /// stream that fails; then one chunk per token, the finish, usage when asked, and `[DONE]`.
    /// A video's speech; a deployment without SpeechService (or without a Whisper model) answers from the frames.
    static func speechOrNothing(_ speech: SpeechClient, media: Data, options: CallOptions) async throws -> [TimedText] {
        do {
            return try await VideoChat.transcript(speech, media: media, options: options)
        } catch let status as WireStatus where [.unavailable, .failedPrecondition, .unimplemented].contains(status.code) {
            return []
        }
    }

    private func stream(_ source: ResponseStream<ChatEvent>, model: String, id: String, created: Int, includeUsage: Bool) async throws -> Response {
        let events = StreamCursor(source)
        let first = try await events.next()
        let chunk: @Sendable ([String: any Sendable], String?, Usage?) -> ByteBuffer = { delta, finish, usage in
            var object: [String: Any] = [
                "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": usage == nil ? [["index": 0, "delta": delta, "finish_reason": finish.map(Self.finishReason) ?? NSNull()] as [String: Any]] : [],
            ]
            if let usage { object["usage"] = Self.usage(usage) }
            return ServerSentEvents.event(object)
        }
        let body = ResponseBody { writer in
            try await writer.write(chunk(["role": "assistant", "content": ""], nil, nil))
            var event = first
            while let current = event {
                if current.finishReason.isEmpty {
                    if !current.text.isEmpty { try await writer.write(chunk(["content": current.text], nil, nil)) }
                } else {
                    try await writer.write(chunk(current.text.isEmpty ? [:] : ["content": current.text], current.finishReason, nil))
                    if includeUsage, let usage = current.usage { try await writer.write(chunk([:], nil, usage)) }
                }
                event = try await events.next()
            }
            try await writer.write(ServerSentEvents.done)
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }

    /// OpenAI's messages → the wire's: `content` is a string or a list of text and image_url parts.
    /// The body as a wire request, every field checked (the fuzz target "http-json" drives this).
    package static func chatRequest(_ body: [String: Any]) throws -> ChatRequest {
        let fields = JSONFields(body)
        let model = try fields.requiredString("model")
        let chat = try ChatRequest(model: model, messages: messages(body["messages"]), generation: generation(fields))
        if try fields.integer("n", in: Int.min...Int.max).map({ $0 != 1 }) ?? false { throw OpenAIError.invalid("only n = 1 is supported", param: "n") }
        return chat
    }

    static func messages(_ value: Any?) throws -> [ChatTurn] {
        guard let list = value as? [[String: Any]], !list.isEmpty else {
            throw OpenAIError.invalid("'messages' must be a non-empty list of objects", param: "messages")
        }
        return try list.enumerated().map { i, message in
            let field = "messages[\(i)]"
            guard let role = message["role"] as? String else { throw OpenAIError.invalid("\(field).role is required", param: field) }
            // OpenAI's newer "developer" role is the system prompt.
            let wireRole = role == "developer" ? "system" : role
            switch message["content"] {
            case let text as String:
                return ChatTurn(role: wireRole, parts: [ChatPart(text: text)])
            case let parts as [[String: Any]]:
                return ChatTurn(role: wireRole, parts: try parts.enumerated().map { j, part in
                    let partField = "\(field).content[\(j)]"
                    switch part["type"] as? String {
                    case "text":
                        guard let text = part["text"] as? String else { throw OpenAIError.invalid("\(partField).text is required", param: partField) }
                        return ChatPart(text: text)
                    case "image_url":
                        let url = (part["image_url"] as? [String: Any])?["url"] as? String ?? part["image_url"] as? String
                        guard let url else { throw OpenAIError.invalid("\(partField).image_url.url is required", param: partField) }
                        return ChatPart(image: EncodedImage(data: Data(try dataURLBytes(url, field: "\(partField).image_url.url"))))
                    case let other:
                        throw OpenAIError.invalid("\(partField) has type '\(other ?? "none")'; text and image_url are supported", param: partField)
                    }
                })
            default:
                throw OpenAIError.invalid("\(field).content must be a string or a list of parts", param: field)
            }
        }
    }

    static func generation(_ fields: JSONFields) throws -> GenerationOptions {
        let stop: [String]
        switch fields.object["stop"] {
        case let one as String: stop = [one]
        case let many as [String]: stop = many
        case nil, is NSNull: stop = []
        default: throw OpenAIError.invalid("'stop' must be a string or a list of strings", param: "stop")
        }
        let maxTokens = try fields.integer("max_completion_tokens", in: UInt32(1)...UInt32(1 << 20))
            ?? fields.integer("max_tokens", in: UInt32(1)...UInt32(1 << 20)) ?? 0
        // OpenAI's seed is a signed 64-bit integer; the wire carries its bits.
        let seed = try fields.integer("seed", in: Int64.min...Int64.max) ?? 0
        return GenerationOptions(maxNewTokens: maxTokens, temperature: try fields.float("temperature", in: 0...2) ?? 0,
                                 topP: try fields.float("top_p", in: 0...1) ?? 0, topK: try fields.integer("top_k", in: UInt32(0)...UInt32(1 << 20)) ?? 0,
                                 repetitionPenalty: try fields.float("repetition_penalty", in: 0...10) ?? 0,
                                 seed: UInt64(bitPattern: seed), stop: stop)
    }

    /// A Chat stream read to its end: the whole text, the usage and the finish reason its last event carries.
    static func gather<Events: AsyncSequence>(_ events: Events) async throws -> (text: String, usage: Usage, finish: String) where Events.Element == ChatEvent {
        var text = "", usage = Usage(), finish = "stop"
        for try await event in events {
            text += event.text
            if !event.finishReason.isEmpty { finish = event.finishReason }
            if let u = event.usage { usage = u }
        }
        return (text, usage, finish)
    }

    static func finishReason(_ reason: String) -> String { reason == "length" ? "length" : "stop" }

    static func usage(_ usage: Usage) -> [String: Any] {
        ["prompt_tokens": usage.promptTokens, "completion_tokens": usage.completionTokens,
         "total_tokens": usage.promptTokens + usage.completionTokens,
         "prompt_tokens_details": ["cached_tokens": usage.cachedPromptTokens]]
    }
}
