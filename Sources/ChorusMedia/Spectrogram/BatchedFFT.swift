import Foundation

/// A complex FFT of one size applied to `lanes` independent signals at once (mixed radix,
/// Stockham autosort, any size). Signals are stored lane-fastest: element n of signal l is at
/// `n * lanes + l`. Every butterfly then works on contiguous runs of memory, which the compiler
/// vectorises; spectrogram frames are the natural lanes.
struct BatchedFFT: Sendable {
    let size: Int
    let lanes: Int
    private let stages: [Stage]

    private struct Stage: Sendable {
        let radix: Int
        /// Butterfly groups in this stage (n / radix of the sub-transform).
        let groups: Int
        /// Interleaved sub-transforms: contiguous run length is stride × lanes.
        let stride: Int
        /// Real and imaginary parts of ω_radix^(r·u) · W_n^(j·u), indexed ((j · radix) + u) · radix + r:
        /// the small DFT and the inter-stage twiddle folded into one factor.
        let factorRe: [Float]
        let factorIm: [Float]
    }

    init(size: Int, lanes: Int) {
        precondition(size > 0 && lanes > 0)
        self.size = size
        self.lanes = lanes
        var stages: [Stage] = []
        var n = size
        var stride = 1
        for radix in Self.factors(of: size) {
            let groups = n / radix
            var re: [Float] = [], im: [Float] = []
            for j in 0..<groups {
                for u in 0..<radix {
                    for r in 0..<radix {
                        let angle = -2 * Double.pi * (Double(r * u % radix) / Double(radix) + Double(j * u) / Double(n))
                        re.append(Float(cos(angle)))
                        im.append(Float(sin(angle)))
                    }
                }
            }
            stages.append(Stage(radix: radix, groups: groups, stride: stride, factorRe: re, factorIm: im))
            n = groups
            stride *= radix
        }
        self.stages = stages
    }

    /// Radix-4 first (one pass does the work of two radix-2 passes), then small primes.
    private static func factors(of size: Int) -> [Int] {
        var factors: [Int] = []
        var n = size
        for radix in [4, 2, 3, 5] {
            while n % radix == 0 {
                factors.append(radix)
                n /= radix
            }
        }
        var p = 7
        while n > 1 {
            while n % p == 0 {
                factors.append(p)
                n /= p
            }
            p += 2
        }
        return factors
    }

    /// Forward transform (e^{-2πi kn/N}, no scaling) of `re`/`im` in place; `scratchRe`/`scratchIm`
    /// must hold size × lanes values too.
    func forward(
        re: UnsafeMutablePointer<Float>, im: UnsafeMutablePointer<Float>,
        scratchRe: UnsafeMutablePointer<Float>, scratchIm: UnsafeMutablePointer<Float>
    ) {
        var source = (re, im)
        var target = (scratchRe, scratchIm)
        for stage in stages {
            run(stage, from: source, to: target)
            swap(&source, &target)
        }
        if source.0 != re {
            re.update(from: source.0, count: size * lanes)
            im.update(from: source.1, count: size * lanes)
        }
    }

    /// y[s·(p·j + u)] = Σ_r x[s·(j + r·m)] · factor(j, u, r) for every run of s × lanes values.
    private func run(
        _ stage: Stage,
        from x: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>),
        to y: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>)
    ) {
        let p = stage.radix
        let m = stage.groups
        let run = stage.stride * lanes
        stage.factorRe.withUnsafeBufferPointer { factorRe in
            stage.factorIm.withUnsafeBufferPointer { factorIm in
                for j in 0..<m {
                    for u in 0..<p {
                        let outRe = y.0 + (p * j + u) * run
                        let outIm = y.1 + (p * j + u) * run
                        for r in 0..<p {
                            let f = (j * p + u) * p + r
                            let inRe = UnsafePointer(x.0 + (j + r * m) * run)
                            let inIm = UnsafePointer(x.1 + (j + r * m) * run)
                            if r == 0 {
                                multiply(inRe, inIm, by: factorRe[f], factorIm[f], into: outRe, outIm, count: run)
                            } else {
                                multiplyAdd(inRe, inIm, by: factorRe[f], factorIm[f], into: outRe, outIm, count: run)
                            }
                        }
                    }
                }
            }
        }
    }
}

@inline(__always)
private func multiply(
    _ aRe: UnsafePointer<Float>, _ aIm: UnsafePointer<Float>, by wRe: Float, _ wIm: Float,
    into outRe: UnsafeMutablePointer<Float>, _ outIm: UnsafeMutablePointer<Float>, count: Int
) {
    for e in 0..<count {
        outRe[e] = aRe[e] * wRe - aIm[e] * wIm
        outIm[e] = aRe[e] * wIm + aIm[e] * wRe
    }
}

@inline(__always)
private func multiplyAdd(
    _ aRe: UnsafePointer<Float>, _ aIm: UnsafePointer<Float>, by wRe: Float, _ wIm: Float,
    into outRe: UnsafeMutablePointer<Float>, _ outIm: UnsafeMutablePointer<Float>, count: Int
) {
    for e in 0..<count {
        outRe[e] += aRe[e] * wRe - aIm[e] * wIm
        outIm[e] += aRe[e] * wIm + aIm[e] * wRe
    }
}
