import Foundation

/// Triangular filters on Slaney's mel scale with Slaney area normalisation, as
/// `librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax, htk=False, norm="slaney")` and
/// transformers' `mel_filter_bank(..., norm="slaney", mel_scale="slaney")`. Computed in Double,
/// stored in Float.
public struct MelFilterBank: Sendable {
    public let melBins: Int
    /// n_fft / 2 + 1.
    public let frequencyBins: Int
    /// Row-major (melBins, frequencyBins).
    public let weights: [Float]
    /// The nonzero part of each filter, so applying the bank skips the zeros.
    let nonzero: [Range<Int>]

    public init(sampleRate: Int, fftSize: Int, melBins: Int, minFrequency: Double = 0, maxFrequency: Double? = nil) {
        let frequencyBins = fftSize / 2 + 1
        let nyquist = Double(sampleRate) / 2
        let binFrequencies = (0..<frequencyBins).map { Double($0) * nyquist / Double(frequencyBins - 1) }
        let lowMel = slaneyMel(hertz: minFrequency)
        let highMel = slaneyMel(hertz: maxFrequency ?? nyquist)
        // numpy.linspace(lowMel, highMel, melBins + 2): the last point is exactly highMel.
        let edges = (0..<(melBins + 2)).map { i in
            slaneyHertz(mel: i == melBins + 1 ? highMel : lowMel + Double(i) * (highMel - lowMel) / Double(melBins + 1))
        }

        var weights = [Float](repeating: 0, count: melBins * frequencyBins)
        var nonzero: [Range<Int>] = []
        for m in 0..<melBins {
            let (left, center, right) = (edges[m], edges[m + 1], edges[m + 2])
            // Each filter has unit area: 2 / (bandwidth in Hz).
            let norm = 2 / (right - left)
            var used: [Int] = []
            for (k, frequency) in binFrequencies.enumerated() {
                let rising = (frequency - left) / (center - left)
                let falling = (right - frequency) / (right - center)
                let weight = max(0, min(rising, falling)) * norm
                if weight > 0 {
                    weights[m * frequencyBins + k] = Float(weight)
                    used.append(k)
                }
            }
            nonzero.append((used.first ?? 0)..<((used.last ?? -1) + 1))
        }
        self.melBins = melBins
        self.frequencyBins = frequencyBins
        self.weights = weights
        self.nonzero = nonzero
    }

    /// mel[m, t] = Σ_k weights[m, k] · power[k, t], for `frames` columns in each row.
    func apply(power: UnsafePointer<Float>, frames: Int, into mel: UnsafeMutablePointer<Float>) {
        weights.withUnsafeBufferPointer { weights in
            for m in 0..<melBins {
                let row = mel + m * frames
                row.update(repeating: 0, count: frames)
                for k in nonzero[m] {
                    let weight = weights[m * frequencyBins + k]
                    let bin = power + k * frames
                    for t in 0..<frames { row[t] += weight * bin[t] }
                }
            }
        }
    }
}

// Slaney's mel scale (Auditory Toolbox): linear below 1 kHz, logarithmic above.
private let linearHertzPerMel = 200.0 / 3
private let logRegionStartHertz = 1000.0
private let logRegionStartMel = logRegionStartHertz / linearHertzPerMel
private let logStep = log(6.4) / 27

func slaneyMel(hertz: Double) -> Double {
    hertz < logRegionStartHertz
        ? hertz / linearHertzPerMel
        : logRegionStartMel + log(hertz / logRegionStartHertz) / logStep
}

func slaneyHertz(mel: Double) -> Double {
    mel < logRegionStartMel
        ? mel * linearHertzPerMel
        : logRegionStartHertz * exp(logStep * (mel - logRegionStartMel))
}
