import ChorusTensor
import Foundation

/// VITS (Kim et al. 2021) as transformers' `VitsModel` lays it out, for inference: text encoder →
/// durations → prior expanded to frames → reverse flow → HiFi-GAN. One utterance at a time.
package final class VitsModel: Sendable {
    package struct Output: Sendable {
        package var logDurations: [Float]
        /// Latents after the reverse flow [1, flow_size, frames].
        package var spectrogram: Tensor
        package var waveform: [Float]
    }

    /// How the noise of a call is drawn; nil noise tensors are drawn from `random`.
    package struct Noise: Sendable {
        package var scale: Float
        package var durationScale: Float
        package var lengthScale: Float
        package var seed: UInt64 = 0
        /// Unit-normal draws to use instead of the generator (tests: the reference's recorded noise).
        package var duration: Tensor?
        package var prior: Tensor?

        package init(scale: Float, durationScale: Float, lengthScale: Float, seed: UInt64 = 0,
                     duration: Tensor? = nil, prior: Tensor? = nil) {
            self.scale = scale
            self.durationScale = durationScale
            self.lengthScale = lengthScale
            self.seed = seed
            self.duration = duration
            self.prior = prior
        }
    }

    package let config: VitsConfig
    package let textEncoder: VitsTextEncoder
    package let stochasticDurations: VitsStochasticDurationPredictor?
    package let deterministicDurations: VitsDeterministicDurationPredictor?
    package let flow: VitsResidualCouplingBlock
    package let decoder: VitsHifiGan
    package let speakers: Tensor?

    package init(weights w: WeightSource, config: VitsConfig) throws {
        self.config = config
        textEncoder = try VitsTextEncoder(w, config: config)
        if config.useStochasticDurationPrediction {
            stochasticDurations = try VitsStochasticDurationPredictor(w, config: config)
            deterministicDurations = nil
        } else {
            stochasticDurations = nil
            deterministicDurations = try VitsDeterministicDurationPredictor(w, config: config)
        }
        flow = try VitsResidualCouplingBlock(w, config: config)
        decoder = try VitsHifiGan(w, config: config)
        speakers = config.numSpeakers > 1 ? try w.tensor("embed_speaker.weight") : nil
    }

    /// A Hugging Face VitsModel folder (MMS-TTS layout).
    package convenience init(folder: String) throws {
        let config = try JSONConfig.load(VitsConfig.self, from: (folder as NSString).appendingPathComponent("config.json"))
        try self.init(weights: SafeTensorsCheckpoint(folder: folder), config: config)
    }

    package var sampleRate: Int { config.samplingRate }

    /// A token's frames at most (12 s at 22 kHz and hop 256), and an utterance's (25 minutes; one
    /// longer is cut there, which only scales far beyond any natural speech can reach).
    package static let maxFramesPerToken = 1024
    package static let maxFrames = 1 << 17

    package func synthesize(_ ids: [Int], speaker: Int? = nil, noise: Noise, cancelled: () -> Bool = { false }) -> Output {
        precondition(!ids.isEmpty, "VITS needs at least one token")
        var random = SplitMix64(seed: noise.seed)
        let speakerEmbedding: Tensor? = speakers.map { table in
            let id = min(max(speaker ?? 0, 0), table.shape[0] - 1)
            return table.slice(axis: 0, id..<(id + 1)).reshaped([1, table.shape[1], 1])
        }
        let vocabulary = textEncoder.embedTokens.shape[0]
        let (hidden, means, logVariances) = textEncoder(ids.map { min(max($0, 0), vocabulary - 1) })
        let t = ids.count

        let logDurations: [Float]
        if let stochasticDurations {
            let unit = noise.duration ?? Tensor(shape: [1, 2, t], storage: random.normals(2 * t))
            logDurations = stochasticDurations.logDurations(hidden, speaker: speakerEmbedding, noise: unit * noise.durationScale)
        } else {
            logDurations = deterministicDurations!.logDurations(hidden, speaker: speakerEmbedding)
        }
        // Bounded: noise_w 5 with length_scale 20 can draw e^12 frames for one phoneme, gigabytes of
        // prior and waveform; NaN (broken weights) would trap in Int(). Natural durations are 2–30 frames.
        let durations = logDurations.map { log -> Int in
            let frames = ceilf(expf(log) * noise.lengthScale)
            return frames.isNaN ? 0 : Int(min(max(frames, 0), Float(Self.maxFramesPerToken)))  // checked: NaN out, clamped
        }
        let frames = min(max(1, durations.reduce(0, +)), Self.maxFrames)

        // Each token's prior repeated for its frames.
        let f = config.flowSize
        var prior = [Float](repeating: 0, count: f * frames)
        let unit = noise.prior ?? Tensor(shape: [1, f, frames], storage: random.normals(f * frames))
        var frame = 0
        for (token, count) in durations.enumerated() {
            for _ in 0..<max(count, 0) where frame < frames {
                for c in 0..<f {
                    let mean = means.storage[c * t + token], logVariance = logVariances.storage[c * t + token]
                    prior[c * frames + frame] = mean + unit.storage[c * frames + frame] * expf(logVariance) * noise.scale
                }
                frame += 1
            }
        }
        if cancelled() { return Output(logDurations: logDurations, spectrogram: Tensor(zeros: [1, f, 0]), waveform: []) }
        let spectrogram = flow.reverse(Tensor(shape: [1, f, frames], storage: prior), speaker: speakerEmbedding)
        if cancelled() { return Output(logDurations: logDurations, spectrogram: spectrogram, waveform: []) }
        return Output(logDurations: logDurations, spectrogram: spectrogram, waveform: decoder(spectrogram, speaker: speakerEmbedding))
    }
}
