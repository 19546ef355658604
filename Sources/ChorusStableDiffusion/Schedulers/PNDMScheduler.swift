/// diffusers' `PNDMScheduler` with `skip_prk_steps` (Stable Diffusion's default scheduler): pseudo linear
/// multistep (PLMS) from Liu et al., "Pseudo Numerical Methods for Diffusion Models on Manifolds" (2022).
///
/// Each step moves x_t to x_{t−δ} (δ = ⌊T/n⌋) with the paper's transfer φ (eq. 9) applied to a blend of the last
/// few noise predictions ε (Adams–Bashforth). Without Runge–Kutta warm-up steps it starts with a Heun-like
/// pair: step 0 goes t → t−δ with ε_t alone, step 1 evaluates the model there and redoes t → t−δ from the same x_t
/// with (ε_t + ε_{t−δ})/2. That is why timesteps repeats its second entry (n steps make n + 1 timesteps):
/// [901, 801, 801, 701, …, 1] for 10 steps.
///
/// The step count is kept here as diffusers keeps its `counter`: a run that starts later (img2img) still treats
/// its first two steps as that pair, and its timesteps as diffusers' `timesteps[t_start:]`.
public struct PNDMScheduler: Scheduler {
    public let timesteps: [Float]
    public let initNoiseSigma: Float = 1
    private let schedule: NoiseSchedule
    /// ᾱ of the step after the last: 1 (set_alpha_to_one) or ᾱ_0.
    private let finalAlphaCumprod: Float
    private let stepRatio: Int
    private let prediction: PredictionType

    /// Steps taken so far, and the noise predictions (at most four) they blend.
    private var counter = 0
    private var ets: [[Float]] = []
    /// x_t of step 0, which step 1 starts from again.
    private var firstSample: [Float] = []

    public init(config: SchedulerConfig, steps: Int) throws {
        try SchedulerError.checkSteps(steps, trainSteps: config.numTrainTimesteps)
        try SchedulerError.refuse(!config.skipPrkSteps, "PNDMScheduler with skip_prk_steps false (Runge–Kutta warm-up)")
        prediction = try PredictionType(config.predictionType, allowed: [.epsilon, .vPrediction], for: "PNDMScheduler")
        schedule = try NoiseSchedule(config)
        finalAlphaCumprod = config.setAlphaToOne ?? false ? 1 : schedule.alphasCumprod[0]
        stepRatio = config.numTrainTimesteps / steps

        let train = config.numTrainTimesteps
        let ascending: [Double]
        switch try TimestepSpacing(config.timestepSpacing ?? "leading") {
        case .linspace: ascending = ScheduleMath.linspace(0, Double(train - 1), steps).map { $0.rounded(.toNearestOrEven) }
        case .leading: ascending = ScheduleMath.leading(steps: steps, trainSteps: train, offset: config.stepsOffset).reversed()
        case .trailing: ascending = ScheduleMath.trailing(steps: steps, trainSteps: train).reversed()
        }
        // plms_timesteps = [_timesteps[:-1], _timesteps[-2:-1], _timesteps[-1:]][::-1]: the second-to-last twice.
        var plms = Array(ascending.dropLast())
        if ascending.count >= 2 { plms.append(ascending[ascending.count - 2]) }
        plms.append(ascending[ascending.count - 1])
        timesteps = plms.reversed().map { Float($0) }
        try SchedulerError.checkTimesteps(timesteps, steps: steps, trainSteps: train)
    }

    public func scaleModelInput(_ sample: [Float], step i: Int) -> [Float] { sample }

    public mutating func step(_ output: [Float], step i: Int, sample: [Float], noise: () -> [Float]) -> [Float] {
        var timestep = Int(timesteps[i])
        var previous = timestep - stepRatio
        var sample = sample
        let blended: [Float]
        if counter == 0 {
            ets = [output]
            firstSample = sample
            blended = output
        } else if counter == 1 {
            // Back to step 0's x_t, one δ up, with the two predictions averaged.
            previous = timestep
            timestep += stepRatio
            sample = firstSample
            blended = zip(output, ets[0]).map { ($0 + $1) / 2 }
        } else {
            ets = ets.suffix(3) + [output]
            blended = Self.adamsBashforth(ets)
        }
        counter += 1
        return transfer(sample, from: timestep, to: previous, epsilon: blended)
    }

    /// Linear multistep blends of the last 2, 3 or 4 predictions (oldest first):
    /// (3e₁ − e₂)/2, (23e₁ − 16e₂ + 5e₃)/12, (55e₁ − 59e₂ + 37e₃ − 9e₄)/24 with e₁ the newest.
    private static func adamsBashforth(_ ets: [[Float]]) -> [Float] {
        let e1 = ets[ets.count - 1], e2 = ets[ets.count - 2]
        switch ets.count {
        case 2:
            return e1.indices.map { (3 * e1[$0] - e2[$0]) / 2 }
        case 3:
            let e3 = ets[0]
            return e1.indices.map { (23 * e1[$0] - 16 * e2[$0] + 5 * e3[$0]) / 12 }
        default:
            let e3 = ets[ets.count - 3], e4 = ets[ets.count - 4]
            let scale = Float(1.0 / 24)
            return e1.indices.map { scale * (55 * e1[$0] - 59 * e2[$0] + 37 * e3[$0] - 9 * e4[$0]) }
        }
    }

    /// PNDM eq. 9 (diffusers' `_get_prev_sample`), with a = ᾱ_t, a' = ᾱ_{t−δ}, b = 1 − a, b' = 1 − a':
    ///   x_{t−δ} = sqrt(a'/a) · x_t − (a' − a) · ε / (a · sqrt(b') + sqrt(a · b · a'))
    /// v-prediction is turned into ε first: ε = sqrt(a) · v + sqrt(b) · x_t.
    private func transfer(_ sample: [Float], from t: Int, to previous: Int, epsilon: [Float]) -> [Float] {
        let a = schedule.alphasCumprod[t]
        let aPrev = previous >= 0 ? schedule.alphasCumprod[previous] : finalAlphaCumprod
        let b = 1 - a, bPrev = 1 - aPrev
        var epsilon = epsilon
        if prediction == .vPrediction {
            epsilon = zip(epsilon, sample).map { a.squareRoot() * $0 + b.squareRoot() * $1 }
        }
        let sampleCoeff = (aPrev / a).squareRoot()
        let denominator = a * bPrev.squareRoot() + (a * b * aPrev).squareRoot()
        return zip(sample, epsilon).map { sampleCoeff * $0 - (aPrev - a) * $1 / denominator }
    }

    public func addNoise(_ original: [Float], noise: [Float], step i: Int) -> [Float] {
        schedule.addNoise(original, noise: noise, timestep: Int(timesteps[i]))
    }
}
