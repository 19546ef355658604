import ChorusStableDiffusion
import ChorusTensor
import ChorusTestSupport
import Foundation
import Testing

/// Two tiny ControlNets that fit the tiny SD fixture, against diffusers (scripts/fixtures/make_controlnet_cases.py):
/// the conditioning embedding, one ControlNet forward (every residual), the UNet with residuals added, and
/// StableDiffusionControlNetPipeline runs with DDIM and with Euler — one ControlNet, scale 0.5, guess mode, a
/// 0.2–0.8 window, two at once — and StableDiffusionControlNetImg2ImgPipeline with both, within the SD fixture's
/// tolerances; float16 weights; the channel-order and global-pooling config switches.
@Suite struct ControlNetFixtureTests {
    static let folder = Bundle.module.resourcePath! + "/Fixtures"
    static let pipeline = try! StableDiffusionPipeline(folder: folder + "/sd")
    static let sd = try! SafeTensorsFile(path: folder + "/sd/fixtures.safetensors")
    static let cases = try! SafeTensorsFile(path: folder + "/controlnet/cases.safetensors")
    static let a = try! ControlNetModel(folder: folder + "/controlnet/a")
    static let b = try! ControlNetModel(folder: folder + "/controlnet/b")

    func expectClose(_ actual: Tensor, _ name: String, atol: Float, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let expected = try Self.cases.tensor(name)
        #expect(actual.shape == expected.shape, "\(name): shape \(actual.shape) vs \(expected.shape)", sourceLocation: sourceLocation)
        let mismatch = fixtureMismatch(name, actual.storage, expected.storage, atol: atol)
        #expect(mismatch == nil, "\(mismatch ?? "")", sourceLocation: sourceLocation)
    }

    func ids(_ name: String) throws -> [Int] { try Self.sd.tensor(name).storage.map { Int($0) } }

    @Test func theForwardMatchesControlNetModel() throws {
        let control = try Self.cases.tensor("control")
        let condition = Self.a.embed(control)
        try expectClose(condition, "cond_embedding", atol: 2e-5)
        let latents = try Self.sd.tensor("latents_init"), context = try Self.sd.tensor("prompt_embeds")
        let residuals = Self.a(latents, timestep: 500, context: context, condition: condition, scale: 1, guessMode: false)
        #expect(residuals.down.count == 6)
        for (i, r) in residuals.down.enumerated() { try expectClose(r, "down_\(i)", atol: 3e-5) }
        try expectClose(residuals.mid, "mid", atol: 3e-5)
        try expectClose(Self.pipeline.unet(latents, timestep: 500, context: context, residuals: residuals), "unet_with_residuals", atol: 3e-5)
    }

    /// The same ControlNet saved as a diffusers float16 variant loads (widened to float32) and gives the same
    /// residuals within float16's rounding of the weights.
    @Test func aFloat16VariantLoadsAndAgrees() throws {
        let half = try ControlNetModel(folder: Self.folder + "/controlnet/a-fp16")
        let latents = try Self.sd.tensor("latents_init"), context = try Self.sd.tensor("prompt_embeds")
        let residuals = half(latents, timestep: 500, context: context, condition: half.embed(try Self.cases.tensor("control")), scale: 1, guessMode: false)
        try expectClose(residuals.mid, "mid", atol: 2e-2)
        for (i, r) in residuals.down.enumerated() { try expectClose(r, "down_\(i)", atol: 2e-2) }
    }

    /// (case, scheduler folder, kind, steps, nets as (model, control tensor, scale), guess mode, start, end)
    static let runs: [(String, String, SchedulerKind, Int, [(Int, String, Float)], Bool, Double, Double)] = [
        ("single", "scheduler", .ddim, 2, [(0, "control", 1)], false, 0, 1),
        ("half", "scheduler", .ddim, 2, [(0, "control", 0.5)], false, 0, 1),
        ("guess", "scheduler", .ddim, 2, [(0, "control", 1)], true, 0, 1),
        ("window", "scheduler", .ddim, 5, [(0, "control", 1)], false, 0.2, 0.8),
        ("multi", "scheduler", .ddim, 2, [(0, "control", 1), (1, "multi_control_b", 0.7)], false, 0, 1),
        ("euler", "scheduler_euler", .euler, 2, [(0, "control", 1)], false, 0, 1),
        ("euler_half", "scheduler_euler", .euler, 2, [(0, "control", 0.5)], false, 0, 1),
        ("euler_guess", "scheduler_euler", .euler, 2, [(0, "control", 1)], true, 0, 1),
        ("euler_window", "scheduler_euler", .euler, 5, [(0, "control", 1)], false, 0.2, 0.8),
        ("euler_multi", "scheduler_euler", .euler, 2, [(0, "control", 1), (1, "multi_control_b", 0.7)], false, 0, 1),
    ]

    @Test(arguments: 0..<10)
    func pipelineRunsMatchStableDiffusionControlNetPipeline(_ index: Int) throws {
        let (name, configFolder, kind, steps, nets, guess, start, end) = Self.runs[index]
        let config = try SchedulerConfig.decode(try Data(contentsOf: URL(fileURLWithPath: "\(Self.folder)/sd/\(configFolder)/scheduler_config.json")))
        var scheduler = try kind.make(config: config, steps: steps)
        let models = [Self.a, Self.b]
        let control = ControlGuidance(nets: try nets.map { m, image, scale in
            ControlGuidance.Net(model: models[m], condition: models[m].embed(try Self.cases.tensor(image)), scale: scale, start: start, end: end)
        }, guessMode: guess)
        let context = Self.pipeline.textEmbeddings(ids: [try ids("negative_ids"), try ids("prompt_ids")])
        var after: [Tensor] = []
        let latents = try Self.sd.tensor("latents_init") * scheduler.initNoiseSigma
        let final = Self.pipeline.denoise(latents, context: context, guidance: 7.5, scheduler: &scheduler, control: control,
                                          noise: { Issue.record("\(name) drew noise"); return [] }) { _, x in after.append(x) }
        try expectClose(Tensor.concatenate(after, axis: 0), "\(name)_step_latents", atol: 3e-4)
        try expectClose(Self.pipeline.decodeImages(final), "\(name)_image", atol: 3e-4)
    }

