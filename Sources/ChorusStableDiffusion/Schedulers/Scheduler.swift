// Noise schedulers for Stable Diffusion, each matching one diffusers (0.42.1) class number for number.
// The pipeline owns the loop; a scheduler says where it runs (timesteps), what the UNet sees (scaleModelInput)
// and how the sample moves on (step), the way diffusers' StableDiffusionPipeline drives its scheduler.

public enum PredictionType: String, Sendable { case epsilon, vPrediction = "v_prediction", sample }

public protocol Scheduler: Sendable {
    /// The UNet timesteps of the whole run, first to last (diffusers' `scheduler.timesteps`).
    var timesteps: [Float] { get }
    /// Text-to-image latents start as unit noise × this.
    var initNoiseSigma: Float { get }
    /// What the UNet is given at step i (the Euler family divides by sqrt(σ²+1); others return the sample).
    func scaleModelInput(_ sample: [Float], step i: Int) -> [Float]
    /// The sample after step i from the model's output there. `noise` draws unit normals of the sample's size
    /// for schedulers that inject noise (ancestral, LCM); others never call it.
    mutating func step(_ output: [Float], step i: Int, sample: [Float], noise: () -> [Float]) -> [Float]
    /// img2img: `original` noised to the level of step i (diffusers' add_noise at timesteps[i]).
    func addNoise(_ original: [Float], noise: [Float], step i: Int) -> [Float]
}

/// Why a scheduler cannot be built from a config for a step count.
public enum SchedulerError: Error, CustomStringConvertible, Equatable {
    /// The step count cannot be run (0, more than the model was trained with, …); the string says why.
    case stepCount(Int, String)
    /// The config asks for a diffusers feature these schedulers do not implement.
    case unsupported(String)

    public var description: String {
        switch self {
        case let .stepCount(steps, why): "\(steps) steps: \(why)"
        case let .unsupported(what): "unsupported scheduler setting: \(what)"
        }
    }

    /// Every scheduler needs 1…num_train_timesteps steps (diffusers checks the upper bound in DDIM only; past it,
    /// the others index their tables out of range or repeat timesteps).
    package static func checkSteps(_ steps: Int, trainSteps: Int) throws {
        guard steps >= 1 else { throw stepCount(steps, "at least 1 step is needed") }
        guard steps <= trainSteps else {
            throw stepCount(steps, "more than the \(trainSteps) timesteps the model was trained with")
        }
    }

    /// Schedulers that look alphas_cumprod up by timestep need every timestep inside the table: "leading" with
    /// steps_offset 1 at 1000 steps reaches 1000 (diffusers: IndexError), and "trailing" at 61, 103, … steps
    /// ends at −1 (diffusers: alphas_cumprod[−1], the wrong end of the table).
    package static func checkTimesteps(_ timesteps: [Float], steps: Int, trainSteps: Int) throws {
        if let outside = timesteps.first(where: { $0 < 0 || Int($0) >= trainSteps }) {
            throw stepCount(steps, "timestep \(Int(outside)) falls outside the \(trainSteps) training timesteps")
        }
    }

    /// Throws `unsupported` when a config turns on a feature not implemented here.
    package static func refuse(_ isOn: Bool, _ what: @autoclosure () -> String) throws {
        if isOn { throw unsupported(what()) }
    }
}

extension PredictionType {
    /// The config's prediction_type, if the scheduler (named for the message) can handle it.
    package init(_ raw: String, allowed: [PredictionType], for scheduler: String) throws {
        guard let type = PredictionType(rawValue: raw), allowed.contains(type) else {
            throw SchedulerError.unsupported("prediction_type \"\(raw)\" in \(scheduler)")
        }
        self = type
    }
}
