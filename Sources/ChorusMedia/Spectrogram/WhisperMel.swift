import Foundation

/// Whisper's log-mel spectrogram, as transformers' `WhisperFeatureExtractor` computes it:
/// pad or cut the audio to 30 s, STFT (n_fft 400, hop 160, periodic Hann, centred with reflect
/// padding), power spectrum, drop the last frame, Slaney mel filters, log10(max(x, 1e-10)),
/// max(x, max - 8), (x + 4) / 4. The result is (melBins, 3000), row-major.
public struct WhisperMel: Sendable {
    public static let sampleRate = 16_000
    public static let fftSize = 400
    public static let hopLength = 160
    /// Frames transformed together, one per SIMD lane.
    private static let lanes = 16

    public let melBins: Int
    /// Samples in one window of audio (30 s).
    public let chunkSamples: Int
    public let filters: MelFilterBank
    private let window: [Float]
    private let spectrum: RealPowerSpectrum

    public init(melBins: Int = 80, chunkSeconds: Int = 30) throws {
        guard melBins > 0, chunkSeconds > 0 else {
            throw MediaError.invalidAudio("a mel spectrogram needs mel bins and a duration, got \(melBins) and \(chunkSeconds) s")
        }
        self.melBins = melBins
        self.chunkSamples = chunkSeconds * Self.sampleRate
        self.filters = MelFilterBank(sampleRate: Self.sampleRate, fftSize: Self.fftSize, melBins: melBins)
        // Periodic Hann: the window of length N + 1 without its last point.
        self.window = (0..<Self.fftSize).map { Float(0.5 - 0.5 * cos(2 * Double.pi * Double($0) / Double(Self.fftSize))) }
        self.spectrum = RealPowerSpectrum(size: Self.fftSize, lanes: Self.lanes)
    }

    /// STFT frames (one per hop), after dropping the last.
    public var frameCount: Int { chunkSamples / Self.hopLength }

    /// `samples` are 16 kHz mono; longer input is cut to the chunk, shorter is padded with zeros.
    public func logMel(_ samples: [Float]) -> [Float] {
        let frames = frameCount
        let signal = centeredSignal(samples)
        var power = [Float](repeating: 0, count: spectrum.bins * frames)
        signal.withUnsafeBufferPointer { signal in
            window.withUnsafeBufferPointer { window in
                power.withUnsafeMutableBufferPointer { power in
                    spectrum.compute(
                        signal: signal.baseAddress!, hop: Self.hopLength, frames: frames,
                        window: window.baseAddress!, into: power.baseAddress!)
                }
            }
        }
        var mel = [Float](repeating: 0, count: melBins * frames)
        power.withUnsafeBufferPointer { power in
            mel.withUnsafeMutableBufferPointer { mel in
                filters.apply(power: power.baseAddress!, frames: frames, into: mel.baseAddress!)
            }
        }
        compressLogMel(&mel)
        return mel
    }

    /// The chunk with fftSize / 2 reflected samples on each side, so frame t is centred on
    /// sample t × hop (torch.stft's center=True, pad_mode="reflect").
    private func centeredSignal(_ samples: [Float]) -> [Float] {
        let pad = Self.fftSize / 2
        var signal = [Float](repeating: 0, count: chunkSamples + 2 * pad)
        let kept = min(samples.count, chunkSamples)
        signal.replaceSubrange(pad..<(pad + kept), with: samples[0..<kept])
        // Reflection excludes the edge sample: x[pad], ..., x[1] | x[0], ... | x[n-2], ...
        for i in 1...pad {
            signal[pad - i] = signal[pad + i]
            signal[pad + chunkSamples - 1 + i] = signal[pad + chunkSamples - 1 - i]
        }
        return signal
    }
}

/// log10 with a floor, a dynamic range of 8 (80 dB) below the peak, then scaled to about [-1, 1].
private func compressLogMel(_ mel: inout [Float]) {
    mel.withUnsafeMutableBufferPointer { mel in
        var peak = -Float.infinity
        for i in 0..<mel.count {
            mel[i] = log10(max(mel[i], 1e-10))
            peak = max(peak, mel[i])
        }
        let floor = peak - 8
        for i in 0..<mel.count { mel[i] = (max(mel[i], floor) + 4) / 4 }
    }
}
