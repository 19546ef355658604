import ChorusTensor
import ChorusTestSupport
@testable import DiffusionService
import Foundation
import Testing
import ChorusStableDiffusion

/// The tiny random Stable Diffusion of ../shared/fixtures/sd, made with diffusers 0.42: every case of its
/// manifest (text encoder, one UNet forward, VAE decode and encode, the 2-step DDIM and Euler pipelines).
@Suite struct StableDiffusionFixtureTests {
    static let folder = Bundle.module.resourcePath! + "/Fixtures/sd"
    static let fixture = try! SafeTensorsFile(path: folder + "/fixtures.safetensors")
    static let pipeline = try! StableDiffusionPipeline(folder: folder)

    /// The manifest's rule: |actual − expected| ≤ atol + rtol·|expected| everywhere.
    func expectClose(_ actual: Tensor, _ name: String, atol: Float, rtol: Float = 1e-4,
                     sourceLocation: SourceLocation = #_sourceLocation) throws {
        let mismatch = fixtureMismatch(name, actual.storage, try Self.fixture.tensor(name).storage, atol: atol, rtol: rtol)
        #expect(mismatch == nil, "\(mismatch ?? "")", sourceLocation: sourceLocation)
    }

    func ids(_ name: String) throws -> [Int] { try Self.fixture.int64s(name).map(Int.init) }

    @Test func tokenizerPadsToSeventySevenLikeCLIPTokenizer() throws {
        #expect(Self.pipeline.tokenize("a photo of a cat") == (try ids("prompt_ids")))
        #expect(Self.pipeline.tokenize("") == (try ids("negative_ids")))
        // Too long: cut to 77 with <|endoftext|> kept last.
        let long = Self.pipeline.tokenize(String(repeating: "a photo of a cat ", count: 40))
        #expect(long.count == 77 && long.last == Self.pipeline.tokenizer.tokenID("<|endoftext|>"))
    }

    @Test func textEncoderMatchesCLIPTextModel() throws {
        try expectClose(Self.pipeline.textEmbeddings(ids: [try ids("prompt_ids")]), "prompt_embeds", atol: 3e-5)
        try expectClose(Self.pipeline.textEmbeddings(ids: [try ids("negative_ids")]), "negative_prompt_embeds", atol: 3e-5)
    }

    @Test func unetForwardMatchesUNet2DConditionModel() throws {
        let out = Self.pipeline.unet(try Self.fixture.tensor("latents_init"), timestep: 500, context: try Self.fixture.tensor("prompt_embeds"))
        try expectClose(out, "unet_out_t500", atol: 2e-5)
    }

    @Test func vaeMatchesAutoencoderKL() throws {
        try expectClose(Self.pipeline.vae.decode(try Self.fixture.tensor("latents_init")), "vae_decoded", atol: 4e-5)
        let (mean, std) = Self.pipeline.vae.encode(try Self.fixture.tensor("vae_encode_input"))
        try expectClose(mean, "vae_latent_mean", atol: 3e-5)
        try expectClose(std, "vae_latent_std", atol: 3e-5)
    }

    /// StableDiffusionPipeline with guidance 7.5 over [negative, prompt], two steps, no noise drawn.
    @Test(arguments: [("ddim", "scheduler", SchedulerKind.ddim), ("euler", "scheduler_euler", SchedulerKind.euler)])
    func twoStepPipelineMatchesDiffusers(_ name: String, _ configFolder: String, _ kind: SchedulerKind) throws {
        let config = try SchedulerConfig.decode(try Data(contentsOf: URL(fileURLWithPath: "\(Self.folder)/\(configFolder)/scheduler_config.json")))
        var scheduler = try kind.make(config: config, steps: 2)
        #expect(scheduler.timesteps == (try Self.fixture.tensor("\(name)_timesteps")).storage)
        let context = Self.pipeline.textEmbeddings(ids: [try ids("negative_ids"), try ids("prompt_ids")])
        var after: [Tensor] = []
        let latents = try Self.fixture.tensor("latents_init") * scheduler.initNoiseSigma
        let final = Self.pipeline.denoise(latents, context: context, guidance: 7.5, scheduler: &scheduler,
                                          noise: { Issue.record("\(name) drew noise"); return [] }) { _, x in after.append(x) }
        try expectClose(Tensor.concatenate(after, axis: 0), "\(name)_step_latents", atol: 3e-4)
        try expectClose(Self.pipeline.decodeImages(final), "\(name)_image", atol: 3e-4)
    }
}
