import ChorusAPI
import ChorusMedia
import ChorusStableDiffusion
import ChorusTensor
import ChorusText
import ChorusWire
import Foundation
import Gateway
import GatewayHTTP
import NIOCore
import NIOEmbedded

/// Every parser a client's bytes reach, as libFuzzer entry points. A target takes arbitrary bytes and
/// drives the code as a request would; thrown errors are the expected answer to bad input, and the
/// only failure is a crash (a Swift trap, or an address-sanitizer report in fuzzing builds).
/// `scripts/fuzz TARGET SECONDS` runs one; ChorusFuzzTests replays the seed corpora and regressions.
public enum FuzzTargets {
    public typealias Target = @Sendable ([UInt8]) -> Void

    public static let all: [String: Target] = [
        "frame": frame,
        "wire-message": wireMessage,
        "http-json": httpJSON,
        "pipeline": pipeline,
        "multipart": multipart,
        "png": { bytes in _ = try? ImageCodec.decode(bytes, limits: .init(maxWidth: 4096, maxHeight: 4096, maxPixels: 1 << 22)) },
        "jpeg": { bytes in _ = try? ImageCodec.decode(bytes, limits: .init(maxWidth: 4096, maxHeight: 4096, maxPixels: 1 << 22)) },
        "wav": wav,
        "safetensors": { bytes in weightFile(bytes) { _ = try SafeTensorsFile(path: $0) } },
        "onnx": { bytes in weightFile(bytes) { _ = try ONNXModel(path: $0) } },
        "ctranslate2": { bytes in weightFile(bytes) { _ = try CTranslate2Model(path: $0) } },
        "gguf": { bytes in weightFile(bytes) { path in
            let file = try GGUFFile(path: path)
            for info in file.tensors where info.type.canDequantize && info.count <= 1 << 20 { _ = try? file.tensor(info.name) }
        } },
        "tokenizer": tokenizer,
        "template": template,
        "sse": sse,
        // OpenPose keypoints JSON, drawn on a small canvas, and the Canny edges of the drawing.
        "pose": { bytes in
            guard let keypoints = try? OpenPoseDrawing.keypoints(json: String(decoding: bytes, as: UTF8.self)),
                  let image = try? OpenPoseDrawing.draw(keypoints.people, width: min(keypoints.canvasWidth ?? 64, 96),
                                                        height: min(keypoints.canvasHeight ?? 64, 96)) else { return }
            _ = CannyEdges.edges(image, low: 100, high: 200)
        },
        // A container from a client: headers, a few frames at a small size, the audio track.
        "video": { bytes in
            guard let file = try? VideoFile(bytes, limits: VideoLimits(maxBytes: 1 << 20, maxSeconds: 60, maxFrameSide: 256, maxFrames: 4)) else { return }
            _ = try? file.frames(FrameSampling(.count(3), maxFrames: 4), maxSide: 48)
            _ = try? file.audio(maxSeconds: 10)
        },
        "prompt": { bytes in
            let text = String(decoding: bytes, as: UTF8.self)
            _ = try? A1111Prompt(parsing: text)
            _ = try? CompelPrompt(parsing: text)
        },
    ]

