import ChorusAPI
import ChorusMedia
import ChorusWire
import Foundation
import NIOCore

/// What a method's answers say beyond their count: a chat's tokens, synthesized audio, diffusion steps
/// and previews, a composed step that failed. Chosen by method; other methods' answers are only counted.
enum AnswerMeter: Sendable {
    case plain
    case chat
    case synthesis
    case diffusion
    case compose

    init(method path: String) {
        switch path {
        case Vision.Method.chat.path: self = .chat
        case Speech.Method.synthesize.path: self = .synthesis
        case Diffusion.Method.textToImage.path, Diffusion.Method.imageToImage.path: self = .diffusion
        case Gateway.Method.compose.path: self = .compose
        default: self = .plain
        }
    }

    /// Reads one answer into the outcome being built; `at` is its time since the call was sent.
    /// A failure it finds (a Compose step that failed) is returned.
    func read(_ bytes: ByteBuffer, at time: Duration, into outcome: inout CallOutcome, lastToken: inout Duration?) -> String? {
        switch self {
        case .plain:
            return nil
        case .chat:
            guard let event = try? ChatEvent(wireBuffer: bytes) else { return "undecodable answer" }
            // One event per token, its text empty while a character's bytes are incomplete; the last
            // event (finish reason, usage) carries no token of its own.
            if event.finishReason.isEmpty && event.usage == nil {
                outcome.tokens = (outcome.tokens ?? 0) + 1
                if let lastToken { outcome.tokenGaps.append(time - lastToken) }
                lastToken = time
            }
            // The server's own count, on the last event, wins over counting events.
            if let usage = event.usage, usage.completionTokens > 0 { outcome.tokens = Int(usage.completionTokens) }
            return nil
        case .synthesis:
            guard let chunk = try? AudioChunk(wireBuffer: bytes) else { return "undecodable answer" }
            outcome.audioOutSeconds = (outcome.audioOutSeconds ?? 0) + Self.seconds(of: chunk)
            return nil
        case .diffusion:
            guard let event = try? DiffusionEvent(wireBuffer: bytes) else { return "undecodable answer" }
            if event.progress != nil { outcome.steps = (outcome.steps ?? 0) + 1 }
            if event.preview != nil, outcome.firstPreview == nil { outcome.firstPreview = time }
            if let result = event.result { outcome.images = (outcome.images ?? 0) + result.images.count }
            return nil
        case .compose:
            guard let event = try? ComposeEvent(wireBuffer: bytes) else { return "undecodable answer" }
            guard event.statusCode == 0 else {
                return StatusCode(rawValue: event.statusCode).map { "\($0)" } ?? "status \(event.statusCode)"
            }
            return nil
        }
    }

    /// Seconds of audio in a synthesized chunk (0 when its bytes do not say).
    static func seconds(of chunk: AudioChunk) -> Double {
        switch chunk.format {
        case .pcmF32:
            let frames = chunk.data.count / 4 / max(1, Int(chunk.channels))
            return chunk.sampleRate > 0 ? Double(frames) / Double(chunk.sampleRate) : 0
        default:
            return WAVSeconds.of(Array(chunk.data)) ?? 0
        }
    }
}

/// Seconds of audio in a WAV file, read from its header (no samples decoded); nil for other bytes.
public enum WAVSeconds {
    public static func of(_ bytes: [UInt8]) -> Double? {
        guard let audio = try? WAVCodec.decode(bytes), let first = audio.channels.first else { return nil }
        return Double(first.count) / Double(audio.sampleRate)
    }
}
