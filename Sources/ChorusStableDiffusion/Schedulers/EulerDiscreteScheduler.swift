/// diffusers' `EulerDiscreteScheduler` (s_churn = 0): Euler's method on the probability-flow ODE of Karras et al.,
/// "Elucidating the Design Space of Diffusion-Based Generative Models" (2022), Algorithm 2 without churn.
///
/// The sample lives at noise level σ (x = x_0 + σ · ε, so text-to-image starts at σ_max); the UNet, trained on
/// sqrt(ᾱ)-scaled samples, is given x / sqrt(σ² + 1). Each step:
///   x̂_0 = x − σ_i · ε̂ (from the model),  d = (x − x̂_0) / σ_i,  x ← x + d · (σ_{i+1} − σ_i)
/// σ_i is σ_t interpolated at the (fractional) timestep t_i; with use_karras_sigmas the σ_i follow Karras' ρ = 7
/// spacing between the first and last σ of the plain schedule, and t_i are their timesteps, fractional too.
public struct EulerDiscreteScheduler: Scheduler {
    public let timesteps: [Float]
    /// σ_0 … σ_{n−1}, then 0.
    public let sigmas: [Float]
    public let initNoiseSigma: Float
    private let prediction: PredictionType

    public init(config: SchedulerConfig, steps: Int) throws {
        let train = config.numTrainTimesteps
        try SchedulerError.checkSteps(steps, trainSteps: train)
        try SchedulerError.refuse(config.rescaleBetasZeroSnr, "rescale_betas_zero_snr")
        try SchedulerError.refuse(config.useExponentialSigmas, "use_exponential_sigmas")
        try SchedulerError.refuse(config.useBetaSigmas, "use_beta_sigmas")
        try SchedulerError.refuse(config.interpolationType != "linear", "interpolation_type \"\(config.interpolationType)\"")
        try SchedulerError.refuse(config.timestepType != "discrete", "timestep_type \"\(config.timestepType)\"")
        try SchedulerError.refuse(config.finalSigmasType != "zero", "final_sigmas_type \"\(config.finalSigmasType)\"")
        // diffusers takes "original_sample" as a synonym of "sample" here.
        let predictionType = config.predictionType == "original_sample" ? "sample" : config.predictionType
        prediction = try PredictionType(predictionType, allowed: [.epsilon, .vPrediction, .sample],
                                        for: "EulerDiscreteScheduler")
        let trainSigmas = try NoiseSchedule(config).sigmas
        let spacing = try TimestepSpacing(config.timestepSpacing ?? "linspace")

        var times = Self.timesteps(spacing, steps: steps, trainSteps: train, offset: config.stepsOffset)
        var levels = times.map { ScheduleMath.interp(Double($0), trainSigmas) }
        if config.useKarrasSigmas {
            // The ρ-spaced σ run between the ends of the schedule just made (so they depend on the spacing).
            levels = ScheduleMath.karrasSigmas(min: config.sigmaMin ?? levels[levels.count - 1],
                                               max: config.sigmaMax ?? levels[0], count: steps)
            times = ScheduleMath.timesteps(ofSigmas: levels, trainSigmas: trainSigmas).map { Float($0) }
        }
        timesteps = times
        sigmas = levels.map { Float($0) } + [0]
        initNoiseSigma = Self.initNoiseSigma(sigmas, spacing: spacing)
    }

    /// The spacings in float32: "linspace" is not rounded here, so its timesteps are fractional (999, 957.375, …).
    package static func timesteps(_ spacing: TimestepSpacing, steps: Int, trainSteps: Int, offset: Int) -> [Float] {
        switch spacing {
        case .linspace: ScheduleMath.linspace(0, Double(trainSteps - 1), steps).reversed().map { Float($0) }
        case .leading: ScheduleMath.leading(steps: steps, trainSteps: trainSteps, offset: offset).map { Float($0) }
        case .trailing: ScheduleMath.trailing(steps: steps, trainSteps: trainSteps).map { Float($0) }
        }
    }

    /// The unit noise scale of the first sample: σ_max for "linspace" and "trailing", sqrt(σ_max² + 1) for
    /// "leading" (the spread of x_0 + σ·ε for a unit-variance x_0: diffusers' nod to the first "leading"
    /// timestep, 961 at 25 steps, not being pure noise).
    package static func initNoiseSigma(_ sigmas: [Float], spacing: TimestepSpacing) -> Float {
        let maxSigma = sigmas.max() ?? 0
        return spacing == .leading ? (maxSigma * maxSigma + 1).squareRoot() : maxSigma
    }

    public func scaleModelInput(_ sample: [Float], step i: Int) -> [Float] {
        Self.unitVariance(sample, sigma: sigmas[i])
    }

    /// x / sqrt(σ² + 1): a sample at noise level σ brought back to the scale the UNet was trained on.
    package static func unitVariance(_ sample: [Float], sigma: Float) -> [Float] {
        let scale = (sigma * sigma + 1).squareRoot()
        return sample.map { $0 / scale }
    }

    public mutating func step(_ output: [Float], step i: Int, sample: [Float], noise: () -> [Float]) -> [Float] {
        let sigma = sigmas[i]
        let dt = sigmas[i + 1] - sigma
        return output.indices.map { k in
            let x = sample[k]
            let original = Self.predictedOriginal(output[k], sample: x, sigma: sigma, prediction: prediction)
            let derivative = (x - original) / sigma
            return x + derivative * dt
        }
    }

    /// x̂_0 at noise level σ for the Euler family: ε: x − σ · ε̂;  v: v · (−σ / sqrt(σ² + 1)) + x / (σ² + 1);
    /// sample: the output itself.
    package static func predictedOriginal(_ output: Float, sample x: Float, sigma: Float, prediction: PredictionType) -> Float {
        switch prediction {
        case .epsilon: x - sigma * output
        case .vPrediction: output * (-sigma / (sigma * sigma + 1).squareRoot()) + x / (sigma * sigma + 1)
        case .sample: output
        }
    }

    /// img2img starts at noise level σ_i: x_0 + σ_i · ε.
    public func addNoise(_ original: [Float], noise: [Float], step i: Int) -> [Float] {
        zip(original, noise).map { $0 + $1 * sigmas[i] }
    }
}
