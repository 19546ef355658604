import ChorusStableDiffusion
import ChorusTensor
import ChorusTestSupport
import Foundation
import Testing

/// One prompt-embedding fixture (scripts/fixtures/make_prompt_embedding_cases.py, make_compel_cases.py): its
/// prompts, its tensors, and the checks both syntaxes make against it.
struct PromptEmbeddingFixture {
    static let folder = Bundle.module.resourcePath! + "/Fixtures"
    /// The fixture with a final LayerNorm bias in its text encoder: A1111's rescaling to the mean is
    /// meaningful only when the mean is not float rounding (the random fixture's is ~1e-8).
    static let pipeline = try! StableDiffusionPipeline(folder: folder + "/prompts/sd-biased")

    let tensors: SafeTensorsFile
    let cases: [String: [String: Any]]

    /// `name`: the fixture's file name in Fixtures/prompts, without extension.
    init(_ name: String) {
        tensors = try! SafeTensorsFile(path: Self.folder + "/prompts/\(name).safetensors")
        let data = FileManager.default.contents(atPath: Self.folder + "/prompts/\(name).json")!
        cases = (try! JSONSerialization.jsonObject(with: data) as! [String: Any])["cases"] as! [String: [String: Any]]
    }

    func prompt(_ name: String) -> String { cases[name]!["prompt"] as! String }

    func expectClose(_ actual: Tensor, _ name: String, atol: Float, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let expected = try tensors.tensor(name)
        #expect(actual.shape == expected.shape, "\(name): shape \(actual.shape) vs \(expected.shape)", sourceLocation: sourceLocation)
        let mismatch = fixtureMismatch(name, actual.storage, expected.storage, atol: atol)
        #expect(mismatch == nil, "\(mismatch ?? "")", sourceLocation: sourceLocation)
    }

    /// The "long" prompt against the "negative", padded to one length, through two DDIM steps at guidance
    /// 7.5 as diffusers runs prompt_embeds / negative_prompt_embeds: the context, each step's latents and
    /// the image match the recorded run.
    func expectTwoStepRunMatches(syntax: PromptSyntax, sourceLocation: SourceLocation = #_sourceLocation) throws -> PromptConditioning {
        let pipeline = Self.pipeline
        let prompts = try pipeline.conditioning(prompt: prompt("long"), negative: prompt("negative"), syntax: syntax, guided: true)
        let uncond = try #require(prompts.uncond, sourceLocation: sourceLocation)
        try expectClose(prompts.cond, "pipeline_cond", atol: 5e-5, sourceLocation: sourceLocation)
        try expectClose(uncond, "pipeline_uncond", atol: 5e-5, sourceLocation: sourceLocation)

        let config = try SchedulerConfig.decode(try Data(contentsOf: URL(fileURLWithPath: Self.folder + "/sd/scheduler/scheduler_config.json")))
        var scheduler = try SchedulerKind.ddim.make(config: config, steps: 2)
        let latents = try SafeTensorsFile(path: Self.folder + "/sd/fixtures.safetensors").tensor("latents_init") * scheduler.initNoiseSigma
        var after: [Tensor] = []
        let final = pipeline.denoise(latents, context: Tensor.concatenate([uncond, prompts.cond], axis: 0), guidance: 7.5,
                                     scheduler: &scheduler, noise: { Issue.record("DDIM drew noise"); return [] }) { _, x in after.append(x) }
        try expectClose(Tensor.concatenate(after, axis: 0), "pipeline_step_latents", atol: 3e-4, sourceLocation: sourceLocation)
        try expectClose(pipeline.decodeImages(final), "pipeline_image", atol: 3e-4, sourceLocation: sourceLocation)
        return prompts
    }
}
