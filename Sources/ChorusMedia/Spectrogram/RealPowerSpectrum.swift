import Foundation

/// |FFT|² of real frames of even length N, through a complex FFT of N/2 points: the frame is
/// packed as z[n] = x[2n] + i·x[2n+1] and the two interleaved half spectra are separated
/// afterwards. Frames are transformed `lanes` at a time (see BatchedFFT).
struct RealPowerSpectrum: Sendable {
    let size: Int
    let lanes: Int
    /// N/2 + 1 non-negative frequencies.
    var bins: Int { size / 2 + 1 }
    private let fft: BatchedFFT
    /// e^{-2πik/N} for k in 0...N/2, to separate the half spectra.
    private let twiddleRe: [Float]
    private let twiddleIm: [Float]

    init(size: Int, lanes: Int) {
        precondition(size % 2 == 0, "the real FFT needs an even size")
        self.size = size
        self.lanes = lanes
        self.fft = BatchedFFT(size: size / 2, lanes: lanes)
        let angles = (0...(size / 2)).map { -2 * Double.pi * Double($0) / Double(size) }
        self.twiddleRe = angles.map { Float(cos($0)) }
        self.twiddleIm = angles.map { Float(sin($0)) }
    }

    /// Frame t is `window` × signal[t·hop ..< t·hop + size]; its power at bin k goes to
    /// `output[k · frames + t]` (frequency-major, ready for the mel filters).
    func compute(
        signal: UnsafePointer<Float>, hop: Int, frames: Int, window: UnsafePointer<Float>,
        into output: UnsafeMutablePointer<Float>
    ) {
        let half = size / 2
        let count = half * lanes
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: 4 * count)
        defer { buffer.deallocate() }
        let (re, im) = (buffer, buffer + count)
        let (scratchRe, scratchIm) = (buffer + 2 * count, buffer + 3 * count)

        for firstFrame in stride(from: 0, to: frames, by: lanes) {
            let active = min(lanes, frames - firstFrame)
            // Unused lanes of the last batch transform zeros and are not written out.
            if active < lanes { buffer.update(repeating: 0, count: 2 * count) }
            for lane in 0..<active {
                let frame = signal + (firstFrame + lane) * hop
                for n in 0..<half {
                    re[n * lanes + lane] = frame[2 * n] * window[2 * n]
                    im[n * lanes + lane] = frame[2 * n + 1] * window[2 * n + 1]
                }
            }
            fft.forward(re: re, im: im, scratchRe: scratchRe, scratchIm: scratchIm)
            for k in 0...half {
                separateHalfSpectra(
                    k: k, re: re, im: im, lanes: lanes, active: active,
                    twiddle: (twiddleRe[k], twiddleIm[k]), into: output + k * frames + firstFrame)
            }
        }
    }

    /// With Z = FFT(z): E = (Z[k] + conj Z[M-k]) / 2 is the spectrum of the even samples,
    /// O = (Z[k] - conj Z[M-k]) / 2i that of the odd ones, and X[k] = E + e^{-2πik/N}·O.
    private func separateHalfSpectra(
        k: Int, re: UnsafePointer<Float>, im: UnsafePointer<Float>, lanes: Int, active: Int,
        twiddle: (re: Float, im: Float), into power: UnsafeMutablePointer<Float>
    ) {
        let half = size / 2
        let a = (k % half) * lanes
        let b = ((half - k) % half) * lanes
        for lane in 0..<active {
            let evenRe = 0.5 * (re[a + lane] + re[b + lane])
            let evenIm = 0.5 * (im[a + lane] - im[b + lane])
            let oddRe = 0.5 * (im[a + lane] + im[b + lane])
            let oddIm = -0.5 * (re[a + lane] - re[b + lane])
            let xRe = evenRe + twiddle.re * oddRe - twiddle.im * oddIm
            let xIm = evenIm + twiddle.re * oddIm + twiddle.im * oddRe
            power[lane] = xRe * xRe + xIm * xIm
        }
    }
}
