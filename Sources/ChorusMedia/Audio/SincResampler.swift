import Foundation

/// Band-limited sample-rate conversion with a Kaiser-windowed sinc, computed as torchaudio's
/// `functional.resample(..., resampling_method="sinc_interp_kaiser")`: the rates are reduced by
/// their gcd, the cutoff is `rolloff` × the lower Nyquist frequency, and each of the `outputStep`
/// output phases has its own precomputed filter.
public struct SincResampler: Sendable {
    public struct Quality: Sendable {
        /// Zero crossings of the sinc on each side of the centre.
        public var lowpassFilterWidth: Int
        public var rolloff: Double
        public var beta: Double

        public init(lowpassFilterWidth: Int, rolloff: Double, beta: Double) {
            self.lowpassFilterWidth = lowpassFilterWidth
            self.rolloff = rolloff
            self.beta = beta
        }

        /// resampy's / librosa's "kaiser_best" (the setting torchaudio documents as its match):
        /// flat to 0.9 × the new Nyquist frequency and about -140 dB of aliasing. ~370 taps
        /// per output sample for 44.1 -> 16 kHz.
        public static let kaiserBest = Quality(lowpassFilterWidth: 64, rolloff: 0.9475937167399596, beta: 14.769656459379492)
        /// resampy's "kaiser_fast": a quarter of the work, softer cutoff at 0.85 × Nyquist.
        public static let kaiserFast = Quality(lowpassFilterWidth: 16, rolloff: 0.85, beta: 8.555504641634386)
        /// torchaudio's `resample` defaults. Cheap, but its short filter lets tones up to about
        /// 1.3 × the new Nyquist frequency alias back at around -20 dB.
        public static let torchaudioDefault = Quality(lowpassFilterWidth: 6, rolloff: 0.99, beta: 14.769656459379492)
    }

    public let inputRate: Int
    public let outputRate: Int
    /// Input samples per `outputStep` output samples.
    private let inputStep: Int
    private let outputStep: Int
    /// For output phase p: the filter starts `phaseOffset[p]` input samples from the block start
    /// and has `phaseLength[p]` taps, stored from `phaseStart[p]` in `taps`.
    private let phaseOffset: [Int]
    private let phaseStart: [Int]
    private let phaseLength: [Int]
    private let taps: [Float]

    /// The most filter taps a resampler precomputes (64 MB of floats).
    public static let maxTaps = 16 << 20

    public init(inputRate: Int, outputRate: Int, quality: Quality = .kaiserBest) throws {
        guard inputRate > 0, outputRate > 0 else {
            throw MediaError.invalidAudio("cannot resample from \(inputRate) Hz to \(outputRate) Hz")
        }
        let divisor = gcd(inputRate, outputRate)
        let inputStep = inputRate / divisor
        let outputStep = outputRate / divisor
        let width = quality.lowpassFilterWidth
        let lowpass = Double(width)
        let cutoff = Double(min(inputStep, outputStep)) * quality.rolloff
        let reach = Int((lowpass * Double(inputStep) / cutoff).rounded(.up))
        // One filter per output phase: an odd rate (48001 Hz → 16 kHz: 16000 phases of 400 taps) makes
        // the table, and the seconds spent filling it, grow with the rates' factors.
        let (tapCount, overflow) = outputStep.multipliedReportingOverflow(by: 2 * reach + 1)
        guard !overflow, tapCount <= Self.maxTaps else {
            throw MediaError.invalidAudio("resampling \(inputRate) Hz to \(outputRate) Hz needs \(outputStep) filters of \(2 * reach + 1) taps, more than the limit of \(Self.maxTaps) taps; round the rate (a multiple of 16 Hz needs at most 1000 filters for 16 kHz)")
        }
        let windowScale = 1 / besselI0(quality.beta)

        var offsets: [Int] = [], starts: [Int] = [], lengths: [Int] = [], taps: [Float] = []
        for phase in 0..<outputStep {
            starts.append(taps.count)
            var offset: Int?
            // Only the taps within the window around this phase's instant can be non-zero.
            let centre = Double(phase) * Double(inputStep) / Double(outputStep)
            let halfWidth = lowpass * Double(inputStep) / cutoff
            let first = max(-reach, Int((centre - halfWidth).rounded(.down)) - 1)
            let last = min(reach + inputStep, Int((centre + halfWidth).rounded(.up)) + 2)
            for k in first..<max(first, last) {
                // Distance from the output instant, in cycles of the cutoff frequency.
                let t = (Double(k) / Double(inputStep) - Double(phase) / Double(outputStep)) * cutoff
                // Outside the window torchaudio's taps are zero to within 1e-20.
                guard abs(t) < lowpass else { continue }
                if offset == nil { offset = k }
                let window = besselI0(quality.beta * (1 - (t / lowpass) * (t / lowpass)).squareRoot()) * windowScale
                let sinc = t == 0 ? 1 : sin(Double.pi * t) / (Double.pi * t)
                taps.append(Float(sinc * window * cutoff / Double(inputStep)))
            }
            offsets.append(offset ?? 0)
            lengths.append(taps.count - starts[phase])
        }
        self.inputRate = inputRate
        self.outputRate = outputRate
        self.inputStep = inputStep
        self.outputStep = outputStep
        self.phaseOffset = offsets
        self.phaseStart = starts
        self.phaseLength = lengths
        self.taps = taps
    }

