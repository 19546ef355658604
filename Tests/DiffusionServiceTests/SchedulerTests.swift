import Foundation
import Testing
@testable import DiffusionService
import ChorusStableDiffusion

// Every scheduler against diffusers 0.42.1, from Fixtures/schedulers.json (scripts/fixtures/make_scheduler_cases.py):
// timesteps, σ, init_noise_sigma, and whole text-to-image and img2img runs with a made-up model in place of the UNet.

/// The fixture's stand-in for the UNet (x: scale_model_input's output, t: the timestep), as the generator has it:
///   out[i] = float32(0.3 · x[i] + 0.1 · sin(0.01 · t + i)), computed in float64.
private func fakeModel(_ x: [Float], timestep t: Float) -> [Float] {
    x.indices.map { i in Float(0.3 * Double(x[i]) + 0.1 * sin(0.01 * Double(t) + Double(i))) }
}

struct SchedulerFixture: Decodable, Sendable {
    struct Schedule: Decodable, Sendable {
        let betaSchedule: String
        let betaStart: Double
        let betaEnd: Double
        let numTrainTimesteps: Int
        let betas: [Float]
        let alphasCumprod: [Float]
    }

    struct FromConfig: Decodable, Sendable, CustomTestStringConvertible {
        let kind: String
        let steps: Int
        let timesteps: [Float]
        let sigmas: [Float]?
        let initNoiseSigma: Float
        var testDescription: String { "\(kind) \(steps)" }
    }

    struct Run: Decodable, Sendable {
        let unitNoise: [Float]
        let start: [Float]
        let samples: [[Float]]
        let noise: [[Float]?]
    }

    struct Img2Img: Decodable, Sendable {
        let strength: Double
        let tStart: Int
        let original: [Float]
        let noise: [Float]
        let noised: [Float]
        let samples: [[Float]]
        let stepNoise: [[Float]?]
    }

    struct Case: Decodable, Sendable, CustomTestStringConvertible {
        let name: String
        let `class`: String
        /// What diffusers' from_config was given (fields it lacks take the class's defaults), and the config it
        /// made of it as save_pretrained writes it (every field of the class spelled out).
        let sourceConfig: String
        let config: String
        let steps: Int
        let timesteps: [Float]
        let sigmas: [Float]?
        let initNoiseSigma: Float
        let txt2img: Run
        let img2img: Img2Img?
        var testDescription: String { name }
    }

    let sd15Config: String
    let schedules: [Schedule]
    let fromSd15Config: [FromConfig]
    let cases: [Case]

    static let shared: SchedulerFixture = {
        let path = Bundle.module.resourcePath! + "/Fixtures/schedulers.json"
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try! decoder.decode(SchedulerFixture.self, from: FileManager.default.contents(atPath: path)!)
    }()
}

/// Worst |actual − expected| and worst |actual − expected| / (atol + rtol·|expected|) (≤ 1 passes).
private struct Closeness {
    var worstAbs: Float = 0
    var worstRatio: Float = 0

    mutating func expect(_ actual: [Float], _ expected: [Float], atol: Float = 1e-5, rtol: Float = 1e-4,
                         _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(actual.count == expected.count, "\(what): \(actual.count) values, diffusers has \(expected.count)",
                sourceLocation: sourceLocation)
        var worst = (ratio: Float(0), index: 0)
        for (k, (a, e)) in zip(actual, expected).enumerated() {
            let difference = abs(a - e)
            let ratio = difference == 0 ? 0 : difference / (atol + rtol * abs(e))
            worstAbs = max(worstAbs, difference)
            if !(ratio <= worst.ratio) { worst = (ratio, k) }  // NaN counts as worst
        }
        worstRatio = max(worstRatio, worst.ratio)
        #expect(worst.ratio <= 1, "\(what)[\(worst.index)]: \(actual[worst.index]) vs diffusers \(expected[worst.index])",
                sourceLocation: sourceLocation)
    }
}

