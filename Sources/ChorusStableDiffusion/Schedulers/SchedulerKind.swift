/// The schedulers a request can name, each built from the model folder's scheduler_config.json the way diffusers'
/// `Target.from_config(pipe.scheduler.config)` swaps a pipeline's scheduler: fields the target class does not
/// know are ignored, and fields the file lacks take the target's defaults.
public enum SchedulerKind: String, CaseIterable, Sendable {
    case pndm, ddim, euler, eulerAncestral = "euler_a", dpmpp2m = "dpmpp_2m", dpmpp2mKarras = "dpmpp_2m_karras", lcm

    /// The kind a diffusers `_class_name` names (DPMSolverMultistepScheduler: dpmpp_2m).
    public init?(className: String) {
        switch className {
        case "PNDMScheduler": self = .pndm
        case "DDIMScheduler": self = .ddim
        case "EulerDiscreteScheduler": self = .euler
        case "EulerAncestralDiscreteScheduler": self = .eulerAncestral
        case "DPMSolverMultistepScheduler": self = .dpmpp2m
        case "LCMScheduler": self = .lcm
        default: return nil
        }
    }

    /// A scheduler set for `steps` inference steps. Throws `SchedulerError` for a step count it cannot run
    /// (0, more than num_train_timesteps, more than LCM's original_inference_steps) or a setting not implemented.
    /// dpmpp_2m and dpmpp_2m_karras are DPM-Solver++ of order 2 whatever the file says (that is what the names
    /// promise); the Karras one with use_karras_sigmas on.
    public func make(config: SchedulerConfig, steps: Int) throws -> any Scheduler {
        switch self {
        case .pndm:
            // Asked for by name on another class's config: PLMS as every SD pipeline ships it (skip_prk_steps),
            // not diffusers' class default of a Runge–Kutta warm-up, which no SD checkpoint uses.
            var config = config
            if config.className != "PNDMScheduler" { config.skipPrkSteps = true }
            return try PNDMScheduler(config: config, steps: steps)
        case .ddim: return try DDIMScheduler(config: config, steps: steps)
        case .euler: return try EulerDiscreteScheduler(config: config, steps: steps)
        case .eulerAncestral: return try EulerAncestralDiscreteScheduler(config: config, steps: steps)
        case .dpmpp2m, .dpmpp2mKarras:
            var config = config
            config.algorithmType = "dpmsolver++"
            config.solverOrder = 2
            if self == .dpmpp2mKarras { config.useKarrasSigmas = true }
            return try DPMSolverMultistepScheduler(config: config, steps: steps)
        case .lcm: return try LCMScheduler(config: config, steps: steps)
        }
    }
}
