import Foundation

/// The one seeded generator of Chorus (SplitMix64): sampled transcripts, VITS noise and diffusion noise
/// repeat for the same seed.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in the open interval (0, 1).
    public mutating func uniform() -> Double {
        (Double(next() >> 11) + 0.5) / Double(1 << 53)
    }

    /// Unit normals by Box–Muller.
    public mutating func normals(_ count: Int) -> [Float] {
        var out: [Float] = []
        out.reserveCapacity(count + 1)
        while out.count < count {
            let r = (-2 * log(uniform())).squareRoot(), theta = 2 * Double.pi * uniform()
            out.append(Float(r * cos(theta)))
            out.append(Float(r * sin(theta)))
        }
        return Array(out.prefix(count))
    }
}
