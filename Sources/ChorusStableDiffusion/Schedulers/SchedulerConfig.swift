import Foundation

/// A diffusers `scheduler_config.json`. A field the file lacks takes the default of the class it is built into,
/// which is what diffusers' `Target.from_config(config)` does (its `_use_default_values` bookkeeping drops the
/// values a source class only defaulted), so an Euler built from SD 1.5's PNDM file gets Euler's "linspace".
/// Fields whose default differs between classes are optional here and resolved by each scheduler; unknown
/// fields are ignored.
public struct SchedulerConfig: Decodable, Sendable {
    /// `_class_name`: the diffusers class the file was written for.
    public var className: String?
    public var numTrainTimesteps = 1000
    /// Absent: 0.0001, 0.02, "linear" (0.00085, 0.012, "scaled_linear" for LCMScheduler).
    public var betaStart: Double?
    public var betaEnd: Double?
    public var betaSchedule: String?
    public var trainedBetas: [Double]?
    public var predictionType = "epsilon"
    /// Absent: "leading" for PNDM, DDIM and LCM; "linspace" for Euler, Euler ancestral and DPM-Solver.
    public var timestepSpacing: String?
    public var stepsOffset = 0
    /// Absent: false for PNDM; true for DDIM and LCM.
    public var setAlphaToOne: Bool?
    public var skipPrkSteps = false
    /// Absent: true for DDIM; false for LCM.
    public var clipSample: Bool?
    public var clipSampleRange = 1.0
    public var useKarrasSigmas = false
    /// Karras σ range; nil: the schedule's own ends.
    public var sigmaMin: Double?
    public var sigmaMax: Double?
    public var solverOrder = 2
    public var algorithmType = "dpmsolver++"
    public var solverType = "midpoint"
    public var finalSigmasType = "zero"
    public var originalInferenceSteps = 50
    public var timestepScaling = 10.0

    // diffusers features not implemented here: a scheduler that knows one refuses a config turning it on.
    public var thresholding = false
    public var rescaleBetasZeroSnr = false
    public var useExponentialSigmas = false
    public var useBetaSigmas = false
    public var useLuLambdas = false
    public var useFlowSigmas = false
    public var useDynamicShifting = false
    public var interpolationType = "linear"
    public var timestepType = "discrete"
    public var varianceType: String?
    public var lambdaMinClipped = -Double.infinity

    package enum CodingKeys: String, CodingKey {
        case className = "_class_name"
        case numTrainTimesteps = "num_train_timesteps"
        case betaStart = "beta_start"
        case betaEnd = "beta_end"
        case betaSchedule = "beta_schedule"
        case trainedBetas = "trained_betas"
        case predictionType = "prediction_type"
        case timestepSpacing = "timestep_spacing"
        case stepsOffset = "steps_offset"
        case setAlphaToOne = "set_alpha_to_one"
        case skipPrkSteps = "skip_prk_steps"
        case clipSample = "clip_sample"
        case clipSampleRange = "clip_sample_range"
        case useKarrasSigmas = "use_karras_sigmas"
        case sigmaMin = "sigma_min"
        case sigmaMax = "sigma_max"
        case solverOrder = "solver_order"
        case algorithmType = "algorithm_type"
        case solverType = "solver_type"
        case finalSigmasType = "final_sigmas_type"
        case originalInferenceSteps = "original_inference_steps"
        case timestepScaling = "timestep_scaling"
        case thresholding
        case rescaleBetasZeroSnr = "rescale_betas_zero_snr"
        case useExponentialSigmas = "use_exponential_sigmas"
        case useBetaSigmas = "use_beta_sigmas"
        case useLuLambdas = "use_lu_lambdas"
        case useFlowSigmas = "use_flow_sigmas"
        case useDynamicShifting = "use_dynamic_shifting"
        case interpolationType = "interpolation_type"
        case timestepType = "timestep_type"
        case varianceType = "variance_type"
        case lambdaMinClipped = "lambda_min_clipped"
    }

    /// Every default (an empty scheduler_config.json).
    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        // A missing field or a JSON null keeps the default.
        func read<T: Decodable>(_ key: CodingKeys, _ value: inout T) throws {
            if let decoded = try c.decodeIfPresent(T.self, forKey: key) { value = decoded }
        }
        className = try c.decodeIfPresent(String.self, forKey: .className)
        try read(.numTrainTimesteps, &numTrainTimesteps)
        betaStart = try c.decodeIfPresent(Double.self, forKey: .betaStart)
        betaEnd = try c.decodeIfPresent(Double.self, forKey: .betaEnd)
        betaSchedule = try c.decodeIfPresent(String.self, forKey: .betaSchedule)
        trainedBetas = try c.decodeIfPresent([Double].self, forKey: .trainedBetas)
        try read(.predictionType, &predictionType)
        timestepSpacing = try c.decodeIfPresent(String.self, forKey: .timestepSpacing)
        try read(.stepsOffset, &stepsOffset)
        setAlphaToOne = try c.decodeIfPresent(Bool.self, forKey: .setAlphaToOne)
        try read(.skipPrkSteps, &skipPrkSteps)
        clipSample = try c.decodeIfPresent(Bool.self, forKey: .clipSample)
        try read(.clipSampleRange, &clipSampleRange)
        try read(.useKarrasSigmas, &useKarrasSigmas)
        sigmaMin = try c.decodeIfPresent(Double.self, forKey: .sigmaMin)
        sigmaMax = try c.decodeIfPresent(Double.self, forKey: .sigmaMax)
        try read(.solverOrder, &solverOrder)
        try read(.algorithmType, &algorithmType)
        try read(.solverType, &solverType)
        try read(.finalSigmasType, &finalSigmasType)
        try read(.originalInferenceSteps, &originalInferenceSteps)
        try read(.timestepScaling, &timestepScaling)
        try read(.thresholding, &thresholding)
        try read(.rescaleBetasZeroSnr, &rescaleBetasZeroSnr)
        try read(.useExponentialSigmas, &useExponentialSigmas)
        try read(.useBetaSigmas, &useBetaSigmas)
        try read(.useLuLambdas, &useLuLambdas)
        try read(.useFlowSigmas, &useFlowSigmas)
        try read(.useDynamicShifting, &useDynamicShifting)
        try read(.interpolationType, &interpolationType)
        try read(.timestepType, &timestepType)
        varianceType = try c.decodeIfPresent(String.self, forKey: .varianceType)
        try read(.lambdaMinClipped, &lambdaMinClipped)
    }

    /// Decodes a scheduler_config.json. diffusers writes DPM-Solver's lambda_min_clipped as `-Infinity`, which
    /// strict JSON lacks, so this reads JSON5 (a superset of JSON that has it).
    public static func decode(_ data: Data) throws -> SchedulerConfig {
        let decoder = JSONDecoder()
        decoder.allowsJSON5 = true
        return try decoder.decode(SchedulerConfig.self, from: data)
    }
}
