import ChorusAPI
import ChorusInput
import ChorusWire
import ChorusMedia
import Foundation
import Hummingbird

/// `POST /v1/audio/speech`, `/v1/audio/transcriptions` and `/v1/audio/translations` on SpeechService.
package struct AudioRoutes {
    let speech: SpeechClient
    let bodyLimit: Int
    /// Carries the API key on to the gateway's wire port when one is set.
    let options: CallOptions

    /// OpenAI's `speed` is Piper's 1 / length_scale. `wav` is one file for the whole text; `pcm` is
    /// OpenAI's raw 24 kHz 16-bit little-endian mono.
    func speak(_ request: Request) async throws -> Response {
        let fields = JSONFields(try await request.jsonObject(limit: bodyLimit))
        let (synthesis, format) = try Self.synthesis(fields)
        switch try fields.string("stream_format") ?? "audio" {
        case "audio": break
        case "sse": return try await speakInEvents(synthesis, format: format)
        case let other: throw OpenAIError.invalid("stream_format '\(other)' is not one of audio, sse", param: "stream_format")
        }
        var samples: [Float] = [], rate = 0
        for try await chunk in speech.synthesize(synthesis, options: options) {
            rate = Int(chunk.sampleRate)
            samples += chunk.data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        }
        if format == "pcm" { return Response.bytes(Self.pcm16(samples), contentType: "audio/pcm") }
        let wav = try WAVCodec.encode(AudioSamples(sampleRate: max(rate, 1), channels: [samples]))
        return Response.bytes(wav, contentType: "audio/wav")
    }

    /// `stream_format: "sse"` (OpenAI's streamed speech): a `speech.audio.delta` event per sentence as soon as it is
    /// synthesized, its audio base64 (a WAV file of that sentence, or raw 24 kHz PCM), then `speech.audio.done`, so a
    /// player can start on the first sentence.
    func speakInEvents(_ synthesis: SynthesizeRequest, format: String) async throws -> Response {
        let chunks = StreamCursor(speech.synthesize(synthesis, options: options))
        let first = try await chunks.next()
        let body = ResponseBody { writer in
            var chunk = first
            while let current = chunk {
                let samples = current.data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
                let audio = format == "pcm" ? Self.pcm16(samples)
                    : try WAVCodec.encode(AudioSamples(sampleRate: max(Int(current.sampleRate), 1), channels: [samples]))  // checked: UInt32 always fits Int on 64-bit
                try await writer.write(ServerSentEvents.event(["type": "speech.audio.delta", "audio": Data(audio).base64EncodedString(),
                                                               "text": current.text]))
                chunk = try await chunks.next()
            }
            try await writer.write(ServerSentEvents.event(["type": "speech.audio.done"]))
            try await writer.write(ServerSentEvents.done)
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }

    /// Float samples as 16-bit little-endian PCM, clipped to ±1.
    static func pcm16(_ samples: [Float]) -> [UInt8] {
        var bytes = [UInt8]()
        bytes.reserveCapacity(samples.count * 2)
        for sample in samples {
            let value = Int16(max(-1, min(1, sample.isNaN ? 0 : sample)) * 32767)  // checked: clamped to ±1 (NaN to 0) before the conversion
            bytes += [UInt8(truncatingIfNeeded: value), UInt8(truncatingIfNeeded: value >> 8)]
        }
        return bytes
    }

    /// The body as a synthesis request and the answer's format (wav or pcm), checked.
    package static func synthesis(_ fields: JSONFields) throws -> (SynthesizeRequest, String) {
        let input = try fields.requiredString("input")
        let voice = try fields.string("voice") ?? ""
        let speed = try fields.float("speed", in: 0.25...4) ?? 1
        let format = try fields.string("response_format") ?? "wav"
        guard format == "wav" || format == "pcm" else {
            throw OpenAIError.invalid("response_format '\(format)' is not supported; use wav or pcm", param: "response_format")
        }
        // OpenAI voice names (alloy, nova…) mean "the default voice" here; Chorus voice names pick one.
        let openAIVoices: Set<String> = ["alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse"]
        let synthesis = SynthesizeRequest(text: input, voice: openAIVoices.contains(voice) ? "" : voice, lengthScale: Float(1 / speed),
                                          format: .pcmF32, sampleRate: format == "pcm" ? 24_000 : 0)
        return (synthesis, format)
    }

    /// Multipart upload: `file` (WAV), `model`, `language`, `prompt`, `response_format`, `temperature`,
    /// `timestamp_granularities[]`, `stream`. A transcription's file streams on to speech.TranscribeUpload as it
    /// arrives, never gathered here (so a long recording costs the gateway a chunk of memory, and can be larger than
    /// a wire message); a translation, or `stream=true` given before the file, gathers the form and sends one request.
    func transcribe(_ request: Request, translate: Bool) async throws -> Response {
        var body = try MultipartStream(request, limit: bodyLimit)
        var fields: [MultipartForm.Part] = []
        while let head = try await body.nextPart() {
            if head.name == "file", !translate, !fields.contains(where: { $0.name == "file" }),
               !fields.contains(where: { $0.name == "stream" && $0.text == "true" }) {
                return try await uploadTranscription(&body, fields: fields)
            }
            fields.append(MultipartForm.Part(name: head.name, filename: head.filename, data: try await body.gatherPart()))
        }
        let form = MultipartForm(parts: fields)
        let settings = try TranscriptionForm(form)
        guard let file = form.first("file"), !file.data.isEmpty else { throw OpenAIError.invalid("the form has no 'file'", param: "file") }
        // Gathered, the audio travels in one wire message; past a frame only the streamed transcription takes it.
        let oneMessage = defaultMaxFrameSize - (1 << 20)
        guard file.data.count <= oneMessage else {
            throw OpenAIError(.contentTooLarge, "the file is \(file.data.count) bytes; \(translate ? "a translation" : "a transcription with 'stream' before the file") "
                              + "sends it in one message of at most \(oneMessage) bytes. Larger files stream to the service as a transcription "
                              + "without stream=true (or with it after the file)", param: "file")
        }
        var transcription = settings.request
        transcription.audio = Audio(wav: Data(file.data))
        if settings.stream && translate {
            throw OpenAIError.invalid("'stream' is for transcriptions; translations answer once", param: "stream")
        }
        if settings.stream { return try await transcribeInEvents(transcription) }
        let result: TranscribeResult
        if translate {
            result = try await speech.translate(transcription, options: options)
        } else {
            var last: TranscribeResult?
            for try await event in speech.transcribe(transcription, options: options) where event.result != nil { last = event.result }
            guard let final = last else { throw OpenAIError(.internalServerError, "the transcription ended without a result", type: "server_error") }
            result = final
        }
        return try Self.answer(result, settings)
    }

    /// Bytes of audio per TranscribeUpload chunk: the HTTP body's pieces (a few KiB each) gathered to this.
    static let uploadChunkBytes = 256 << 10

    /// The file part, from its first byte, sent on in chunks through speech.TranscribeUpload while the client is
    /// still sending it; `fields` (those before the file) ride on the first chunk. Fields after the file are read
    /// once it ends and, when there are any, the last chunk carries the request's options again with them (the
    /// service takes the last options given).
    private func uploadTranscription(_ body: inout MultipartStream, fields: [MultipartForm.Part]) async throws -> Response {
        var settings = try TranscriptionForm(MultipartForm(parts: fields))
        var upload: TranscriptionUpload?
        let result: TranscribeResult
        do {
            var pending = ByteBuffer()
            while let piece = try await body.nextContent() {
                pending.writeImmutableBuffer(piece)
                guard pending.readableBytes >= Self.uploadChunkBytes else { continue }
                if upload == nil { upload = try await TranscriptionUpload(speech: speech, options: options) }
                try await upload?.send(&pending, request: settings.request, last: false)
            }
            let later = try await body.gatherParts().filter { $0.name != "file" }  // a second file is ignored, as in a gathered form
            if !later.isEmpty { settings = try TranscriptionForm(MultipartForm(parts: fields + later)) }
            guard upload != nil || pending.readableBytes > 0 else { throw OpenAIError.invalid("the form has no 'file'", param: "file") }
            var last: TranscriptionUpload
            if let upload { last = upload } else { last = try await TranscriptionUpload(speech: speech, options: options) }
            upload = last
            try await last.send(&pending, request: settings.request, changed: !later.isEmpty, last: true)
            result = try await last.answer()
        } catch {
            upload?.call.cancel()
            throw error
        }
        if settings.stream {
            // `stream=true` came after the file: the events there are, the result's.
            let done = Self.doneEvent(result)
            return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: ResponseBody { writer in
                try await writer.write(done)
                try await writer.write(ServerSentEvents.done)
                try await writer.finish(nil)
            })
        }
        return try Self.answer(result, settings)
    }

    /// A transcription's answer in the form's `response_format`.
    static func answer(_ result: TranscribeResult, _ settings: TranscriptionForm) throws -> Response {
        switch settings.request.format {
        case .json: return Response.json(["text": result.text.trimmingCharacters(in: .whitespaces)])
        case .verboseJson:
            // OpenAI lists words at the top level (`words`) when they were asked for, beside the segments.
            guard settings.request.wordTimestamps,
                  var object = try? JSONSerialization.jsonObject(with: Data(result.formatted.utf8)) as? [String: Any] else {
                return Response.bytes(Array(result.formatted.utf8), contentType: "application/json")
            }
            object["words"] = ((object["segments"] as? [[String: Any]]) ?? []).flatMap { ($0["words"] as? [[String: Any]]) ?? [] }
            return Response.json(object)
        default: return Response.bytes(Array(result.formatted.utf8), contentType: "text/plain; charset=utf-8")
        }
    }

    /// `stream=true` (OpenAI's streamed transcription): a `transcript.text.delta` event per segment as Whisper decodes
    /// it, with Chorus's `segment` (times, words) beside OpenAI's `delta`, then `transcript.text.done` with the text,
    /// language, duration and every segment.
    func transcribeInEvents(_ transcription: TranscribeRequest) async throws -> Response {
        let events = StreamCursor(speech.transcribe(transcription, options: options))
        let first = try await events.next()
        let body = ResponseBody { writer in
            var event = first
            while let current = event {
                if let segment = current.segment {
                    try await writer.write(ServerSentEvents.event(["type": "transcript.text.delta", "delta": segment.text,
                                                                   "segment": Self.segment(segment)]))
                } else if let result = current.result {
                    try await writer.write(Self.doneEvent(result))
                }
                event = try await events.next()
            }
            try await writer.write(ServerSentEvents.done)
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }

    /// `transcript.text.done`: the text, language, duration and every segment.
    static func doneEvent(_ result: TranscribeResult) -> ByteBuffer {
        ServerSentEvents.event([
            "type": "transcript.text.done", "text": result.text.trimmingCharacters(in: .whitespaces),
            "language": result.language, "duration": result.durationSeconds, "model": result.model,
            "segments": result.segments.map(Self.segment)])
    }

    static func segment(_ segment: Segment) -> [String: Any] {
        ["id": segment.id, "start": segment.start, "end": segment.end, "text": segment.text,
         "words": segment.words.map { ["word": $0.word, "start": $0.start, "end": $0.end, "probability": $0.probability] }]
    }
}
