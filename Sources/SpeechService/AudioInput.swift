import ChorusAPI
import ChorusMedia
import ChorusWire
import Foundation

/// Audio of a request → 16 kHz mono samples, or INVALID_ARGUMENT naming what arrived.
struct AudioInput {
    var maxSeconds: Double

    func samples(_ audio: Audio?) throws -> [Float] {
        guard let audio else { throw WireStatus(.invalidArgument, "the request has no audio (set audio.wav or audio.pcm_f32)") }
        let buffer: AudioSamples
        if !audio.wav.isEmpty {
            do {
                buffer = try WAVCodec.decode(Array(audio.wav))
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
            guard floats.count % channels == 0 else {
                throw WireStatus(.invalidArgument, "audio.pcm_f32 has \(floats.count) samples, not a whole number of \(channels)-channel frames")
            }
            do {
                buffer = try AudioSamples(sampleRate: Int(audio.sampleRate), channels: (0..<channels).map { c in
                    stride(from: c, to: floats.count, by: channels).map { floats[$0] }
                })
            } catch let error as MediaError {
                throw WireStatus(.invalidArgument, "audio.pcm_f32: \(error)")
            }
        } else {
            return []  // no samples: an empty transcript, not an error
        }
        guard buffer.duration <= maxSeconds else {
            throw WireStatus(.invalidArgument, String(format: "audio is %.1f s long, the limit is %.0f s (--max-audio-seconds)", buffer.duration, maxSeconds))
        }
        let mono = buffer.downmixedToMono()
        guard buffer.sampleRate != 16000 else { return mono }
        do {
            return try SincResampler(inputRate: buffer.sampleRate, outputRate: 16000).resample(mono)
        } catch let error as MediaError {
            throw WireStatus(.invalidArgument, "audio: \(error)")
        }
    }
}
