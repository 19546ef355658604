import ChorusAPI
import ChorusInput
import ChorusMedia
import ChorusWire
import Foundation

/// Audio of a request → 16 kHz mono samples, or INVALID_ARGUMENT naming what arrived.
struct AudioInput {
    var maxSeconds: Double

    /// Sample rates a request may carry: telephone audio to the highest studio rate.
    static let sampleRates = 1000...384_000

    /// The rate the resampler is built for. Its filter table holds 16000 / gcd(rate, 16000) filters:
    /// 160 for 44.1 kHz, but 16000 for an odd rate such as 48001 Hz, which took seconds to build.
    /// A rate needing more than 1000 filters is taken as the nearest multiple of 16 Hz (at most 1000):
    /// the timing error is below 8 / rate, 0.05% above 16 kHz.
    static func resamplingRate(_ rate: Int) -> Int {
        16000 / gcd(rate, 16000) <= 1000 ? rate : max(16, (rate + 8) / 16 * 16)
    }

    func samples(_ audio: Audio?) throws -> [Float] {
        guard let audio else { throw WireStatus(.invalidArgument, "the request has no audio (set audio.wav, audio.pcm_f32 or audio.media)") }
        let buffer: AudioSamples
        if audio.wav.isEmpty && audio.pcmF32.isEmpty && !audio.media.isEmpty {
            return try mediaTrack(audio.media)
        }
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
            let channels = try Checked.integer(audio.channels, "audio.channels", in: 1...64, zeroMeans: 1)
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
        guard Self.sampleRates.contains(buffer.sampleRate) else {
            throw WireStatus(.invalidArgument, "audio sample rate \(buffer.sampleRate) Hz is outside \(Self.sampleRates.lowerBound) ... \(Self.sampleRates.upperBound) Hz")
        }
        let mono = buffer.downmixedToMono()
        // Float WAV and raw PCM can carry NaN, infinities or 1e30: the log-mel would turn them into NaN
        // logits everywhere. Float audio is nominally ±1; ±1000 is 60 dB beyond full scale.
        if let bad = mono.firstIndex(where: { !($0.magnitude <= 1000) }) {
            throw WireStatus(.invalidArgument, "audio sample \(bad) is \(mono[bad]); samples must be finite and within ±1000 (float audio is nominally ±1)")
        }
        guard buffer.sampleRate != 16000 else { return mono }
        do {
            return try SincResampler(inputRate: Self.resamplingRate(buffer.sampleRate), outputRate: 16000).resample(mono)
        } catch let error as MediaError {
            throw WireStatus(.invalidArgument, "audio: \(error)")
        }
    }
}

extension AudioInput {
    /// A media file's audio track through FFmpeg, mixed to mono and resampled to 16 kHz there. Only the track
    /// is decoded, so a video's frame size is not this service's concern (FFmpeg's own checks still hold).
    func mediaTrack(_ bytes: Data) throws -> [Float] {
        do {
            let file = try VideoFile(bytes, limits: VideoLimits(maxBytes: .max, maxSeconds: maxSeconds, maxFrameSide: 1 << 20))
            let samples = try file.audio(sampleRate: 16000, maxSeconds: maxSeconds)
            if let bad = samples.firstIndex(where: { !$0.isFinite }) {
                throw WireStatus(.invalidArgument, "audio.media: sample \(bad) of the decoded track is \(samples[bad])")
            }
            return samples
        } catch let error as MediaError {
            switch error {
            case .videoLimit(let detail) where detail.hasPrefix("the video is"):
                throw WireStatus(.invalidArgument, "audio.media: " + detail.replacingOccurrences(of: "the video is", with: "the file is") + " (--max-audio-seconds)")
            case .cancelled:
                throw WireStatus(.cancelled, "cancelled")
            default:
                throw WireStatus(.invalidArgument, "audio.media: \(error)")
            }
        }
    }
}

private func gcd(_ a: Int, _ b: Int) -> Int {
    b == 0 ? a : gcd(b, a % b)
}