    /// ceil(count × outputRate / inputRate) samples, as torchaudio returns.
    public func outputCount(forInputCount count: Int) -> Int {
        (count * outputStep + inputStep - 1) / inputStep
    }

    /// Samples outside the input are taken as zero.
    public func resample(_ input: [Float]) -> [Float] {
        let count = outputCount(forInputCount: input.count)
        return [Float](unsafeUninitializedCapacity: count) { output, initialized in
            input.withUnsafeBufferPointer { input in
                taps.withUnsafeBufferPointer { taps in
                    for n in 0..<count {
                        let phase = n % outputStep
                        let first = (n / outputStep) * inputStep + phaseOffset[phase]
                        // Clip the filter to the input instead of padding the input.
                        let lower = max(0, -first)
                        let upper = min(phaseLength[phase], input.count - first)
                        output[n] = lower < upper
                            ? dot(taps.baseAddress! + phaseStart[phase] + lower, input.baseAddress! + first + lower, count: upper - lower)
                            : 0
                    }
                }
            }
            initialized = count
        }
    }
}

extension AudioSamples {
    /// Every channel resampled to `rate`.
    public func resampled(to rate: Int, quality: SincResampler.Quality = .kaiserBest) throws -> AudioSamples {
        if rate == sampleRate { return self }
        let resampler = try SincResampler(inputRate: sampleRate, outputRate: rate, quality: quality)
        return try AudioSamples(sampleRate: rate, channels: channels.map(resampler.resample))
    }
}

/// Eight running sums: one accumulator would make every addition wait for the previous one, and
/// the compiler may not reorder float additions to vectorise a single sum by itself.
@inline(__always)
private func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
    var s0: Float = 0, s1: Float = 0, s2: Float = 0, s3: Float = 0
    var s4: Float = 0, s5: Float = 0, s6: Float = 0, s7: Float = 0
    var i = 0
    while i + 8 <= count {
        s0 += a[i] * b[i]
        s1 += a[i + 1] * b[i + 1]
        s2 += a[i + 2] * b[i + 2]
        s3 += a[i + 3] * b[i + 3]
        s4 += a[i + 4] * b[i + 4]
        s5 += a[i + 5] * b[i + 5]
        s6 += a[i + 6] * b[i + 6]
        s7 += a[i + 7] * b[i + 7]
        i += 8
    }
    while i < count {
        s0 += a[i] * b[i]
        i += 1
    }
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
}

/// Modified Bessel function of the first kind, order 0, by its power series (converges quickly for
/// the betas used by Kaiser windows).
func besselI0(_ x: Double) -> Double {
    var sum = 1.0
    var term = 1.0
    let quarterSquare = x * x / 4
    var k = 1.0
    while term > sum * 1e-17 {
        term *= quarterSquare / (k * k)
        sum += term
        k += 1
    }
    return sum
}

private func gcd(_ a: Int, _ b: Int) -> Int {
    b == 0 ? a : gcd(b, a % b)
}