    /// A check of the fixture, not of Chorus: its ControlNet moves diffusers' run far from the uncontrolled one
    /// (the SD fixture's own image), so the pipeline cases above compare something a missing residual would change.
    @Test func theFixturesControlIsStrongEnoughToTest() throws {
        let plain = try Self.sd.tensor("ddim_image").storage, controlled = try Self.cases.tensor("single_image").storage
        let meanDifference = zip(plain, controlled).map { abs($0 - $1) }.reduce(0, +) / Float(plain.count)
        #expect(meanDifference > 0.01, "\(meanDifference)")
    }

    /// StableDiffusionControlNetImg2ImgPipeline at strength 0.5 of 4 steps (scale 0.8, its default) with the
    /// recorded draws, DDIM and Euler.
    @Test(arguments: [("img2img", "scheduler", SchedulerKind.ddim), ("euler_img2img", "scheduler_euler", SchedulerKind.euler)])
    func img2imgWithControlMatches(_ name: String, _ configFolder: String, _ kind: SchedulerKind) throws {
        let config = try SchedulerConfig.decode(try Data(contentsOf: URL(fileURLWithPath: "\(Self.folder)/sd/\(configFolder)/scheduler_config.json")))
        var scheduler = try kind.make(config: config, steps: 4)
        let start = try #require(StableDiffusionEngine.img2imgStart(steps: 4, strength: 0.5))
        let encoded = Self.pipeline.encodeImage(try Self.cases.tensor("img2img_init"), noise: try Self.cases.tensor("img2img_vae_noise").storage)
        let latents = Tensor(shape: encoded.shape, storage: scheduler.addNoise(encoded.storage, noise: try Self.cases.tensor("img2img_noise").storage, step: start))
        let control = ControlGuidance(nets: [.init(model: Self.a, condition: Self.a.embed(try Self.cases.tensor("control")), scale: 0.8)], guessMode: false)
        let context = Self.pipeline.textEmbeddings(ids: [try ids("negative_ids"), try ids("prompt_ids")])
        var after: [Tensor] = []
        let final = Self.pipeline.denoise(latents, context: context, guidance: 7.5, scheduler: &scheduler, from: start, control: control,
                                          noise: { Issue.record("\(name) drew noise"); return [] }) { _, x in after.append(x) }
        try expectClose(Tensor.concatenate(after, axis: 0), "\(name)_step_latents", atol: 3e-4)
        try expectClose(Self.pipeline.decodeImages(final), "\(name)_image", atol: 3e-4)
    }

    /// `controlnet_conditioning_channel_order: bgr` reads the control image's channels reversed, and
    /// `global_pool_conditions` averages every residual over the image (in guess mode, as diffusers runs it):
    /// the fixture's weights under edited configs against the fixture's own outputs.
    @Test func channelOrderAndGlobalPoolingFollowTheConfig() throws {
        func variant(_ edit: (inout [String: Any]) -> Void) throws -> ControlNetModel {
            let folder = NSTemporaryDirectory() + "chorus-controlnet-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let source = Self.folder + "/controlnet/a"
            var config = try JSONSerialization.jsonObject(with: try Data(contentsOf: URL(fileURLWithPath: source + "/config.json"))) as! [String: Any]
            edit(&config)
            try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: folder + "/config.json"))
            try FileManager.default.createSymbolicLink(atPath: folder + "/diffusion_pytorch_model.safetensors",
                                                       withDestinationPath: source + "/diffusion_pytorch_model.safetensors")
            return try ControlNetModel(folder: folder)
        }
        let control = try Self.cases.tensor("control")
        let bgr = try variant { $0["controlnet_conditioning_channel_order"] = "bgr" }
        let reversed = Tensor.concatenate((0..<3).reversed().map { control.slice(axis: 1, $0..<($0 + 1)) }, axis: 1)
        try expectClose(bgr.embed(reversed), "cond_embedding", atol: 2e-5)

        let pooled = try variant { $0["global_pool_conditions"] = true }
        let guidance = ControlGuidance(nets: [.init(model: pooled, condition: pooled.embed(control))], guessMode: false)
        #expect(guidance.guessMode, "global pooling runs in guess mode")
        let latents = try Self.sd.tensor("latents_init"), context = try Self.sd.tensor("prompt_embeds")
        let plain = Self.a(latents, timestep: 500, context: context, condition: Self.a.embed(control), scale: 1, guessMode: false)
        let residuals = pooled(latents, timestep: 500, context: context, condition: pooled.embed(control), scale: 1, guessMode: true)
        for (r, p) in zip(residuals.down + [residuals.mid], plain.down + [plain.mid]) {
            let plane = p.shape[2] * p.shape[3]
            for start in stride(from: 0, to: p.count, by: plane) {
                let mean = p.storage[start..<(start + plane)].reduce(0, +) / Float(plane)
                #expect(abs(r.storage[start] - mean) < 1e-4 && abs(r.storage[start + plane - 1] - mean) < 1e-4)
            }
        }
    }
}
