import ChorusAPI
import ChorusInput
import ChorusWire
import Foundation
import NIOCore

/// A transcription form's fields but the file, checked: the TranscribeRequest they make (without audio) and
/// whether the answer is events.
struct TranscriptionForm {
    var request: TranscribeRequest
    let stream: Bool

    init(_ form: MultipartForm) throws {
        let format: TranscriptFormat
        switch form.first("response_format")?.text ?? "json" {
        case "json": format = .json
        case "text": format = .text
        case "srt": format = .srt
        case "vtt": format = .vtt
        case "verbose_json": format = .verboseJson
        case let other: throw OpenAIError.invalid("response_format '\(other)' is not one of json, text, srt, vtt, verbose_json", param: "response_format")
        }
        // "whisper-1" is what the official examples send: it means the service's default model.
        let model = form.first("model")?.text ?? ""
        var temperature: Float = 0
        if let text = form.first("temperature")?.text {
            guard let value = Double(text) else { throw OpenAIError.invalid("'temperature' must be a number", param: "temperature") }
            temperature = try OpenAIError.checking { try Checked.float(value, "temperature", in: 0...1) }
        }
        let granularities = form.all("timestamp_granularities[]").map(\.text) + form.all("timestamp_granularities").map(\.text)
        request = TranscribeRequest(
            model: model == "whisper-1" ? "" : model, language: form.first("language")?.text ?? "", format: format,
            temperature: temperature, initialPrompt: form.first("prompt")?.text ?? "", wordTimestamps: granularities.contains("word"))
        stream = form.first("stream")?.text == "true"
    }
}

/// One speech.TranscribeUpload through the gateway's router, fed WAV bytes as the HTTP body brings them. Each
/// send waits until the chunk is on its way to the service, so the HTTP client is read no faster than the
/// service takes the audio.
struct TranscriptionUpload {
    let call: ClientCall
    private var sequence: UInt32 = 0

    init(speech: SpeechClient, options: CallOptions) async throws {
        call = try await speech.channel.open(Speech.Method.transcribeUpload.path, options: options, first: nil, endOfStream: false)
    }

    /// Sends `bytes` (emptied) as the next chunk, with `request` on it if it is the first or `changed` (fields that
    /// came after the file); the last half-closes.
    mutating func send(_ bytes: inout ByteBuffer, request: TranscribeRequest, changed: Bool = false, last: Bool) async throws {
        let chunk = AudioChunk(sequence: sequence, data: Data(bytes.readableBytesView), format: .wav, last: last,
                               options: sequence == 0 || changed ? request : nil)
        bytes.clear()
        sequence &+= 1
        do {
            try await call.send(chunk.wireBuffer())
            if last { try await call.halfClose() }
        } catch {
            // A call the service ended (audio too long, a bad request) refuses further chunks: its status says why.
            _ = try await answer()
            throw error
        }
    }

    /// The service's TranscribeResult, or its status as the error.
    func answer() async throws -> TranscribeResult {
        try await withTaskCancellationHandler {
            var answer: ByteBuffer?
            for try await part in call.responses where answer == nil { answer = part.payload }
            guard let answer else {
                throw OpenAIError(.internalServerError, "speech.TranscribeUpload ended without a result", type: "server_error")
            }
            return try TranscribeResult(wireBuffer: answer)
        } onCancel: {
            call.cancel()
        }
    }
}
