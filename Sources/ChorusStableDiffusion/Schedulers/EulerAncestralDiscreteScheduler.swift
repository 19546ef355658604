/// diffusers' `EulerAncestralDiscreteScheduler` ("Euler a"): an Euler step to a lower noise level σ_down, then
/// fresh noise back up to σ_{i+1} (Karras et al. 2022, the ancestral sampler of k-diffusion's sample_euler_ancestral):
///   σ_up = sqrt(σ_{i+1}² · (σ_i² − σ_{i+1}²) / σ_i²),  σ_down = sqrt(σ_{i+1}² − σ_up²)
///   x ← x + (x − x̂_0) / σ_i · (σ_down − σ_i) + σ_up · z,  z ~ N(0, I)
/// It draws z at every step, the last one too (where σ_up = 0), as diffusers does, so a shared random stream
/// stays in step with diffusers'. Timesteps, σ and the input scaling are EulerDiscreteScheduler's (no Karras σ).
public struct EulerAncestralDiscreteScheduler: Scheduler {
    public let timesteps: [Float]
    /// σ_0 … σ_{n−1}, then 0.
    public let sigmas: [Float]
    public let initNoiseSigma: Float
    private let prediction: PredictionType

    public init(config: SchedulerConfig, steps: Int) throws {
        let train = config.numTrainTimesteps
        try SchedulerError.checkSteps(steps, trainSteps: train)
        try SchedulerError.refuse(config.rescaleBetasZeroSnr, "rescale_betas_zero_snr")
        // diffusers raises NotImplementedError for "sample".
        prediction = try PredictionType(config.predictionType, allowed: [.epsilon, .vPrediction],
                                        for: "EulerAncestralDiscreteScheduler")
        let trainSigmas = try NoiseSchedule(config).sigmas
        let spacing = try TimestepSpacing(config.timestepSpacing ?? "linspace")
        timesteps = EulerDiscreteScheduler.timesteps(spacing, steps: steps, trainSteps: train, offset: config.stepsOffset)
        sigmas = timesteps.map { Float(ScheduleMath.interp(Double($0), trainSigmas)) } + [0]
        initNoiseSigma = EulerDiscreteScheduler.initNoiseSigma(sigmas, spacing: spacing)
    }

    public func scaleModelInput(_ sample: [Float], step i: Int) -> [Float] {
        EulerDiscreteScheduler.unitVariance(sample, sigma: sigmas[i])
    }

    public mutating func step(_ output: [Float], step i: Int, sample: [Float], noise: () -> [Float]) -> [Float] {
        let from = sigmas[i], to = sigmas[i + 1]
        let up = (to * to * (from * from - to * to) / (from * from)).squareRoot()
        let down = (to * to - up * up).squareRoot()
        let dt = down - from
        let z = noise()
        return output.indices.map { k in
            let x = sample[k]
            let original = EulerDiscreteScheduler.predictedOriginal(output[k], sample: x, sigma: from, prediction: prediction)
            let derivative = (x - original) / from
            return x + derivative * dt + z[k] * up
        }
    }

    public func addNoise(_ original: [Float], noise: [Float], step i: Int) -> [Float] {
        zip(original, noise).map { $0 + $1 * sigmas[i] }
    }
}
