import CBLAS
import ChorusTensor
import Foundation

/// Whisper's log-mel spectrogram, matching transformers' WhisperFeatureExtractor: audio zero-padded to
/// 30 s, STFT (n_fft 400, hop 160, periodic Hann, centred with reflect padding), power, Slaney mel
/// filters, log10 floored at 1e-10, clamped to max − 8, then (x + 4) / 4. The DFT is one sgemm over all
/// frames against a precomputed cos/sin basis.
public struct WhisperMel: Sendable {
    public static let sampleRate = 16_000
    public static let nFFT = 400
    public static let hop = 160
    public static let chunkSamples = 30 * sampleRate
    public static let frames = chunkSamples / hop

    public let melCount: Int
    /// [201, melCount], as transformers' `mel_filters`.
    public let filters: [Float]
    private let basis: [Float]  // [400, 2·201]: cos then −sin, Hann window folded in

    public init(melCount: Int = 80) {
        self.melCount = melCount
        filters = Self.slaneyFilters(bins: Self.nFFT / 2 + 1, mels: melCount, sampleRate: Self.sampleRate)
        let bins = Self.nFFT / 2 + 1
        var basis = [Float](repeating: 0, count: Self.nFFT * 2 * bins)
        for n in 0..<Self.nFFT {
            let window = 0.5 - 0.5 * cos(2 * Double.pi * Double(n) / Double(Self.nFFT))
            for k in 0..<bins {
                let angle = 2 * Double.pi * Double(k * n % Self.nFFT) / Double(Self.nFFT)
                basis[n * 2 * bins + k] = Float(window * cos(angle))
                basis[n * 2 * bins + bins + k] = Float(-window * sin(angle))
            }
        }
        self.basis = basis
    }

    /// 16 kHz mono samples (the first 30 s are used) → [melCount, 3000].
    public func logMel(_ samples: [Float]) -> Tensor {
        let bins = Self.nFFT / 2 + 1
        let padded = Self.chunkSamples
        let half = Self.nFFT / 2
        // Centre: reflect-pad n_fft/2 on each side of the zero-padded 30 s chunk.
        var signal = [Float](repeating: 0, count: padded + 2 * half)
        let audio = Array(samples.prefix(padded)) + [Float](repeating: 0, count: max(0, padded - samples.count))
        for i in 0..<padded { signal[half + i] = audio[i] }
        for i in 0..<half {
            signal[half - 1 - i] = audio[i + 1]
            signal[half + padded + i] = audio[padded - 2 - i]
        }
        let frameCount = Self.frames  // the last STFT frame is dropped, as Whisper does
        var frames = [Float](repeating: 0, count: frameCount * Self.nFFT)
        for f in 0..<frameCount {
            frames.replaceSubrange((f * Self.nFFT)..<((f + 1) * Self.nFFT), with: signal[(f * Self.hop)..<(f * Self.hop + Self.nFFT)])
        }
        var spectrum = [Float](repeating: 0, count: frameCount * 2 * bins)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(frameCount), Int32(2 * bins), Int32(Self.nFFT),
                    1, frames, Int32(Self.nFFT), basis, Int32(2 * bins), 0, &spectrum, Int32(2 * bins))
        var power = [Float](repeating: 0, count: frameCount * bins)
        for f in 0..<frameCount {
            for k in 0..<bins {
                let re = spectrum[f * 2 * bins + k], im = spectrum[f * 2 * bins + bins + k]
                power[f * bins + k] = re * re + im * im
            }
        }
        // mel [frames, mels] = power [frames, bins] · filters [bins, mels]
        var mel = [Float](repeating: 0, count: frameCount * melCount)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(frameCount), Int32(melCount), Int32(bins),
                    1, power, Int32(bins), filters, Int32(melCount), 0, &mel, Int32(melCount))
        var top = -Float.infinity
        for i in mel.indices {
            mel[i] = log10(max(mel[i], 1e-10))
            top = max(top, mel[i])
        }
        var out = [Float](repeating: 0, count: melCount * frameCount)
        for f in 0..<frameCount {
            for m in 0..<melCount {
                out[m * frameCount + f] = (max(mel[f * melCount + m], top - 8) + 4) / 4
            }
        }
        return Tensor(shape: [melCount, frameCount], storage: out)
    }

    /// librosa/transformers Slaney mel filters (mel_scale "slaney", norm "slaney"), [bins, mels].
    static func slaneyFilters(bins: Int, mels: Int, sampleRate: Int) -> [Float] {
        func hzToMel(_ f: Double) -> Double {
            f < 1000 ? 3 * f / 200 : 15 + log(f / 1000) * 27 / log(6.4)
        }
        func melToHz(_ m: Double) -> Double {
            m < 15 ? 200 * m / 3 : 1000 * exp((m - 15) * log(6.4) / 27)
        }
        let maxMel = hzToMel(Double(sampleRate) / 2)
        let points = (0..<(mels + 2)).map { melToHz(maxMel * Double($0) / Double(mels + 1)) }
        let fftFrequencies = (0..<bins).map { Double($0) * Double(sampleRate) / Double(2 * (bins - 1)) }
        var filters = [Float](repeating: 0, count: bins * mels)
        for m in 0..<mels {
            let (lower, centre, upper) = (points[m], points[m + 1], points[m + 2])
            let norm = 2 / (upper - lower)
            for (k, f) in fftFrequencies.enumerated() {
                let rising = (f - lower) / (centre - lower)
                let falling = (upper - f) / (upper - centre)
                filters[k * mels + m] = Float(max(0, min(rising, falling)) * norm)
            }
        }
        return filters
    }
}
