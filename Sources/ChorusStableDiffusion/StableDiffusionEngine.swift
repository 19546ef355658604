import ChorusMedia
import ChorusTensor
import Foundation

/// One Stable Diffusion request, checked: what the pipeline runs.
package struct StableDiffusionJob: Sendable {
    package var prompt = ""
    package var negativePrompt = ""
    package var promptSyntax = PromptSyntax.a1111
    /// What the service found of the prompt when it checked it, for the result.
    package var promptTokens = 0, truncatedTokens = 0
    package var guidanceScale: Float = 7.5
    package var steps = 50
    package var seed: UInt64 = 1
    package var width = 512
    package var height = 512
    package var count = 1
    package var scheduler: SchedulerKind
    package var previewEvery = 0
    /// img2img: the init image (RGB, already at width × height) and how much of the schedule is re-run.
    package var initImage: Image?
    package var strength: Float = 1
    /// ControlNets steering the run, each with its control image (RGB, already at width × height).
    package var controlNets: [ControlNetJob] = []
    package var guessMode = false

    package init(prompt: String = "", negativePrompt: String = "", promptSyntax: PromptSyntax = .a1111,
                 promptTokens: Int = 0, truncatedTokens: Int = 0, guidanceScale: Float = 7.5, steps: Int = 50,
                 seed: UInt64 = 1, width: Int = 512, height: Int = 512, count: Int = 1, scheduler: SchedulerKind,
                 previewEvery: Int = 0, initImage: Image? = nil, strength: Float = 1) {
        self.prompt = prompt
        self.negativePrompt = negativePrompt
        self.promptSyntax = promptSyntax
        (self.promptTokens, self.truncatedTokens) = (promptTokens, truncatedTokens)
        self.guidanceScale = guidanceScale
        self.steps = steps
        self.seed = seed
        self.width = width
        self.height = height
        self.count = count
        self.scheduler = scheduler
        self.previewEvery = previewEvery
        self.initImage = initImage
        self.strength = strength
    }
}

/// One ControlNet of a job: the model, the control image at the output size, its scale and window.
package struct ControlNetJob: Sendable {
    package var model: ControlNetModel
    package var image: Image
    package var scale: Float
    package var start: Double
    package var end: Double

    package init(model: ControlNetModel, image: Image, scale: Float = 1, start: Double = 0, end: Double = 1) {
        (self.model, self.image, self.scale, self.start, self.end) = (model, image, scale, start, end)
    }
}

/// What a run reports while it works.
package enum DiffusionStepEvent: Sendable {
    case progress(step: Int, total: Int)
    /// An RGB preview of the latents at latent resolution (linear approximation, no VAE).
    case preview(Image)
}

