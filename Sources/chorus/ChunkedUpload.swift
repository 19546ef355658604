import ArgumentParser
import ChorusAPI
import ChorusWire
import Foundation
import NIOCore

/// How `chorus call` sends media too large for one message: speech.Transcribe with `--file audio.wav=…` (or
/// `audio.pcm_f32`) of a file from `--chunk-above` MiB on goes up through speech.TranscribeUpload instead, the
/// file read and sent a chunk at a time (each send waits for the socket, so memory holds one chunk, not the
/// file), the request's other fields on the first chunk. The answer is TranscribeUpload's TranscribeResult.
struct ChunkedUpload {
    /// Methods with a client-streaming twin that takes the same request in chunks.
    static let twins = [Speech.Method.transcribe.path: Speech.Method.transcribeUpload]

    let method: AnyMethod
    let file: String
    let bytes: Int
    let format: AudioFormat
    let sampleRate: UInt32
    let channels: UInt32
    let options: TranscribeRequest

    /// The upload `chorus call` makes instead of `method`, or nil when the call goes as one message.
    /// `json` is the request as given, before the files are put in.
    static func plan(_ method: AnyMethod, files: [String], json: Any, above: Int) throws -> ChunkedUpload? {
        guard let twin = twins[method.descriptor.path], let upload = ChorusMethods.all[twin.path] else { return nil }
        for entry in files {
            guard let eq = entry.firstIndex(of: "=") else { continue }
            let field = String(entry[..<eq]), path = String(entry[entry.index(after: eq)...])
            guard field == "audio.wav" || field == "audio.pcm_f32" else { continue }
            guard let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int, size >= above else { return nil }
            guard files.count == 1 else {
                throw ValidationError("\(path) is \(size >> 20) MiB, to be sent in chunks: give it as the only --file (or raise --chunk-above)")
            }
            var request = json as? [String: Any] ?? [:]
            let audio = request.removeValue(forKey: "audio") as? [String: Any] ?? [:]
            let options: TranscribeRequest
            do {
                options = try JSONDecoder().decode(TranscribeRequest.self, from: JSONSerialization.data(withJSONObject: request))
            } catch {
                throw ValidationError("the request is not a TranscribeRequest: \(jsonErrorDescription(error))")
            }
            func number(_ key: String) throws -> UInt32 {
                guard let value = audio[key] else { return 0 }
                guard let int = value as? Int, let checked = UInt32(exactly: int) else { throw ValidationError("audio.\(key) must be a whole number from 0 to \(UInt32.max)") }
                return checked
            }
            return ChunkedUpload(method: upload, file: path, bytes: size, format: field == "audio.wav" ? .wav : .pcmF32,
                                 sampleRate: try number("sample_rate"), channels: try number("channels"), options: options)
        }
        return nil
    }

    /// Sends the file in chunks of `chunkBytes`; returns the one answer's payload.
    func run(_ client: WireClient, options callOptions: CallOptions, chunkBytes: Int) async throws -> ByteBuffer {
        guard let handle = FileHandle(forReadingAtPath: file) else { throw ValidationError("cannot read '\(file)'") }
        defer { try? handle.close() }
        let chunks = (bytes + chunkBytes - 1) / chunkBytes
        FileHandle.standardError.write(Data("\(file): \(bytes) bytes, sent in \(chunks) chunks of up to \(chunkBytes) bytes through \(method.descriptor.path)\n".utf8))
        let call = try await client.open(method.descriptor.path, options: callOptions, first: nil, endOfStream: false)
        let sender = Task {
            var sequence: UInt32 = 0
            while let data = try handle.read(upToCount: chunkBytes), !data.isEmpty {
                let chunk = AudioChunk(sequence: sequence, data: data, format: format, sampleRate: sampleRate, channels: channels,
                                       last: Int(sequence) + 1 == chunks, options: sequence == 0 ? options : nil)
                try await call.send(chunk.wireBuffer())
                sequence += 1
            }
            try await call.halfClose()
        }
        var answer: ByteBuffer?
        do {
            for try await part in call.responses where answer == nil { answer = part.payload }
        } catch {
            sender.cancel()
            throw error
        }
        // The server answers once it has every chunk: a send that failed shows in the answer first.
        _ = await sender.result
        guard let answer else { throw WireStatus(.internal, "\(method.descriptor.path) ended with OK but sent no answer") }
        return answer
    }
}
