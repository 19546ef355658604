import ChorusAPI
import ChorusInput
import ChorusWire
import Foundation
import Gateway
import Hummingbird

/// `POST /v1/images/generations` (JSON) and `/v1/images/edits` (multipart, img2img by `strength`) on
/// DiffusionService. Images come back as `b64_json`; the extensions `seed`, `steps`, `guidance_scale`,
/// `negative_prompt`, `prompt_syntax` (`a1111`, the default, `compel` or `plain`), `scheduler`, `difficulty` (the
/// terrain model) pass through, and `stream: true` sends progress as server-sent events before the images.
/// `styles` and `build` shape the prompt (see `parameters(_:)`; a form gives styles comma-separated and build
/// as JSON text); `controlnet` (an object or a list; see `controlNet(_:index:)`) and `guess_mode` steer the run
/// with ControlNets, whose control images come back as `control_images`; `expand: true` first has the vision service's
/// language model enrich the prompt (`expanded_prompt` in the answer). The answer adds `seed`, and for Stable
/// Diffusion `prompt` / `negative_prompt` (as run), `prompt_tokens` and `truncated_tokens`.
package struct ImageRoutes {
    let diffusion: DiffusionClient
    /// The language model that `expand` asks.
    let vision: VisionClient
    let bodyLimit: Int
    /// Carries the API key on to the gateway's wire port when one is set.
    let options: CallOptions

    func generate(_ request: Request) async throws -> Response {
        let fields = JSONFields(try await request.jsonObject(limit: bodyLimit))
        var parameters = try Self.parameters(fields)
        let stream = try fields.bool("stream") ?? false
        var expanded: String?
        if try fields.bool("expand") ?? false {
            // The subject (build.subject, else the prompt) rewritten by the vision service's language model.
            let subject = parameters.build.map(\.subject) ?? parameters.prompt
            guard !subject.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw OpenAIError.invalid("'expand' needs a prompt (or build.subject) to expand", param: "expand")
            }
            let (text, _, _) = try await ChatCompletions.gather(vision.chat(PromptExpansion.request(subject: subject, seed: parameters.seed), options: options))
            let prompt = PromptExpansion.prompt(from: text, subject: subject)
            if parameters.build != nil { parameters.build?.subject = prompt } else { parameters.prompt = prompt }
            expanded = prompt
        }
        return try await answer(diffusion.textToImage(parameters, options: options), stream: stream, extra: expanded.map { ["expanded_prompt": $0] } ?? [:])
    }

    /// `POST /v1/prompts/preview`: the images request's prompt fields → what the model will get (DiffusionService's
    /// PromptPreview), without generating.
    func preview(_ request: Request) async throws -> Response {
        let answer = try await diffusion.promptPreview(try Self.parameters(JSONFields(try await request.jsonObject(limit: bodyLimit))), options: options)
        func pieces(_ list: [PromptPiece]) -> [[String: Any]] { list.map { ["text": $0.text, "weight": $0.weight] } }
        func chunks(_ list: [PromptChunk]) -> [[String: Any]] {
            list.map { ["tokens": $0.tokens, "weights": $0.weights, "texts": $0.texts] }
        }
        return Response.json(["prompt": answer.prompt, "negative_prompt": answer.negativePrompt, "prompt_syntax": answer.promptSyntax,
                              "pieces": pieces(answer.pieces), "negative_pieces": pieces(answer.negativePieces),
                              "chunks": chunks(answer.chunks), "negative_chunks": chunks(answer.negativeChunks),
                              "prompt_tokens": answer.promptTokens, "negative_tokens": answer.negativeTokens,
                              "truncated_tokens": answer.truncatedTokens, "styles": answer.styles])
    }

    /// A JSON body's generation fields: the form's, plus `styles` (a name or a list) and `build` (subject,
    /// style, lighting, composition, extra_negative, quality_boosters, default_negative).
    package static func parameters(_ fields: JSONFields) throws -> TextToImageRequest {
        var parameters = try Self.parameters(string: { try fields.string($0) }, number: { try fields.number($0) })
        parameters.styles = try fields.strings("styles") ?? []
        parameters.build = try fields.object("build").map(Self.build)
        parameters.controlnets = try (fields.objects("controlnet") ?? []).enumerated().map { try Self.controlNet($1, index: $0) }
        parameters.guessMode = try fields.bool("guess_mode") ?? false
        return parameters
    }

    /// One `controlnet` entry: `model`, `image` (base64 or a data URL), `preprocessor` (none, canny, pose_keypoints),
    /// `low_threshold`, `high_threshold`, `l2_gradient`, `keypoints` (OpenPose JSON, as an object or text),
    /// `scale`, `start`, `end`. Numbers are range-checked by the service, which names the field.
    static func controlNet(_ c: JSONFields, index: Int) throws -> ControlNetInput {
        let field = "controlnet[\(index)]"
        var input = ControlNetInput(model: try c.string("model") ?? "", preprocessor: try c.string("preprocessor") ?? "",
                                    l2Gradient: try c.bool("l2_gradient") ?? false)
        if let image = try c.string("image") {
            let bytes: [UInt8]
            if image.hasPrefix("data:") {
                bytes = try dataURLBytes(image, field: "\(field).image")
            } else {
                guard let data = Data(base64Encoded: image, options: .ignoreUnknownCharacters), !data.isEmpty else {
                    throw OpenAIError.invalid("\(field).image must be base64 image bytes or a data URL", param: "controlnet")
                }
                bytes = [UInt8](data)
            }
            input.image = EncodedImage(data: Data(bytes))
        }
        if let keypoints = c.object["keypoints"], !(keypoints is NSNull) {
            if let text = keypoints as? String {
                input.keypointsJson = text
            } else if JSONSerialization.isValidJSONObject(keypoints), let data = try? JSONSerialization.data(withJSONObject: keypoints) {
                input.keypointsJson = String(decoding: data, as: UTF8.self)
            } else {
                throw OpenAIError.invalid("\(field).keypoints must be OpenPose JSON (an object or its text)", param: "controlnet")
            }
        }
        func float(_ key: String) throws -> Float {
            guard let value = try c.number(key) else { return 0 }
            return try OpenAIError.checking { try Checked.float(value, "\(field).\(key)", in: -1e6...1e6) }
        }
        input.lowThreshold = try float("low_threshold")
        input.highThreshold = try float("high_threshold")
        input.conditioningScale = try float("scale")
        input.guidanceStart = try float("start")
        input.guidanceEnd = try float("end")
        return input
    }

    static func build(_ build: JSONFields) throws -> PromptBuild {
        PromptBuild(subject: try build.string("subject") ?? "", style: try build.string("style") ?? "",
                    lighting: try build.string("lighting") ?? "", composition: try build.string("composition") ?? "",
                    extraNegative: try build.strings("extra_negative") ?? [],
                    noQualityBoosters: !(try build.bool("quality_boosters") ?? true),
                    noDefaultNegative: !(try build.bool("default_negative") ?? true))
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
        var parameters = try Self.parameters(string: { form.first($0)?.text }, number: number)
        // A form names its styles in one field, separated by commas.
        parameters.styles = (form.first("styles")?.text ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        // ... and the builder as one field of JSON text.
        if let text = form.first("build")?.text {
            guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
                throw OpenAIError.invalid("'build' must be a JSON object (subject, style, lighting, composition, extra_negative, …)", param: "build")
            }
            parameters.build = try Self.build(JSONFields(object))
        }
        // ... and the ControlNets as JSON text too (an object or a list).
        if let text = form.first("controlnet")?.text {
            guard let json = try? JSONSerialization.jsonObject(with: Data(text.utf8)) else {
                throw OpenAIError.invalid("'controlnet' must be JSON: an object or a list of objects", param: "controlnet")
            }
            parameters.controlnets = try (JSONFields(["controlnet": json]).objects("controlnet") ?? []).enumerated().map { try Self.controlNet($1, index: $0) }
        }
        parameters.guessMode = form.first("guess_mode")?.text == "true"
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
                                  scheduler: try string("scheduler") ?? "",
                                  previewEvery: try integer("preview_every", UInt32(0)...UInt32(10_000)) ?? 0, difficulty: try integer("difficulty", UInt32(1)...UInt32(100)) ?? 0,
                                  promptSyntax: try string("prompt_syntax") ?? "")
    }

    private func answer(_ events: ResponseStream<DiffusionEvent>, stream: Bool, extra: [String: Any] = [:]) async throws -> Response {
        let created = Int(Date().timeIntervalSince1970)
        guard stream else {
            for try await event in events {
                if let result = event.result { return Response.json(Self.body(result, created: created).merging(extra) { $1 }) }
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
                    object = Self.body(result, created: created).merging(extra) { $1 }
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
        var body: [String: Any] = ["created": created, "seed": result.seed, "data": result.images.map { ["b64_json": $0.data.base64EncodedString()] }]
        if !result.prompt.isEmpty || !result.negativePrompt.isEmpty {
            body["prompt"] = result.prompt
            body["negative_prompt"] = result.negativePrompt
        }
        if result.promptTokens > 0 { body["prompt_tokens"] = result.promptTokens }
        if result.truncatedTokens > 0 { body["truncated_tokens"] = result.truncatedTokens }
        if !result.controlImages.isEmpty { body["control_images"] = result.controlImages.map { ["b64_json": $0.data.base64EncodedString()] } }
        return body
    }
}