/// Whole timesteps exactly. Fractional ones (Euler with Karras σ) to 1e-6 relative: diffusers finds them from
/// log σ_t, which numpy takes in float32 with its own vectorised log, an ulp off a correctly rounded one at ~20%
/// of the training timesteps; that moves a timestep by a few float32 ulps.
private func expectTimesteps(_ actual: [Float], _ expected: [Float], sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.count == expected.count, "\(actual.count) timesteps, diffusers has \(expected.count)",
            sourceLocation: sourceLocation)
    for (a, e) in zip(actual, expected) {
        if e == e.rounded() {
            #expect(a == e, "timesteps: \(actual) vs diffusers \(expected)", sourceLocation: sourceLocation)
        } else {
            #expect(abs(a - e) <= 1e-6 * abs(e), "timestep \(a) vs diffusers \(e)", sourceLocation: sourceLocation)
        }
    }
}

/// The scheduler struct for a diffusers class (the fixtures' configs name their own class).
private func makeScheduler(className: String, config: SchedulerConfig, steps: Int) throws -> any Scheduler {
    switch className {
    case "PNDMScheduler": try PNDMScheduler(config: config, steps: steps)
    case "DDIMScheduler": try DDIMScheduler(config: config, steps: steps)
    case "EulerDiscreteScheduler": try EulerDiscreteScheduler(config: config, steps: steps)
    case "EulerAncestralDiscreteScheduler": try EulerAncestralDiscreteScheduler(config: config, steps: steps)
    case "DPMSolverMultistepScheduler": try DPMSolverMultistepScheduler(config: config, steps: steps)
    case "LCMScheduler": try LCMScheduler(config: config, steps: steps)
    default: throw SchedulerError.unsupported(className)
    }
}

private func schedulerSigmas(_ scheduler: any Scheduler) -> [Float]? {
    switch scheduler {
    case let s as EulerDiscreteScheduler: s.sigmas
    case let s as EulerAncestralDiscreteScheduler: s.sigmas
    case let s as DPMSolverMultistepScheduler: s.sigmas
    default: nil
    }
}

/// Runs `scheduler` from step `start` as the pipeline does, handing `step` diffusers' noise of that step; checks
/// every sample and that noise is drawn exactly where diffusers drew it.
private func denoise(_ scheduler: inout any Scheduler, from start: Int, sample: [Float], expected: [[Float]],
             noise: [[Float]?], closeness: inout Closeness, _ what: String) {
    var sample = sample
    for (n, i) in (start..<scheduler.timesteps.count).enumerated() {
        let output = fakeModel(scheduler.scaleModelInput(sample, step: i), timestep: scheduler.timesteps[i])
        var draws = 0
        sample = scheduler.step(output, step: i, sample: sample) {
            draws += 1
            return noise[n] ?? []
        }
        #expect(draws == (noise[n] == nil ? 0 : 1), "\(what) step \(i): noise drawn \(draws) times")
        guard n < expected.count else { break }
        closeness.expect(sample, expected[n], "\(what) step \(i)")
    }
    #expect(scheduler.timesteps.count - start == expected.count, "\(what): step count")
}

@Suite struct SchedulerTests {
    @Test(arguments: SchedulerFixture.shared.cases)
    func matchesDiffusers(_ c: SchedulerFixture.Case) throws {
        var schedule = Closeness(), samples = Closeness()
        for json in [c.sourceConfig, c.config] {
            let config = try SchedulerConfig.decode(Data(json.utf8))
            var scheduler = try makeScheduler(className: c.class, config: config, steps: c.steps)

            expectTimesteps(scheduler.timesteps, c.timesteps)
            schedule.expect([scheduler.initNoiseSigma], [c.initNoiseSigma], atol: 0, rtol: 1e-6, "init_noise_sigma")
            if let expected = c.sigmas {
                schedule.expect(schedulerSigmas(scheduler) ?? [], expected, atol: 0, rtol: 1e-6, "sigmas")
            } else {
                #expect(schedulerSigmas(scheduler) == nil)
            }

            let start = c.txt2img.unitNoise.map { $0 * scheduler.initNoiseSigma }
            samples.expect(start, c.txt2img.start, "start")
            denoise(&scheduler, from: 0, sample: start, expected: c.txt2img.samples, noise: c.txt2img.noise,
                    closeness: &samples, "txt2img")

            if let i2i = c.img2img {
                var fresh = try makeScheduler(className: c.class, config: config, steps: c.steps)
                let noised = fresh.addNoise(i2i.original, noise: i2i.noise, step: i2i.tStart)
                samples.expect(noised, i2i.noised, "add_noise")
                denoise(&fresh, from: i2i.tStart, sample: noised, expected: i2i.samples, noise: i2i.stepNoise,
                        closeness: &samples, "img2img")
            }
        }
        print("\(c.name): samples worst |Δ| \(samples.worstAbs) (\(samples.worstRatio) of the tolerance), "
              + "σ worst relative Δ \(schedule.worstRatio * 1e-6)")
    }

