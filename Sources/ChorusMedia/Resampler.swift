import Foundation

/// Band-limited resampling with a Kaiser-windowed sinc (as torchaudio's `sinc_interp_kaiser`): the ratio
/// is reduced to L/M, and one filter per output phase is precomputed.
public struct Resampler: Sendable {
    public let inputRate: Int
    public let outputRate: Int
    private let up: Int
    private let down: Int
    private let halfWidth: Int
    private let filters: [[Float]]

    /// `zeroCrossings` sets the filter length (quality); `rolloff` keeps the passband below Nyquist.
    public init(from inputRate: Int, to outputRate: Int, zeroCrossings: Int = 24, rolloff: Double = 0.945, beta: Double = 14.77) {
        self.inputRate = inputRate
        self.outputRate = outputRate
        let g = gcd(inputRate, outputRate)
        up = outputRate / g
        down = inputRate / g
        let cutoff = min(1.0, Double(outputRate) / Double(inputRate)) * rolloff
        halfWidth = Int((Double(zeroCrossings) / cutoff).rounded(.up))
        let width = halfWidth
        filters = (0..<(outputRate / g)).map { phase in
            // Output sample at input position n·down/up = k + frac.
            let frac = Double(phase * (inputRate / g) % (outputRate / g)) / Double(outputRate / g)
            let taps = (-width + 1...width).map { j -> Double in
                let t = Double(j) - frac
                let x = t * cutoff
                let sinc = x == 0 ? 1 : sin(Double.pi * x) / (Double.pi * x)
                let r = t / Double(width)
                let window = abs(r) >= 1 ? 0 : besselI0(beta * (1 - r * r).squareRoot()) / besselI0(beta)
                return cutoff * sinc * window
            }
            return taps.map { Float($0) }
        }
    }

    public func process(_ input: [Float]) -> [Float] {
        guard inputRate != outputRate else { return input }
        let outputCount = Int((Int64(input.count) * Int64(up) + Int64(down) - 1) / Int64(down))
        var output = [Float](repeating: 0, count: outputCount)
        input.withUnsafeBufferPointer { x in
            output.withUnsafeMutableBufferPointer { y in
                for i in 0..<outputCount {
                    let position = i * down
                    let k = position / up
                    let taps = filters[i % up]
                    var sum: Float = 0
                    let first = k - halfWidth + 1
                    for (j, weight) in taps.enumerated() {
                        let index = first + j
                        if index >= 0 && index < x.count { sum += x[index] * weight }
                    }
                    y[i] = sum
                }
            }
        }
        return output
    }
}

private func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }

/// Modified Bessel function of the first kind, order 0 (power series; converges fast for the betas used).
private func besselI0(_ x: Double) -> Double {
    var sum = 1.0, term = 1.0
    let q = x * x / 4
    for k in 1..<64 {
        term *= q / Double(k * k)
        sum += term
        if term < sum * 1e-17 { break }
    }
    return sum
}
