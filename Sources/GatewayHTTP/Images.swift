import ChorusAPI
import ChorusInput
import ChorusWire
import Foundation
import Hummingbird

/// `POST /v1/images/generations` (JSON) and `/v1/images/edits` (multipart, img2img by `strength`) on
/// DiffusionService. Images come back as `b64_json`; the extensions `seed`, `steps`, `guidance_scale`,
/// `negative_prompt`, `scheduler`, `difficulty` (the terrain model) pass through, and `stream: true`
/// sends progress as server-sent events before the images.
package struct ImageRoutes {
    let diffusion: DiffusionClient
    let bodyLimit: Int
    /// Carries the API key on to the gateway's wire port when one is set.
    let options: CallOptions

    func generate(_ request: Request) async throws -> Response {
        let fields = JSONFields(try await request.jsonObject(limit: bodyLimit))
        let parameters = try Self.parameters(string: { try fields.string($0) }, number: { try fields.number($0) })
        let stream = try fields.bool("stream") ?? false
        return try await answer(diffusion.textToImage(parameters, options: options), stream: stream)
    }

    func edit(_ request: Request) async throws -> Response {
        let form = try MultipartForm(body: try await request.bytes(limit: bodyLimit), contentType: request.headers[.contentType] ?? "")
        guard let image = form.first("image") ?? form.first("image[]"), !image.data.isEmpty else {
            throw OpenAIError.invalid("the form has no 'image'", param: "image")
        }
        func number(_ key: String) throws -> Double? {
            guard let text = form.first(key)?.text else { return nil }
            guard let value = Double(text) else { throw OpenAIError.invalid("'\(key)' must be a number", param: key) }
            return value
        }
        let parameters = try Self.parameters(string: { form.first($0)?.text }, number: number)
        let strength = try OpenAIError.checking { try number("strength").map { try Checked.float($0, "strength", in: 0...1) } } ?? 0.8
        let edit = ImageToImageRequest(params: parameters, initImage: EncodedImage(data: Data(image.data)), strength: strength)
        return try await answer(diffusion.imageToImage(edit, options: options), stream: form.first("stream")?.text == "true")
    }

    /// The generation fields of a JSON body or a form, each range-checked before it becomes a wire
    /// field (0 leaves a field to the service's default). The service applies its own tighter limits
    /// (--max-steps, --max-pixels, --max-images) and says which flag to raise.
    package static func parameters(string: (String) throws -> String?, number: (String) throws -> Double?) throws -> TextToImageRequest {
        let format = try string("response_format") ?? "b64_json"
        guard format == "b64_json" else {
            throw OpenAIError.invalid("response_format '\(format)' is not supported; use b64_json (the gateway serves no image URLs)", param: "response_format")
        }
        var width: UInt32 = 0, height: UInt32 = 0
        if let size = try string("size"), size != "auto" {
            let parts = size.split(separator: "x", omittingEmptySubsequences: false).map { UInt32($0) }
            guard parts.count == 2, let w = parts[0], let h = parts[1], (1...16384).contains(w), (1...16384).contains(h) else {
                throw OpenAIError.invalid("size '\(size)' is not WIDTHxHEIGHT with each side 1 ... 16384", param: "size")
            }
            (width, height) = (w, h)
        }
        func integer<T: FixedWidthInteger>(_ key: String, _ range: ClosedRange<T>) throws -> T? {
            try number(key).map { value in try OpenAIError.checking { try Checked.integer(value, key, in: range) } }
        }
        let n = try integer("n", UInt32(1)...UInt32(10)) ?? 1
        let guidance = try number("guidance_scale").map { value in try OpenAIError.checking { try Checked.float(value, "guidance_scale", in: 0...100) } }
        return TextToImageRequest(model: try string("model") ?? "", prompt: try string("prompt") ?? "",
                                  negativePrompt: try string("negative_prompt") ?? "",
                                  guidanceScale: guidance ?? 0, steps: try integer("steps", UInt32(1)...UInt32(10_000)) ?? 0,
                                  seed: try integer("seed", UInt64.min...UInt64.max) ?? 0, width: width, height: height, numImages: n,
                                  scheduler: try string("scheduler") ?? "", difficulty: try integer("difficulty", UInt32(1)...UInt32(100)) ?? 0)
    }

    private func answer(_ events: ResponseStream<DiffusionEvent>, stream: Bool) async throws -> Response {
        let created = Int(Date().timeIntervalSince1970)
        guard stream else {
            for try await event in events {
                if let result = event.result { return Response.json(Self.body(result, created: created)) }
            }
            throw OpenAIError(.internalServerError, "the generation ended without images", type: "server_error")
        }
        let iterator = StreamCursor(events)
        let first = try await iterator.next()
        let body = ResponseBody { writer in
            var event = first
            while let current = event {
                var object: [String: Any] = [:]
                if let progress = current.progress {
                    object = ["type": "progress", "step": progress.step, "total": progress.total, "elapsed_seconds": progress.elapsedSeconds]
                } else if let preview = current.preview {
                    object = ["type": "preview", "b64_json": preview.data.base64EncodedString()]
                } else if let result = current.result {
                    object = Self.body(result, created: created)
                    object["type"] = "result"
                }
                try await writer.write(ServerSentEvents.event(object))
                event = try await iterator.next()
            }
            try await writer.write(ServerSentEvents.done)
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }

    static func body(_ result: DiffusionResult, created: Int) -> [String: Any] {
        ["created": created, "seed": result.seed, "data": result.images.map { ["b64_json": $0.data.base64EncodedString()] }]
    }
}
