import Foundation

/// Seconds between open-loop arrivals: constant, or gamma-distributed with mean 1/rate and shape
/// `burstiness` (vLLM's `--burstiness`; 1 = exponential gaps, a Poisson process). Seeded, so a run's
/// arrivals repeat.
struct ArrivalGaps {
    let rate: Double
    let arrivals: Arrivals
    private var random: SplitMix

    init(rate: Double, arrivals: Arrivals, seed: UInt64) {
        self.rate = rate
        self.arrivals = arrivals
        random = SplitMix(seed: seed)
    }

    mutating func next() -> Double {
        switch arrivals {
        case .constant: return 1 / rate
        case .gamma(let shape): return gamma(shape: shape) / (shape * rate)  // mean shape·scale = 1/rate
        }
    }

    /// A Gamma(shape, 1) draw: Marsaglia and Tsang's method for shape ≥ 1; below 1, the shape + 1 draw
    /// times U^(1/shape).
    mutating func gamma(shape: Double) -> Double {
        if shape < 1 {
            return gamma(shape: shape + 1) * pow(1 - random.unit(), 1 / shape)
        }
        let d = shape - 1.0 / 3, c = 1 / (9 * d).squareRoot()
        while true {
            var x: Double, v: Double
            repeat {
                x = normal()
                v = 1 + c * x
            } while v <= 0
            v = v * v * v
            let u = 1 - random.unit()
            if log(u) < 0.5 * x * x + d - d * v + d * log(v) { return d * v }
        }
    }

    /// A standard normal draw (Box–Muller).
    mutating func normal() -> Double {
        let u1 = 1 - random.unit(), u2 = random.unit()
        return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
    }
}

/// SplitMix64: a small seeded generator.
struct SplitMix {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    mutating func unit() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }
}
