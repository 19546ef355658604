import Foundation

/// The training noise schedule every diffusers scheduler builds in its `__init__`: `betas` (β_t) and
/// `alphas_cumprod` (ᾱ_t = ∏_{s≤t} (1 − β_s)), for t = 0 … num_train_timesteps − 1.
///
/// diffusers computes these in float32 torch, and the float32 rounding of ᾱ_t shows: 1 − ᾱ_t near t = 0 loses
/// most of its digits to it, so σ_t = sqrt((1 − ᾱ_t)/ᾱ_t) from a float64 ᾱ_t differs from diffusers' by up to 8e-5
/// (relative). So this rounds where torch does: β_t to float32, 1 − β_t in float32, and the running product in
/// float64 (torch's CPU cumprod accumulates in double) rounded to float32 at each t. That matches diffusers' ᾱ_t
/// and σ_t to within 5e-7; what is left is torch.linspace's own float32 rounding, off by an ulp at some t.
public struct NoiseSchedule: Sendable {
    public let betas: [Float]
    public let alphasCumprod: [Float]

    /// `schedule`: "linear", "scaled_linear" or "squaredcos_cap_v2"; `trainedBetas` replaces all three.
    public init(betaStart: Double, betaEnd: Double, schedule: String, trainSteps: Int,
                trainedBetas: [Double]? = nil) throws {
        if let trainedBetas {
            betas = trainedBetas.map { Float($0) }
        } else {
            switch schedule {
            case "linear":
                // torch.linspace(beta_start, beta_end, T, dtype=float32)
                betas = ScheduleMath.linspace(betaStart, betaEnd, trainSteps).map { Float($0) }
            case "scaled_linear":
                // torch.linspace(beta_start**0.5, beta_end**0.5, T, dtype=float32) ** 2: squared in float32
                betas = ScheduleMath.linspace(pow(betaStart, 0.5), pow(betaEnd, 0.5), trainSteps).map {
                    let root = Float($0)
                    return root * root
                }
            case "squaredcos_cap_v2":
                betas = Self.cosineBetas(trainSteps)
            default:
                throw SchedulerError.unsupported("beta_schedule \"\(schedule)\"")
            }
        }
        var product = 1.0
        alphasCumprod = betas.map { beta in
            product *= Double(1 - beta)
            return Float(product)
        }
    }

    /// β_t from the config, with a class's own defaults for the fields the file lacks.
    package init(_ config: SchedulerConfig, defaults: BetaDefaults = .standard) throws {
        try self.init(betaStart: config.betaStart ?? defaults.start, betaEnd: config.betaEnd ?? defaults.end,
                      schedule: config.betaSchedule ?? defaults.schedule, trainSteps: config.numTrainTimesteps,
                      trainedBetas: config.trainedBetas)
    }

    /// σ_t = sqrt((1 − ᾱ_t) / ᾱ_t), the noise level of each training timestep when the sample is scaled to
    /// x/sqrt(ᾱ_t) (the Euler and DPM-Solver view), in float32 as diffusers computes it.
    public var sigmas: [Float] { alphasCumprod.map { ((1 - $0) / $0).squareRoot() } }

    /// The forward process q(x_t | x_0) (diffusers' add_noise in PNDM, DDIM and LCM):
    ///   x_t = sqrt(ᾱ_t) · x_0 + sqrt(1 − ᾱ_t) · ε
    public func addNoise(_ original: [Float], noise: [Float], timestep t: Int) -> [Float] {
        let signal = alphasCumprod[t].squareRoot(), spread = (1 - alphasCumprod[t]).squareRoot()
        return zip(original, noise).map { signal * $0 + spread * $1 }
    }

    /// diffusers' `betas_for_alpha_bar` (Nichol & Dhariwal's cosine schedule), in float64 like its Python loop:
    /// β_t = min(1 − ᾱ(t+1/T) / ᾱ(t/T), 0.999) with ᾱ(u) = cos((u + 0.008) / 1.008 · π/2)².
    private static func cosineBetas(_ trainSteps: Int) -> [Float] {
        func alphaBar(_ u: Double) -> Double {
            let c = cos((u + 0.008) / 1.008 * Double.pi / 2)
            return c * c
        }
        let count = Double(trainSteps)
        return (0..<trainSteps).map { i in
            Float(min(1 - alphaBar(Double(i + 1) / count) / alphaBar(Double(i) / count), 0.999))
        }
    }
}

/// beta_start, beta_end and beta_schedule when a config lacks them: every class's, except LCMScheduler's.
package struct BetaDefaults {
    package let start: Double, end: Double, schedule: String
    package static let standard = BetaDefaults(start: 0.0001, end: 0.02, schedule: "linear")
    package static let lcm = BetaDefaults(start: 0.00085, end: 0.012, schedule: "scaled_linear")
}