    /// Frames from a byte stream, as a connection's decoder sees them, each encoded back.
    static func frame(_ bytes: [UInt8]) {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder(maxFrameSize: 1 << 20)))
        defer { _ = try? channel.finish() }
        guard (try? channel.writeInbound(ByteBuffer(bytes: bytes))) != nil else { return }
        while let frame = try? channel.readInbound(as: Frame.self) {
            _ = try? frame.encoded(allocator: channel.allocator, maxFrameSize: 1 << 20)
        }
    }

    /// The first byte picks a method; the rest is its request message, decoded by protobuf-c, bridged to
    /// the typed message and back, and written as JSON (what `chorus call` and pipelines do).
    static func wireMessage(_ bytes: [UInt8]) {
        guard let selector = bytes.first else { return }
        let method = methods[Int(selector) % methods.count]
        let payload = Array(bytes.dropFirst())
        guard let json = try? method.decodeRequest(payload) else { return }
        _ = try? method.encodeRequest(json)
    }

    static let methods = ChorusMethods.all.keys.sorted().compactMap { ChorusMethods.all[$0] }

    /// A JSON body of a `/v1` route, checked as the route checks it; the first byte picks the route.
    static func httpJSON(_ bytes: [UInt8]) {
        guard let selector = bytes.first,
              let object = try? JSONSerialization.jsonObject(with: Data(bytes.dropFirst())) as? [String: Any] else { return }
        let fields = JSONFields(object)
        switch selector % 6 {
        case 0: _ = try? ImageRoutes.parameters(fields)
        case 1:
            _ = try? ChatCompletions.chatRequest(object)
            _ = try? VideoChat.parse(object, generation: GenerationOptions())
        case 5: _ = try? Completions.completionRequest(object)
        case 2: _ = try? Embeddings.parse(object)
        case 3: _ = try? AudioRoutes.synthesis(fields)
        default: _ = try? PipelineRoute.compose(object)
        }
    }

    /// A pipeline body: parsed, planned, and each step's request built from fabricated outputs.
    static func pipeline(_ bytes: [UInt8]) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
              let compose = try? PipelineRoute.compose(object), let plan = try? Pipeline(compose) else { return }
        let outputs: [String: Any] = Dictionary(uniqueKeysWithValues: plan.steps.map { ($0.id, ["text": "a cat", "result": ["text": "hi"]] as [String: Any]) })
        for step in plan.steps { _ = try? plan.request(for: step, outputs: outputs) }
    }

    /// The first line is the boundary; the rest is the body.
    static func multipart(_ bytes: [UInt8]) {
        let newline = bytes.firstIndex(of: 10) ?? bytes.count
        let boundary = String(decoding: bytes[..<newline], as: UTF8.self)
        let body = Array(bytes[min(newline + 1, bytes.count)...])
        let contentType = "multipart/form-data; boundary=\(boundary)"
        let form = try? MultipartForm(body: body, contentType: contentType)
        for part in form?.parts ?? [] { _ = part.text }
        // The streaming reader, fed the body in three pieces (cut where its first bytes say), must read what the
        // whole body reads: the same parts, or a refusal.
        guard var reader = try? MultipartReader(contentType: contentType) else { return }
        let first = body.isEmpty ? 0 : Int(body[0]) % (body.count + 1), second = min(body.count, first + (body.count - first) / 2)
        var parts: [(String, [UInt8])] = []
        do {
            var events: [MultipartReader.Event] = []
            for range in [0..<first, first..<second, second..<body.count] { events += try reader.feed(ByteBuffer(bytes: body[range])) }
            events += try reader.finish()
            for event in events {
                switch event {
                case .part(let head): parts.append((head.name, []))
                case .content(let bytes): parts[parts.count - 1].1 += Array(bytes.readableBytesView)
                case .partEnd: break
                }
            }
        } catch {
            precondition(form == nil, "the streaming reader refused a body the whole-body read accepted: \(error)")
            return
        }
        precondition(form != nil && parts.map(\.0) == form!.parts.map(\.name) && parts.map(\.1) == form!.parts.map(\.data),
                     "the streaming reader read other parts than the whole-body read")
    }

    static func wav(_ bytes: [UInt8]) {
        guard let audio = try? WAVCodec.decode(bytes) else { return }
        _ = audio.downmixedToMono()
    }

    /// The loaders read files: the bytes go to a file in memory (/dev/shm) first.
    static func weightFile(_ bytes: [UInt8], _ load: (String) throws -> Void) {
        let path = "/dev/shm/chorus-fuzz-\(getpid())"
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else { return }
        defer { unlink(path) }
        _ = try? load(path)
    }

    /// Arbitrary text (invalid UTF-8 repaired as a server would) through each fixture tokenizer, and
    /// ids from the bytes decoded back.
    static func tokenizer(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        for tokenizer in tokenizers {
            _ = tokenizer.encode(text)
            let ids = stride(from: 0, to: bytes.count - 1, by: 2).map { Int(bytes[$0]) << 8 | Int(bytes[$0 + 1]) }
            _ = tokenizer.decode(ids + [-1, Int.max, Int.min], skipSpecialTokens: bytes.count % 2 == 0)
        }
    }

    static let tokenizers: [any Tokenizer] = ["clip", "llava", "whisper", "vits"].compactMap { name in
        try? TokenizerLoader.load(folder: repository.appendingPathComponent("Tests/ChorusTextTests/Fixtures/\(name)"))
    }

    /// A chat template (the Jinja subset) rendered over a conversation.
    static func template(_ bytes: [UInt8]) {
        guard let template = try? ChatTemplate(String(decoding: bytes, as: UTF8.self)) else { return }
        let message: TemplateValue = ["role": "user", "content": [["type": "text", "text": "hi"], ["type": "image"]]]
        _ = try? template.render(["messages": [message, ["role": "assistant", "content": "yes"]], "bos_token": "<s>",
                                  "eos_token": "</s>", "add_generation_prompt": true])
    }

    /// Any strings in an event: the writer must keep one event per `data:` line and the blank line
    /// only at its end (a raw newline inside would split the event for every client).
    static func sse(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        let number: Any = bytes.count % 3 == 0 ? Double.nan : Double(bytes.count) / 7
        let event = ServerSentEvents.event(["step": text, "output": ["text": text, "score": number, "list": [text]]])
        let written = String(decoding: event.readableBytesView, as: UTF8.self)
        precondition(written.hasPrefix("data: ") && written.hasSuffix("\n\n") && !written.dropLast(2).contains("\n"),
                     "an event that clients would split: \(written.debugDescription)")
    }

    /// The repository, for the fixtures the targets load (the binary runs from a checkout).
    static let repository: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url
    }()
}
