import Foundation
import Testing
@testable import ChorusMedia

@Suite("FFT")
struct FFTTests {
    @Test("batched FFT equals a direct DFT", arguments: [1, 2, 5, 7, 12, 16, 200, 243])
    func matchesDFT(size: Int) {
        let lanes = 3
        let inputRe = garbage(count: size * lanes, seed: 7).map { Float($0) / 128 - 1 }
        let inputIm = garbage(count: size * lanes, seed: 8).map { Float($0) / 128 - 1 }
        var re = inputRe, im = inputIm
        var scratchRe = [Float](repeating: 0, count: size * lanes), scratchIm = scratchRe
        BatchedFFT(size: size, lanes: lanes).forward(re: &re, im: &im, scratchRe: &scratchRe, scratchIm: &scratchIm)
        for lane in 0..<lanes {
            for k in 0..<size {
                var sumRe = 0.0, sumIm = 0.0
                for n in 0..<size {
                    let angle = -2 * Double.pi * Double(k * n % size) / Double(size)
                    let (xr, xi) = (Double(inputRe[n * lanes + lane]), Double(inputIm[n * lanes + lane]))
                    sumRe += xr * cos(angle) - xi * sin(angle)
                    sumIm += xr * sin(angle) + xi * cos(angle)
                }
                let index = k * lanes + lane
                #expect(abs(Double(re[index]) - sumRe) < 1e-4 * Double(size), "size \(size) bin \(k)")
                #expect(abs(Double(im[index]) - sumIm) < 1e-4 * Double(size), "size \(size) bin \(k)")
            }
        }
    }

    @Test("real power spectrum equals |DFT|² of the real frame")
    func realPowerSpectrum() {
        let size = 400, lanes = 4, frames = 6, hop = 37
        let signal = garbage(count: hop * frames + size, seed: 3).map { Float($0) / 128 - 1 }
        let window = [Float](repeating: 1, count: size)
        let spectrum = RealPowerSpectrum(size: size, lanes: lanes)
        var power = [Float](repeating: 0, count: spectrum.bins * frames)
        spectrum.compute(signal: signal, hop: hop, frames: frames, window: window, into: &power)
        for frame in 0..<frames {
            for k in stride(from: 0, through: size / 2, by: 13) {
                var re = 0.0, im = 0.0
                for n in 0..<size {
                    let angle = -2 * Double.pi * Double(k * n) / Double(size)
                    re += Double(signal[frame * hop + n]) * cos(angle)
                    im += Double(signal[frame * hop + n]) * sin(angle)
                }
                let expected = re * re + im * im
                #expect(abs(Double(power[k * frames + frame]) - expected) <= 1e-4 * max(expected, 1), "frame \(frame) bin \(k)")
            }
        }
    }
}
