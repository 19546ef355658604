import Foundation

/// diffusers' `DPMSolverMultistepScheduler` with algorithm_type "dpmsolver++" and the midpoint solver: DPM-Solver++(2M)
/// of Lu et al., "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion Probabilistic Models" (2022), Alg. 2.
///
/// It works in the data prediction x̂_0 and the half log-SNR λ = log(α/σ), where for a timestep with VE noise
/// level s: α = 1/sqrt(s² + 1), σ = s · α. With h = λ_{i+1} − λ_i:
///   first order:  x_{i+1} = (σ_{i+1}/σ_i) · x_i − α_{i+1} (e^{−h} − 1) · D0
///   second order: x_{i+1} = (σ_{i+1}/σ_i) · x_i − α_{i+1} (e^{−h} − 1) · D0 − ½ α_{i+1} (e^{−h} − 1) · D1
/// with D0 = x̂_0(i), D1 = (x̂_0(i) − x̂_0(i−1)) / r, r = (λ_i − λ_{i−1}) / h.
/// The first step of a run has no history and is first order; so is the last, where σ = 0 (final_sigmas_type
/// "zero" makes diffusers step to x̂_0 directly, whatever lower_order_final says, which with solver_order ≤ 2
/// decides nothing else). solver_order 1 makes every step first order (DPM-Solver++ 1 ≡ DDIM).
public struct DPMSolverMultistepScheduler: Scheduler {
    public let timesteps: [Float]
    /// The VE noise levels s_0 … s_{n−1}, then 0.
    public let sigmas: [Float]
    public let initNoiseSigma: Float = 1
    private let prediction: PredictionType
    private let solverOrder: Int

    /// The previous step's x̂_0; nil before this run's first step.
    private var previousOriginal: [Float]?

    public init(config: SchedulerConfig, steps: Int) throws {
        let train = config.numTrainTimesteps
        try SchedulerError.checkSteps(steps, trainSteps: train)
        try Self.refuseUnimplemented(config)
        prediction = try PredictionType(config.predictionType, allowed: [.epsilon, .vPrediction, .sample],
                                        for: "DPMSolverMultistepScheduler")
        solverOrder = config.solverOrder
        let schedule = try NoiseSchedule(config)
        let trainSigmas = schedule.sigmas

        var times = try Self.timesteps(TimestepSpacing(config.timestepSpacing ?? "linspace"), steps: steps,
                                       trainSteps: train, offset: config.stepsOffset)
        let levels: [Double]
        if config.useKarrasSigmas {
            // ρ-spaced σ over the whole training range (σ_0 … σ_{T−1}), whatever the spacing; the UNet gets their
            // timesteps rounded (diffusers truncates instead for the cosine schedule, by casting to int64).
            levels = ScheduleMath.karrasSigmas(min: config.sigmaMin ?? Double(trainSigmas[0]),
                                               max: config.sigmaMax ?? Double(trainSigmas[train - 1]), count: steps)
            let rounding: FloatingPointRoundingRule =
                config.betaSchedule == "squaredcos_cap_v2" ? .towardZero : .toNearestOrEven
            times = ScheduleMath.timesteps(ofSigmas: levels, trainSigmas: trainSigmas).map { $0.rounded(rounding) }
        } else {
            levels = times.map { ScheduleMath.interp($0, trainSigmas) }
        }
        timesteps = times.map { Float($0) }
        sigmas = levels.map { Float($0) } + [0]
    }

    private static func refuseUnimplemented(_ config: SchedulerConfig) throws {
        // UniPC's and DEIS' names, which diffusers maps to these when building DPM-Solver from their configs.
        try SchedulerError.refuse(!["dpmsolver++", "deis"].contains(config.algorithmType),
                                  "algorithm_type \"\(config.algorithmType)\"")
        try SchedulerError.refuse(!["midpoint", "logrho", "bh1", "bh2"].contains(config.solverType),
                                  "solver_type \"\(config.solverType)\"")
        try SchedulerError.refuse(![1, 2].contains(config.solverOrder), "solver_order \(config.solverOrder)")
        try SchedulerError.refuse(config.finalSigmasType != "zero", "final_sigmas_type \"\(config.finalSigmasType)\"")
        try SchedulerError.refuse(config.lambdaMinClipped.isFinite, "lambda_min_clipped \(config.lambdaMinClipped)")
        try SchedulerError.refuse(config.varianceType != nil, "variance_type \"\(config.varianceType ?? "")\"")
        try SchedulerError.refuse(config.thresholding, "thresholding")
        try SchedulerError.refuse(config.rescaleBetasZeroSnr, "rescale_betas_zero_snr")
        try SchedulerError.refuse(config.useExponentialSigmas, "use_exponential_sigmas")
        try SchedulerError.refuse(config.useBetaSigmas, "use_beta_sigmas")
        try SchedulerError.refuse(config.useLuLambdas, "use_lu_lambdas")
        try SchedulerError.refuse(config.useFlowSigmas, "use_flow_sigmas")
        try SchedulerError.refuse(config.useDynamicShifting, "use_dynamic_shifting")
    }

