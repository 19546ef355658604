import ChorusAPI
import ChorusMedia
import ChorusWire
import Foundation

/// Audio of a request → 16 kHz mono samples, or INVALID_ARGUMENT naming what arrived.
struct AudioInput {
    var maxSeconds: Double

    func samples(_ audio: Audio?) throws -> [Float] {
        guard let audio else { throw WireStatus(.invalidArgument, "the request has no audio (set audio.wav or audio.pcm_f32)") }
        let buffer: AudioBuffer
        if !audio.wav.isEmpty {
            do {
                buffer = try WAV.decode(Array(audio.wav))
            } catch let error as MediaError {
                throw WireStatus(.invalidArgument, "audio.wav: \(error)")
            }
        } else if !audio.pcmF32.isEmpty {
            guard audio.sampleRate > 0 else { throw WireStatus(.invalidArgument, "audio.pcm_f32 needs audio.sample_rate") }
            guard audio.pcmF32.count % 4 == 0 else {
                throw WireStatus(.invalidArgument, "audio.pcm_f32 has \(audio.pcmF32.count) bytes, not whole float32 samples")
            }
            let channels = max(1, Int(audio.channels))
            let floats = audio.pcmF32.withUnsafeBytes { raw in
                (0..<(raw.count / 4)).map { Float(bitPattern: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self).littleEndian) }
            }
            buffer = AudioBuffer(sampleRate: Int(audio.sampleRate), channels: channels, samples: floats)
        } else {
            return []  // no samples: an empty transcript, not an error
        }
        guard buffer.duration <= maxSeconds else {
            throw WireStatus(.invalidArgument, String(format: "audio is %.1f s long, the limit is %.0f s (--max-audio-seconds)", buffer.duration, maxSeconds))
        }
        let mono = buffer.mono()
        return buffer.sampleRate == 16000 ? mono : Resampler(from: buffer.sampleRate, to: 16000).process(mono)
    }
}