    /// Every kind a request can name, built from SD 1.5's scheduler_config.json as shipped (no timestep_spacing,
    /// no prediction_type: each class's own defaults fill them in).
    @Test(arguments: SchedulerFixture.shared.fromSd15Config)
    func kindsFromSD15Config(_ expected: SchedulerFixture.FromConfig) throws {
        let config = try SchedulerConfig.decode(Data(SchedulerFixture.shared.sd15Config.utf8))
        let kind = try #require(SchedulerKind(rawValue: expected.kind))
        let scheduler = try kind.make(config: config, steps: expected.steps)
        var closeness = Closeness()
        expectTimesteps(scheduler.timesteps, expected.timesteps)
        closeness.expect([scheduler.initNoiseSigma], [expected.initNoiseSigma], atol: 0, rtol: 1e-6, "init_noise_sigma")
        if let sigmas = expected.sigmas {
            closeness.expect(schedulerSigmas(scheduler) ?? [], sigmas, atol: 0, rtol: 1e-6, "sigmas")
        }
    }

    @Test func noiseSchedules() throws {
        for expected in SchedulerFixture.shared.schedules {
            let schedule = try NoiseSchedule(betaStart: expected.betaStart, betaEnd: expected.betaEnd,
                                             schedule: expected.betaSchedule, trainSteps: expected.numTrainTimesteps)
            var closeness = Closeness()
            closeness.expect(schedule.betas, expected.betas, atol: 0, rtol: 1e-6, "\(expected.betaSchedule) betas")
            closeness.expect(schedule.alphasCumprod, expected.alphasCumprod, atol: 0, rtol: 1e-6,
                             "\(expected.betaSchedule) alphas_cumprod")
            print("\(expected.betaSchedule): worst relative Δ \(closeness.worstRatio * 1e-6)")
        }
    }

    @Test func decodesConfigs() throws {
        let sd15 = try SchedulerConfig.decode(Data(SchedulerFixture.shared.sd15Config.utf8))
        #expect(sd15.className == "PNDMScheduler")
        #expect(sd15.numTrainTimesteps == 1000 && sd15.stepsOffset == 1 && sd15.skipPrkSteps)
        #expect(sd15.betaStart == 0.00085 && sd15.betaEnd == 0.012 && sd15.betaSchedule == "scaled_linear")
        #expect(sd15.setAlphaToOne == false && sd15.clipSample == false && sd15.trainedBetas == nil)
        // Absent from the file: left to the class the config is built into.
        #expect(sd15.timestepSpacing == nil && sd15.predictionType == "epsilon")

        // What save_pretrained writes for DPM-Solver: -Infinity, nulls, fields this does not read.
        let dpm = try SchedulerConfig.decode(Data("""
            {"_class_name": "DPMSolverMultistepScheduler", "lambda_min_clipped": -Infinity, "variance_type": null,
             "sigma_min": null, "use_karras_sigmas": true, "flow_shift": 1.0, "time_shift_type": "exponential"}
            """.utf8))
        #expect(dpm.lambdaMinClipped == -.infinity && dpm.varianceType == nil && dpm.sigmaMin == nil)
        #expect(dpm.useKarrasSigmas && dpm.solverOrder == 2)

        let empty = try JSONDecoder().decode(SchedulerConfig.self, from: Data("{}".utf8))
        #expect(empty.className == nil && empty.numTrainTimesteps == 1000 && empty.betaStart == nil)
    }

