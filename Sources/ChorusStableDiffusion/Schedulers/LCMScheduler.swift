/// diffusers' `LCMScheduler`: multistep sampling of a latent consistency model (Luo et al., "Latent Consistency
/// Models", 2023, Algorithm 3).
///
/// The model maps x_t straight to a clean estimate; each step then re-noises that estimate to the next timestep:
///   x̂_0 from the prediction (as DDIM),  denoised = c_out(t) · x̂_0 + c_skip(t) · x_t
///   x_{t'} = sqrt(ᾱ_{t'}) · denoised + sqrt(1 − ᾱ_{t'}) · z,  z ~ N(0, I)   (the last step returns denoised, no z)
/// with the consistency boundary condition, s = 10 · t (timestep_scaling) and σ_data = 0.5:
///   c_skip = σ_data² / (s² + σ_data²),  c_out = s / sqrt(s² + σ_data²)
/// Timesteps come from the distillation schedule: every ⌊T/50⌋-th step ending at T − 1 (original_inference_steps
/// 50), n of them picked evenly (4 steps: 999, 759, 499, 259). timestep_spacing and steps_offset play no part.
///
/// img2img here runs the text-to-image schedule from `t_start` (StableDiffusionImg2ImgPipeline's recipe);
/// diffusers' own LatentConsistencyModelImg2ImgPipeline instead rebuilds the schedule with `strength`.
public struct LCMScheduler: Scheduler {
    public let timesteps: [Float]
    public let initNoiseSigma: Float = 1
    private let schedule: NoiseSchedule
    private let prediction: PredictionType
    private let clipRange: Float?
    private let timestepScaling: Float

    public init(config: SchedulerConfig, steps: Int) throws {
        let train = config.numTrainTimesteps, original = config.originalInferenceSteps
        try SchedulerError.checkSteps(steps, trainSteps: train)
        guard (1...train).contains(original) else {
            throw SchedulerError.stepCount(steps, "original_inference_steps \(original) is not within 1…\(train)")
        }
        guard steps <= original else {
            throw SchedulerError.stepCount(steps, "LCM picks its steps from original_inference_steps = \(original)")
        }
        try SchedulerError.refuse(config.thresholding, "thresholding")
        try SchedulerError.refuse(config.rescaleBetasZeroSnr, "rescale_betas_zero_snr")
        prediction = try PredictionType(config.predictionType, allowed: [.epsilon, .vPrediction, .sample],
                                        for: "LCMScheduler")
        schedule = try NoiseSchedule(config, defaults: .lcm)
        // LCMScheduler's default clip_sample is false. (set_alpha_to_one never matters: no timestep is below k − 1.)
        clipRange = config.clipSample ?? false ? Float(config.clipSampleRange) : nil
        timestepScaling = Float(config.timestepScaling)

        // lcm_origin_timesteps = [1 … original] · k − 1, descending; then floor(linspace(0, original, n, endpoint: false)).
        let k = train / original
        let origin = (1...original).reversed().map { $0 * k - 1 }
        timesteps = ScheduleMath.linspace(0, Double(original), steps, endpoint: false).map {
            Float(origin[Int($0.rounded(.down))])
        }
    }

    public func scaleModelInput(_ sample: [Float], step i: Int) -> [Float] { sample }

    public mutating func step(_ output: [Float], step i: Int, sample: [Float], noise: () -> [Float]) -> [Float] {
        let t = Int(timesteps[i])
        let isLast = i == timesteps.count - 1
        let a = schedule.alphasCumprod[t]
        let rootA = a.squareRoot(), rootB = (1 - a).squareRoot()
        let (cSkip, cOut) = boundaryCondition(t)
        let denoised = output.indices.map { k in
            let x = sample[k], m = output[k]
            var original: Float
            switch prediction {
            case .epsilon: original = (x - rootB * m) / rootA
            case .sample: original = m
            case .vPrediction: original = rootA * x - rootB * m
            }
            if let clipRange { original = min(max(original, -clipRange), clipRange) }
            return cOut * original + cSkip * x
        }
        if isLast { return denoised }
        let z = noise()
        let aPrev = schedule.alphasCumprod[Int(timesteps[i + 1])]
        let signal = aPrev.squareRoot(), spread = (1 - aPrev).squareRoot()
        return zip(denoised, z).map { signal * $0 + spread * $1 }
    }

    /// c_skip and c_out at timestep t, in float32 as diffusers gets them from an integer timestep tensor.
    private func boundaryCondition(_ t: Int) -> (skip: Float, out: Float) {
        let sigmaDataSquared: Float = 0.25
        let scaled = Float(t) * timestepScaling
        return (sigmaDataSquared / (scaled * scaled + sigmaDataSquared),
                scaled / (scaled * scaled + sigmaDataSquared).squareRoot())
    }

    public func addNoise(_ original: [Float], noise: [Float], step i: Int) -> [Float] {
        schedule.addNoise(original, noise: noise, timestep: Int(timesteps[i]))
    }
}