    /// diffusers spaces n + 1 points and drops the last (t = 0) for "linspace" and "leading", so 25 leading steps
    /// with steps_offset 1 run 951, 913, … 39 rather than Euler's 961 … 1.
    private static func timesteps(_ spacing: TimestepSpacing, steps: Int, trainSteps: Int, offset: Int) -> [Double] {
        switch spacing {
        case .linspace:
            return ScheduleMath.linspace(0, Double(trainSteps - 1), steps + 1).reversed().dropLast()
                .map { $0.rounded(.toNearestOrEven) }
        case .leading:
            let ratio = trainSteps / (steps + 1)
            return (1...steps).reversed().map { Double($0 * ratio + offset) }
        case .trailing:
            return ScheduleMath.trailing(steps: steps, trainSteps: trainSteps)
        }
    }

    public func scaleModelInput(_ sample: [Float], step i: Int) -> [Float] { sample }

    public mutating func step(_ output: [Float], step i: Int, sample: [Float], noise: () -> [Float]) -> [Float] {
        let original = predictedOriginal(output, sample: sample, step: i)
        defer { previousOriginal = original }
        if solverOrder == 2, let previous = previousOriginal, i < timesteps.count - 1 {
            return secondOrderUpdate(original, previous: previous, sample: sample, step: i)
        }
        return firstOrderUpdate(original, sample: sample, step: i)
    }

    /// x̂_0 from the model (diffusers' convert_model_output), with α, σ of step i:
    /// ε: (x − σ · ε̂) / α;  v: α · x − σ · v;  sample: the output.
    private func predictedOriginal(_ output: [Float], sample: [Float], step i: Int) -> [Float] {
        let (alpha, sigma) = Self.alphaSigma(sigmas[i])
        switch prediction {
        case .epsilon: return zip(sample, output).map { ($0 - sigma * $1) / alpha }
        case .vPrediction: return zip(sample, output).map { alpha * $0 - sigma * $1 }
        case .sample: return output
        }
    }

    private func firstOrderUpdate(_ d0: [Float], sample: [Float], step i: Int) -> [Float] {
        let (alphaT, sigmaT) = Self.alphaSigma(sigmas[i + 1]), (_, sigmaS) = Self.alphaSigma(sigmas[i])
        let h = Self.lambda(sigmas[i + 1]) - Self.lambda(sigmas[i])
        let ratio = sigmaT / sigmaS, coefficient = alphaT * (exp(-h) - 1)
        return zip(sample, d0).map { ratio * $0 - coefficient * $1 }
    }

    private func secondOrderUpdate(_ m0: [Float], previous m1: [Float], sample: [Float], step i: Int) -> [Float] {
        let (alphaT, sigmaT) = Self.alphaSigma(sigmas[i + 1]), (_, sigmaS0) = Self.alphaSigma(sigmas[i])
        let lambdaT = Self.lambda(sigmas[i + 1]), lambdaS0 = Self.lambda(sigmas[i]), lambdaS1 = Self.lambda(sigmas[i - 1])
        let h = lambdaT - lambdaS0, r0 = (lambdaS0 - lambdaS1) / h
        let ratio = sigmaT / sigmaS0, coefficient = alphaT * (exp(-h) - 1)
        let d1Scale = 1 / r0
        return sample.indices.map { k in
            let d1 = d1Scale * (m0[k] - m1[k])
            return ratio * sample[k] - coefficient * m0[k] - 0.5 * coefficient * d1
        }
    }

    /// α_t = 1/sqrt(s² + 1) and σ_t = s · α_t for VE noise level s (diffusers' _sigma_to_alpha_sigma_t).
    private static func alphaSigma(_ s: Float) -> (alpha: Float, sigma: Float) {
        let alpha = 1 / (s * s + 1).squareRoot()
        return (alpha, s * alpha)
    }

    /// λ = log α − log σ; +∞ at s = 0, where e^{−h} = 0 makes the last step return x̂_0.
    private static func lambda(_ s: Float) -> Float {
        let (alpha, sigma) = alphaSigma(s)
        return log(alpha) - log(sigma)
    }

    /// x_t = α_i · x_0 + σ_i · ε at step i's noise level.
    public func addNoise(_ original: [Float], noise: [Float], step i: Int) -> [Float] {
        let (alpha, sigma) = Self.alphaSigma(sigmas[i])
        return zip(original, noise).map { alpha * $0 + sigma * $1 }
    }
}