    @Test func classNames() {
        let names = ["PNDMScheduler": SchedulerKind.pndm, "DDIMScheduler": .ddim, "EulerDiscreteScheduler": .euler,
                     "EulerAncestralDiscreteScheduler": .eulerAncestral, "DPMSolverMultistepScheduler": .dpmpp2m,
                     "LCMScheduler": .lcm]
        for (name, kind) in names { #expect(SchedulerKind(className: name) == kind) }
        #expect(SchedulerKind(className: "UniPCMultistepScheduler") == nil)
        #expect(SchedulerKind.allCases.map(\.rawValue) == ["pndm", "ddim", "euler", "euler_a", "dpmpp_2m",
                                                           "dpmpp_2m_karras", "lcm"])
    }

    @Test(arguments: SchedulerKind.allCases)
    func refusesStepCountsItCannotRun(_ kind: SchedulerKind) throws {
        let config = try SchedulerConfig.decode(Data(SchedulerFixture.shared.sd15Config.utf8))
        for steps in [0, -3, 1001] {
            #expect { try kind.make(config: config, steps: steps) } throws: { error in
                guard case SchedulerError.stepCount(steps, _) = error else { return false }
                return true
            }
        }
        let most = kind == .lcm ? 50 : 999  // LCM picks from its 50 distillation steps; 1000: see stepLimits
        #expect(try kind.make(config: config, steps: most).timesteps.count >= most)
    }

    @Test func stepLimits() throws {
        let sd15 = try SchedulerConfig.decode(Data(SchedulerFixture.shared.sd15Config.utf8))
        #expect(throws: SchedulerError.stepCount(51, "LCM picks its steps from original_inference_steps = 50")) {
            try SchedulerKind.lcm.make(config: sd15, steps: 51)
        }
        // "leading" with steps_offset 1 at 1000 steps ends at timestep 1000, past ᾱ's table…
        for kind in [SchedulerKind.pndm, .ddim] {
            #expect(throws: SchedulerError.self) { try kind.make(config: sd15, steps: 1000) }
            #expect(try kind.make(config: sd15, steps: 999).timesteps.first == 999)
        }
        // …which the σ-interpolating schedulers clamp, as numpy.interp does.
        var leading = sd15
        leading.timestepSpacing = "leading"
        #expect(try EulerDiscreteScheduler(config: leading, steps: 1000).timesteps.first == 1000)
    }

    @Test func refusesSettingsNotImplemented() throws {
        func config(_ json: String) throws -> SchedulerConfig { try SchedulerConfig.decode(Data(json.utf8)) }
        let refused: [(SchedulerKind, String)] = [
            // A PNDMScheduler config that keeps the class default skip_prk_steps false: Runge–Kutta warm-up steps.
            (.pndm, #"{"_class_name": "PNDMScheduler"}"#),
            (.ddim, #"{"thresholding": true}"#),
            (.eulerAncestral, #"{"prediction_type": "sample"}"#),  // diffusers raises too
            (.euler, #"{"prediction_type": "flow_prediction"}"#),
            (.euler, #"{"use_exponential_sigmas": true}"#),
            (.dpmpp2m, #"{"final_sigmas_type": "sigma_min"}"#),
            (.dpmpp2m, #"{"lambda_min_clipped": -5.1}"#),
            (.lcm, #"{"beta_schedule": "sqrt_linear"}"#),
        ]
        for (kind, json) in refused {
            #expect(throws: SchedulerError.self, "\(kind) \(json)") { try kind.make(config: config(json), steps: 10) }
        }
        // pndm named on another class's config (or none) runs PLMS, as SD pipelines ship it: 10 steps, 11 evaluations.
        #expect(try SchedulerKind.pndm.make(config: config("{}"), steps: 10).timesteps.count == 11)
        // The kind's name decides the algorithm: DPM++ 2M even from a config written for another solver.
        let sde = try config(#"{"algorithm_type": "sde-dpmsolver++", "solver_order": 3}"#)
        #expect(throws: SchedulerError.self) { try DPMSolverMultistepScheduler(config: sde, steps: 10) }
        #expect(try SchedulerKind.dpmpp2m.make(config: sde, steps: 10).timesteps.count == 10)
    }
}
