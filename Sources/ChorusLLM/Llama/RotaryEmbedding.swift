import ChorusTensor
import Foundation

/// `LlamaRotaryEmbedding`: rotates each head's (i, i + D/2) pairs by position·θᵢ (transformers'
/// `rotate_half` layout, not the interleaved one of the original Meta code).
struct RotaryEmbedding: Sendable {
    let headSize: Int
    /// θᵢ for i < D/2, in float32 as transformers computes them, after any scaling.
    let inverseFrequencies: [Float]

    init(headSize: Int, rope: LlamaConfig.RoPE) {
        self.headSize = headSize
        let half = headSize / 2
        var inverse = (0..<half).map { i in 1 / powf(rope.theta, Float(2 * i) / Float(headSize)) }
        switch rope.scaling {
        case .none:
            break
        case .linear(let factor):
            inverse = inverse.map { $0 / factor }
        case let .llama3(factor, low, high, original):
            // transformers' `_compute_llama3_parameters`: long wavelengths are slowed by `factor`,
            // short ones kept, and the band between blended smoothly.
            let lowWavelength = Float(original) / low, highWavelength = Float(original) / high
            inverse = inverse.map { frequency in
                let wavelength = 2 * Float.pi / frequency
                if wavelength < highWavelength { return frequency }
                if wavelength > lowWavelength { return frequency / factor }
                let smooth = (Float(original) / wavelength - low) / (high - low)
                return (1 - smooth) * frequency / factor + smooth * frequency
            }
        }
        inverseFrequencies = inverse
    }

    /// Rotates rows of `x` [T, heads·D] in place; row t sits at position `start + t`.
    func apply(_ x: inout Tensor, heads: Int, start: Int) {
        let half = headSize / 2, width = heads * headSize, rows = x.count / width
        var cosines = [Float](repeating: 0, count: half), sines = cosines
        x.storage.withUnsafeMutableBufferPointer { p in
            for t in 0..<rows {
                let position = Float(start + t)
                for i in 0..<half {
                    let angle = position * inverseFrequencies[i]
                    cosines[i] = cosf(angle)
                    sines[i] = sinf(angle)
                }
                for h in 0..<heads {
                    let base = t * width + h * headSize
                    for i in 0..<half {
                        let a = p[base + i], b = p[base + half + i]
                        p[base + i] = a * cosines[i] - b * sines[i]
                        p[base + half + i] = b * cosines[i] + a * sines[i]
                    }
                }
            }
        }
    }
}
