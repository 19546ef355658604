/// diffusers' `DDIMScheduler` with eta = 0: the deterministic sampler of Song et al., "Denoising Diffusion
/// Implicit Models" (2021), eq. 12 without its noise term.
///
/// Each step predicts x̂_0 from x_t and moves to the previous timestep along the predicted noise:
///   x_{t'} = sqrt(ᾱ_{t'}) · x̂_0 + sqrt(1 − ᾱ_{t'}) · ε̂
/// As in diffusers, t' = t − ⌊T/n⌋ whatever the spacing, so with "linspace" and "trailing" a step lands a little
/// off the next timestep (999 → 899, then the model is asked at 888). Below t' = 0, ᾱ_{t'} is 1 with
/// set_alpha_to_one and ᾱ_0 without.
public struct DDIMScheduler: Scheduler {
    public let timesteps: [Float]
    public let initNoiseSigma: Float = 1
    private let schedule: NoiseSchedule
    private let finalAlphaCumprod: Float
    private let stepRatio: Int
    private let prediction: PredictionType
    /// clip_sample: x̂_0 is clamped to ±this.
    private let clipRange: Float?

    public init(config: SchedulerConfig, steps: Int) throws {
        let train = config.numTrainTimesteps
        try SchedulerError.checkSteps(steps, trainSteps: train)
        try SchedulerError.refuse(config.thresholding, "thresholding")
        try SchedulerError.refuse(config.rescaleBetasZeroSnr, "rescale_betas_zero_snr")
        prediction = try PredictionType(config.predictionType, allowed: [.epsilon, .vPrediction, .sample],
                                        for: "DDIMScheduler")
        schedule = try NoiseSchedule(config)
        // DDIMScheduler's defaults: set_alpha_to_one and clip_sample both true.
        finalAlphaCumprod = config.setAlphaToOne ?? true ? 1 : schedule.alphasCumprod[0]
        clipRange = config.clipSample ?? true ? Float(config.clipSampleRange) : nil
        stepRatio = train / steps

        let descending: [Double]
        switch try TimestepSpacing(config.timestepSpacing ?? "leading") {
        case .linspace: descending = ScheduleMath.linspace(0, Double(train - 1), steps).reversed().map { $0.rounded(.toNearestOrEven) }
        case .leading: descending = ScheduleMath.leading(steps: steps, trainSteps: train, offset: config.stepsOffset)
        case .trailing: descending = ScheduleMath.trailing(steps: steps, trainSteps: train)
        }
        timesteps = descending.map { Float($0) }
        try SchedulerError.checkTimesteps(timesteps, steps: steps, trainSteps: train)
    }

    public func scaleModelInput(_ sample: [Float], step i: Int) -> [Float] { sample }

    /// With a = ᾱ_t, b = 1 − a, the prediction gives x̂_0 and ε̂:
    ///   ε:      x̂_0 = (x_t − sqrt(b) · ε) / sqrt(a)
    ///   sample: ε̂ = (x_t − sqrt(a) · x̂_0) / sqrt(b)
    ///   v:      x̂_0 = sqrt(a) · x_t − sqrt(b) · v,  ε̂ = sqrt(a) · v + sqrt(b) · x_t
    public mutating func step(_ output: [Float], step i: Int, sample: [Float], noise: () -> [Float]) -> [Float] {
        let t = Int(timesteps[i])
        let previous = t - stepRatio
        let a = schedule.alphasCumprod[t]
        let aPrev = previous >= 0 ? schedule.alphasCumprod[previous] : finalAlphaCumprod
        let b = 1 - a
        let rootA = a.squareRoot(), rootB = b.squareRoot()
        let direction = (1 - aPrev).squareRoot(), rootAPrev = aPrev.squareRoot()
        return output.indices.map { k in
            let x = sample[k], m = output[k]
            var original: Float, epsilon: Float
            switch prediction {
            case .epsilon: (original, epsilon) = ((x - rootB * m) / rootA, m)
            case .sample: (original, epsilon) = (m, (x - rootA * m) / rootB)
            case .vPrediction: (original, epsilon) = (rootA * x - rootB * m, rootA * m + rootB * x)
            }
            if let clipRange { original = min(max(original, -clipRange), clipRange) }
            return rootAPrev * original + direction * epsilon
        }
    }

    public func addNoise(_ original: [Float], noise: [Float], step i: Int) -> [Float] {
        schedule.addNoise(original, noise: noise, timestep: Int(timesteps[i]))
    }
}