/// Stable Diffusion behind the service: seeds, img2img set-up, previews, a memory estimate. The loop itself
/// is the pipeline's.
package final class StableDiffusionEngine: Sendable {
    package let name: String
    package let pipeline: StableDiffusionPipeline

    package init(name: String, folder: String) throws {
        self.name = name
        pipeline = try StableDiffusionPipeline(folder: folder)
    }

    /// The schedule positions img2img runs (diffusers' `get_timesteps`): the last ⌊steps · strength⌋ of
    /// `steps`. Nil when that is none at all.
    package static func img2imgStart(steps: Int, strength: Float) -> Int? {
        let initial = min(Int(Float(steps) * strength), steps)
        return initial == 0 ? nil : steps - initial
    }

    /// Images [count] as 8-bit RGB. `onEvent` may throw (cancellation) to stop between steps.
    package func generate(_ job: StableDiffusionJob, onEvent: (DiffusionStepEvent) throws -> Void) throws -> [Image] {
        let f = pipeline.downscale, channels = pipeline.latentChannels
        let (h, w) = (job.height / f, job.width / f)
        let shape = [job.count, channels, h, w]
        var random = SplitMix64(seed: job.seed)
        var scheduler = try job.scheduler.make(config: pipeline.schedulerConfig, steps: job.steps)

        let guided = job.guidanceScale > 1
        let prompts = try pipeline.conditioning(prompt: job.prompt, negative: job.negativePrompt, syntax: job.promptSyntax, guided: guided)
        var rows = Array(repeating: prompts.cond, count: job.count)
        if let uncond = prompts.uncond { rows = Array(repeating: uncond, count: job.count) + rows }
        let context = Tensor.concatenate(rows, axis: 0)

        var start = 0
        var latents: Tensor
        if let image = job.initImage {
            guard let first = Self.img2imgStart(steps: job.steps, strength: job.strength) else {
                throw StableDiffusionError.nothingToRun(steps: job.steps, strength: job.strength)
            }
            start = first
            let encoded = pipeline.encodeImage(Self.pixels(image), noise: random.normals(channels * h * w))
            let repeated = Array(repeating: encoded.storage, count: job.count).flatMap { $0 }
            latents = Tensor(shape: shape, storage: scheduler.addNoise(repeated, noise: random.normals(repeated.count), step: start))
        } else {
            latents = Tensor(shape: shape, storage: random.normals(shape.reduce(1, *))) * scheduler.initNoiseSigma
        }
        let total = scheduler.timesteps.count - start
        let control = job.controlNets.isEmpty ? nil : ControlGuidance(nets: job.controlNets.map { net in
            let condition = net.model.embed(Self.pixels(net.image))
            return ControlGuidance.Net(model: net.model, condition: Tensor.concatenate(Array(repeating: condition, count: job.count), axis: 0),
                                       scale: net.scale, start: net.start, end: net.end)
        }, guessMode: job.guessMode)
        latents = try pipeline.denoise(latents, context: context, guidance: job.guidanceScale, scheduler: &scheduler, from: start,
                                       control: control, noise: { random.normals(shape.reduce(1, *)) }) { i, current in
            let done = i - start + 1
            try onEvent(.progress(step: done, total: total))
            if job.previewEvery > 0, done % job.previewEvery == 0, done < total, let preview = Self.preview(current) {
                try onEvent(.preview(preview))
            }
        }
        let images = pipeline.decodeImages(latents)
        let pixels = job.height * job.width * 3
        return try (0..<job.count).map { b in
            let bytes = images.storage[(b * pixels)..<((b + 1) * pixels)].map { UInt8(unitInterval: $0) }
            return try Image(width: job.width, height: job.height, channels: 3, pixels: Array(bytes))
        }
    }

    /// An 8-bit RGB image → [1, 3, H, W] in [0, 1].
    package static func pixels(_ image: Image) -> Tensor {
        let rgb = image.rgb(), plane = rgb.width * rgb.height
        var values = [Float](repeating: 0, count: 3 * plane)
        for i in 0..<plane {
            for c in 0..<3 { values[c * plane + i] = Float(rgb.pixels[i * 3 + c]) / 255 }
        }
        return Tensor(shape: [1, 3, rgb.height, rgb.width], storage: values)
    }

    /// SD 1.x/2.x latents → RGB by the usual linear map of the four latent channels (the factors
    /// stable-diffusion-webui's "approx NN"-free preview uses); other latent spaces get no preview.
    package static func preview(_ latents: Tensor) -> Image? {
        guard latents.shape[1] == 4 else { return nil }
        let factors: [[Float]] = [[0.3512, 0.2297, 0.3227], [0.3250, 0.4974, 0.2350], [-0.2829, 0.1762, 0.2721], [-0.2120, -0.2616, -0.7177]]
        let (h, w) = (latents.shape[2], latents.shape[3]), plane = h * w
        var bytes = [UInt8](repeating: 0, count: plane * 3)
        for i in 0..<plane {
            for c in 0..<3 {
                var v: Float = 0
                for k in 0..<4 { v += latents.storage[k * plane + i] * factors[k][c] }
                bytes[i * 3 + c] = v.isNaN ? 0 : UInt8(min(max((v + 1) / 2, 0), 1) * 255)  // checked: NaN out, clamped to 0 ... 255
            }
        }
        return try? Image(width: w, height: h, channels: 3, pixels: bytes)
    }

    /// Bytes a run of this size needs beyond the weights, estimated from the largest live tensors:
    /// the UNet's skips and attention scores at full latent size for the guided batch, and the VAE
    /// decoder's top level (feature maps and the 3×3 convolution's im2col columns) at image size.
    /// Each ControlNet adds its own skips and the residuals it hands over, about the size of the UNet's skips again.
    package func estimatedBytes(width: Int, height: Int, count: Int, guided: Bool, controlNets: Int = 0) -> Int {
        let f = pipeline.downscale
        let positions = (width / f) * (height / f)
        let batch = count * (guided ? 2 : 1)
        let unetChannels = pipeline.unet.config.blockOutChannels
        var skips = 0, level = positions
        for c in unetChannels { skips += (pipeline.unet.config.layersPerBlock + 1) * c * level; level /= 4 }
        let unet = 4 * (batch * ((1 + 2 * controlNets) * skips + 12 * unetChannels[0] * positions) + positions * positions + 9 * 2 * unetChannels[0] * positions)
        let vaeTop = pipeline.vae.config.blockOutChannels[0], vaeNext = pipeline.vae.config.blockOutChannels[min(1, pipeline.vae.config.blockOutChannels.count - 1)]
        let pixels = width * height
        let vae = 4 * (count * 6 * vaeTop * pixels + 9 * vaeNext * pixels + (positions * positions))
        return max(unet, vae)
    }
}

package enum StableDiffusionError: Error, CustomStringConvertible {
    case nothingToRun(steps: Int, strength: Float)

    package var description: String {
        switch self {
        case .nothingToRun(let steps, let strength):
            return "strength \(strength) of \(steps) steps re-runs no step (⌊steps · strength⌋ = 0); raise strength or steps"
        }
    }
}
