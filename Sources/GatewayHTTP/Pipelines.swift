import ChorusAPI
import ChorusWire
import Foundation
import Gateway
import Hummingbird

/// `POST /v1/pipelines`: the gateway's Compose over HTTP. The body names a `recipe` or gives `steps`
/// (`{"id", "method", "inputs": {"field": "value"}}`), with `inputs` (name → JSON text or string),
/// `images` (data URLs), `audio` (data URLs of WAV files) and `videos` (data URLs of MP4, WebM, MKV, MOV ...).
/// Each finished step is a server-sent event `{"step", "output", "started_ms", "finished_ms"}` (or
/// `{"step", "error"}`), then `[DONE]`; with `"stream": false` the answer is one JSON object of all step outputs.
package struct PipelineRoute {
    let gateway: ChorusGateway
    let bodyLimit: Int

    func handle(_ request: Request) async throws -> Response {
        let body = try await request.jsonObject(limit: bodyLimit)
        let fields = JSONFields(body)
        let compose = try Self.compose(body)
        let events = StreamCursor(gateway.composeEvents(compose, deadline: nil))
        let first = try await events.next()
        if let failed = first, failed.statusCode != 0 {
            // The very first step failed: the call's own status follows, and becomes the HTTP status.
            _ = try await events.next()
            throw OpenAIError(WireStatus(StatusCode(rawValue: failed.statusCode) ?? .unknown, failed.statusMessage))
        }
        if try fields.bool("stream") == false {
            var steps: [String: Any] = [:]
            var event = first
            while let current = event {
                if !current.stepId.isEmpty { steps[current.stepId] = try JSONSerialization.jsonObject(with: Data(current.outputJson.utf8)) }
                event = try await events.next()
            }
            return Response.json(["object": "pipeline.result", "steps": steps])
        }
        let stream = ResponseBody { writer in
            var event = first, reportedFailure = false
            do {
                while let current = event {
                    if current.statusCode != 0 {
                        reportedFailure = true
                        let status = WireStatus(StatusCode(rawValue: current.statusCode) ?? .unknown, current.statusMessage)
                        try await writer.write(ServerSentEvents.event(["step": current.stepId, "error": OpenAIError(status).json["error"]!]))
                    } else if !current.stepId.isEmpty {
                        let output = (try? JSONSerialization.jsonObject(with: Data(current.outputJson.utf8))) ?? [String: Any]()
                        try await writer.write(ServerSentEvents.event(["step": current.stepId, "output": output,
                                                                       "started_ms": current.startedMs, "finished_ms": current.finishedMs]))
                    }
                    event = try await events.next()
                }
            } catch {
                // The stream has begun, so a failure is an event: its step's event when it had one.
                if !reportedFailure { try await writer.write(ServerSentEvents.event(OpenAIError.from(error).json)) }
            }
            try await writer.write(ServerSentEvents.done)
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: stream)
    }


    /// Step inputs travel as text: strings as they are, anything else as its JSON.
    /// The body as a Compose request, checked.
    package static func compose(_ body: [String: Any]) throws -> ComposeRequest {
        let fields = JSONFields(body)
        var compose = ComposeRequest(recipe: try fields.string("recipe") ?? "")
        if let steps = body["steps"] {
            guard let list = steps as? [[String: Any]] else { throw OpenAIError.invalid("'steps' must be a list of objects", param: "steps") }
            compose.steps = try list.enumerated().map { i, step in
                guard let id = step["id"] as? String, let method = step["method"] as? String else {
                    throw OpenAIError.invalid("steps[\(i)] needs 'id' and 'method'", param: "steps")
                }
                let inputs = (step["inputs"] as? [String: Any]) ?? [:]
                return PipelineStep(id: id, method: method, inputs: try inputs.keys.sorted().map { field in
                    StepInput(field: field, value: try Self.text(inputs[field]!, field: "steps[\(i)].inputs.\(field)"))
                })
            }
        }
        if let inputs = body["inputs"] {
            guard let object = inputs as? [String: Any] else { throw OpenAIError.invalid("'inputs' must be an object", param: "inputs") }
            compose.inputs = try object.keys.sorted().map { KeyValue(key: $0, value: try Self.text(object[$0]!, field: "inputs.\($0)")) }
        }
        compose.images = try ((body["images"] as? [String]) ?? []).enumerated().map { i, url in
            EncodedImage(data: Data(try dataURLBytes(url, field: "images[\(i)]")))
        }
        compose.audio = try ((body["audio"] as? [String]) ?? []).enumerated().map { i, url in
            Audio(wav: Data(try dataURLBytes(url, field: "audio[\(i)]")))
        }
        compose.videos = try ((body["videos"] as? [String]) ?? []).enumerated().map { i, url in
            Data(try dataURLBytes(url, field: "videos[\(i)]"))
        }
        return compose
    }

    static func text(_ value: Any, field: String) throws -> String {
        if let string = value as? String { return string }
        guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed]) else {
            throw OpenAIError.invalid("\(field) is not JSON", param: field)
        }
        return String(decoding: data, as: UTF8.self)
    }
}
