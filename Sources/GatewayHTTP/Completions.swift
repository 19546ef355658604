import ChorusAPI
import ChorusWire
import Foundation
import Hummingbird

/// `POST /v1/completions` (OpenAI's legacy text completions) on VisionService's Chat with a raw prompt: the
/// text is continued as it is, no chat template. A completion or server-sent chunks out, as vLLM's server.
package struct Completions {
    let vision: VisionClient
    let bodyLimit: Int
    /// Carries the API key on to the gateway's wire port when one is set.
    let options: CallOptions

    /// OpenAI's default when max_tokens is absent.
    static let defaultMaxTokens: UInt32 = 16

    func handle(_ request: Request) async throws -> Response {
        let body = try await request.jsonObject(limit: bodyLimit)
        let fields = JSONFields(body)
        let (chat, echo) = try Self.completionRequest(body)
        let id = "cmpl-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let created = Int(Date().timeIntervalSince1970)  // checked: the clock, not the request
        if try fields.bool("stream") ?? false {
            let includeUsage = ((body["stream_options"] as? [String: Any])?["include_usage"] as? Bool) ?? false
            return try await stream(chat, echo: echo, id: id, created: created, includeUsage: includeUsage)
        }
        let (text, usage, finish) = try await ChatCompletions.gather(vision.chat(chat, options: options))
        return Response.json([
            "id": id, "object": "text_completion", "created": created, "model": chat.model,
            "choices": [["index": 0, "text": (echo ? chat.prompt : "") + text, "logprobs": NSNull(), "finish_reason": ChatCompletions.finishReason(finish)] as [String: Any]],
            "usage": ChatCompletions.usage(usage),
        ])
    }

    /// The first event is awaited before answering, so a bad request is a plain error status; then one
    /// chunk per token (the prompt first when echoed), the finish, usage when asked, and `[DONE]`.
    private func stream(_ chat: ChatRequest, echo: Bool, id: String, created: Int, includeUsage: Bool) async throws -> Response {
        let events = StreamCursor(vision.chat(chat, options: options))
        let first = try await events.next()
        let chunk: @Sendable (String, String?, Usage?) -> ByteBuffer = { text, finish, usage in
            var object: [String: Any] = [
                "id": id, "object": "text_completion", "created": created, "model": chat.model,
                "choices": usage == nil ? [["index": 0, "text": text, "logprobs": NSNull(),
                                            "finish_reason": finish.map(ChatCompletions.finishReason) ?? NSNull()] as [String: Any]] : [],
            ]
            if let usage { object["usage"] = ChatCompletions.usage(usage) }
            return ServerSentEvents.event(object)
        }
        let body = ResponseBody { writer in
            if echo { try await writer.write(chunk(chat.prompt, nil, nil)) }
            var event = first
            while let current = event {
                if current.finishReason.isEmpty {
                    if !current.text.isEmpty { try await writer.write(chunk(current.text, nil, nil)) }
                } else {
                    try await writer.write(chunk(current.text, current.finishReason, nil))
                    if includeUsage, let usage = current.usage { try await writer.write(chunk("", nil, usage)) }
                }
                event = try await events.next()
            }
            try await writer.write(ServerSentEvents.done)
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }

    /// The body as a wire request, every field checked, and whether the prompt is echoed. `prompt` is a string
    /// or a list of one string; token-id prompts, several prompts, `suffix`, `logprobs` and `best_of` other
    /// than 1 are refused by name rather than ignored.
    package static func completionRequest(_ body: [String: Any]) throws -> (ChatRequest, echo: Bool) {
        let fields = JSONFields(body)
        let model = try fields.requiredString("model")
        let prompt: String
        switch body["prompt"] {
        case let text as String: prompt = text
        case let list as [Any] where list.count == 1 && list[0] is String: prompt = list[0] as! String  // checked: tested by the pattern
        case let list as [Any] where list.count > 1: throw OpenAIError.invalid("one prompt per request is supported; send \(list.count) requests", param: "prompt")
        case nil, is NSNull: throw OpenAIError.invalid("'prompt' is required", param: "prompt")
        default: throw OpenAIError.invalid("'prompt' must be a string (token-id prompts are not supported)", param: "prompt")
        }
        guard !prompt.isEmpty else { throw OpenAIError.invalid("'prompt' is empty", param: "prompt") }
        if try !(fields.string("suffix") ?? "").isEmpty { throw OpenAIError.invalid("'suffix' (insertion) is not supported", param: "suffix") }
        if let logprobs = body["logprobs"], !(logprobs is NSNull) { throw OpenAIError.invalid("'logprobs' is not supported", param: "logprobs") }
        for key in ["n", "best_of"] where try fields.integer(key, in: Int.min...Int.max).map({ $0 != 1 }) ?? false {
            throw OpenAIError.invalid("only \(key) = 1 is supported", param: key)
        }
        var generation = try ChatCompletions.generation(fields)
        if generation.maxNewTokens == 0 { generation.maxNewTokens = defaultMaxTokens }
        return (ChatRequest(model: model, messages: [], generation: generation, prompt: prompt), try fields.bool("echo") ?? false)
    }
}
