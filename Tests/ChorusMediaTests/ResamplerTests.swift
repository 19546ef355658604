import Foundation
import Testing
@testable import ChorusMedia

@Suite("Sinc resampler")
struct ResamplerTests {
    private func sine(frequency: Double, rate: Int, seconds: Double, amplitude: Double = 0.5) -> [Float] {
        (0..<Int(Double(rate) * seconds)).map { Float(amplitude * sin(2 * Double.pi * frequency * Double($0) / Double(rate))) }
    }

    /// Largest deviation from the ideal sine away from the edges, where the filter sees zeros.
    private func error(_ output: [Float], frequency: Double, rate: Int, amplitude: Double = 0.5, margin: Int = 160) -> Float {
        let ideal = (0..<output.count).map { Float(amplitude * sin(2 * Double.pi * frequency * Double($0) / Double(rate))) }
        return maxAbsDifference(Array(output[margin..<(output.count - margin)]), Array(ideal[margin..<(output.count - margin)])).value
    }

    @Test("a 1 kHz sine at 44.1 kHz is still a 1 kHz sine at 16 kHz")
    func downsample44100() throws {
        let resampler = try SincResampler(inputRate: 44_100, outputRate: 16_000)
        let input = sine(frequency: 1000, rate: 44_100, seconds: 1)
        let output = resampler.resample(input)
        #expect(output.count == 16_000)
        let worst = error(output, frequency: 1000, rate: 16_000)
        print("44.1 kHz -> 16 kHz, 1 kHz sine: max error \(worst)")
        #expect(worst < 1e-4)
    }

    @Test("output length is ceil(n × out / in)", arguments: [(44_100, 1001), (48_000, 7), (22_050, 12_345), (8000, 5), (16_000, 100)])
    func length(rate: Int, count: Int) throws {
        let resampler = try SincResampler(inputRate: rate, outputRate: 16_000)
        let expected = Int((Double(count) * 16_000 / Double(rate)).rounded(.up))
        #expect(resampler.resample([Float](repeating: 0, count: count)).count == expected)
    }

    @Test("48 kHz and 22.05 kHz down, 8 kHz up keep a 440 Hz tone", arguments: [48_000, 22_050, 8000])
    func otherRates(rate: Int) throws {
        let audio = try AudioSamples(sampleRate: rate, mono: sine(frequency: 440, rate: rate, seconds: 0.5))
        let resampled = try audio.resampled(to: 16_000)
        #expect(resampled.sampleRate == 16_000 && resampled.frameCount == 8000)
        #expect(error(resampled.channels[0], frequency: 440, rate: 16_000) < 1e-4)
    }

    @Test("a tone above the new Nyquist frequency is removed, not aliased")
    func antiAliasing() throws {
        let input = sine(frequency: 10_000, rate: 44_100, seconds: 0.5)
        var peaks: [Float] = []
        for quality in [SincResampler.Quality.kaiserBest, .kaiserFast, .torchaudioDefault] {
            let output = try SincResampler(inputRate: 44_100, outputRate: 16_000, quality: quality).resample(input)
            peaks.append(output[160..<(output.count - 160)].map(abs).max() ?? 1)
        }
        print("10 kHz tone (amplitude 0.5) after 44.1 -> 16 kHz, kaiserBest / kaiserFast / torchaudioDefault: peaks \(peaks)")
        #expect(peaks[0] < 1e-5)
        #expect(peaks[1] < 1e-3)
    }

    @Test("kaiserBest keeps 6 kHz better than torchaudio's default filter")
    func bestQuality() throws {
        let input = sine(frequency: 6000, rate: 44_100, seconds: 0.5)
        let errors = try [SincResampler.Quality.kaiserBest, .torchaudioDefault].map { quality in
            error(try SincResampler(inputRate: 44_100, outputRate: 16_000, quality: quality).resample(input), frequency: 6000, rate: 16_000)
        }
        print("6 kHz sine, 44.1 -> 16 kHz, kaiserBest / torchaudioDefault: max error \(errors)")
        #expect(errors[0] < 1e-4)
        #expect(errors[0] < errors[1])
    }

    @Test("30 s at 44.1 kHz: how long it takes")
    func timing() throws {
        let input = sine(frequency: 1000, rate: 44_100, seconds: 30)
        for quality in [SincResampler.Quality.kaiserBest, .torchaudioDefault] {
            let start = ContinuousClock.now
            let resampler = try SincResampler(inputRate: 44_100, outputRate: 16_000, quality: quality)
            let output = resampler.resample(input)
            print("resample 30 s 44.1 -> 16 kHz (\(quality.lowpassFilterWidth) zero crossings): \(ContinuousClock.now - start)")
            #expect(output.count == 480_000)
        }
    }

    @Test("the same rate returns the input; bad rates are errors")
    func edges() throws {
        let audio = try AudioSamples(sampleRate: 16_000, mono: [0.1, 0.2])
        #expect(try audio.resampled(to: 16_000) == audio)
        #expect(throws: MediaError.self) { try SincResampler(inputRate: 0, outputRate: 16_000) }
    }
}
