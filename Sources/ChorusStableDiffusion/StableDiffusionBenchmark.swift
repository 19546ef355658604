import ChorusTensor
import Foundation

/// What `chorus bench diffusion` times on the Stable Diffusion side: one guided UNet step (batch 2,
/// as classifier-free guidance runs it) at an image size, and one VAE decode.
public struct StableDiffusionBenchmark {
    package let pipeline: StableDiffusionPipeline

    public init(folder: String) throws {
        pipeline = try StableDiffusionPipeline(folder: folder)
    }

    private func latents(batch: Int, size: Int) -> Tensor {
        var random = SplitMix64(seed: 1)
        let side = size / pipeline.downscale
        let shape = [batch, pipeline.latentChannels, side, side]
        return Tensor(shape: shape, storage: random.normals(shape.reduce(1, *)))
    }

    /// Median seconds of `body`: one warm-up, then at least `runs` runs or `budget` seconds.
    private func median(runs: Int, budget: Double, _ body: () -> Void) -> Double {
        body()
        var times: [Double] = []
        let started = Date()
        while times.count < runs || (Date().timeIntervalSince(started) < budget && times.count < 30) {
            let t0 = Date()
            body()
            times.append(Date().timeIntervalSince(t0))
        }
        return times.sorted()[times.count / 2]
    }

    /// One UNet evaluation at timestep 500 on [2, C, size/f, size/f] with a [2, 77, D] text context.
    public func unetStepSeconds(size: Int, runs: Int = 2, budget: Double = 10) -> Double {
        let sample = latents(batch: 2, size: size)
        let context = pipeline.textEmbeddings(ids: [pipeline.tokenize(""), pipeline.tokenize("a photo of a cat")])
        return median(runs: runs, budget: budget) { _ = pipeline.unet(sample, timestep: 500, context: context) }
    }

    /// One guided step with a ControlNet at `size`: the ControlNet's forward (its control image embedded once,
    /// as a run does) and the UNet with its residuals.
    public func controlNetStepSeconds(size: Int, controlNetFolder: String, runs: Int = 2, budget: Double = 10) throws -> Double {
        let model = try ControlNetModel(folder: controlNetFolder)
        let sample = latents(batch: 2, size: size)
        let context = pipeline.textEmbeddings(ids: [pipeline.tokenize(""), pipeline.tokenize("a photo of a cat")])
        var random = SplitMix64(seed: 2)
        let image = Tensor(shape: [1, 3, size, size], storage: (0..<(3 * size * size)).map { _ in Float(random.next() % 256) / 255 })
        let control = ControlGuidance(nets: [.init(model: model, condition: model.embed(image))], guessMode: false)
        return median(runs: runs, budget: budget) {
            let residuals = control.residuals(input: sample, timestep: 500, context: context, guided: true, step: 0, of: 1)
            _ = pipeline.unet(sample, timestep: 500, context: context, residuals: residuals)
        }
    }

    /// One VAE decode of a single image's latents at `size`.
    public func vaeDecodeSeconds(size: Int, runs: Int = 2, budget: Double = 10) -> Double {
        let z = latents(batch: 1, size: size)
        return median(runs: runs, budget: budget) { _ = pipeline.vae.decode(z) }
    }
}
