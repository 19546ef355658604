import ChorusCLIP
import ChorusMedia
import ChorusTensor
import ChorusText
import Foundation

/// A diffusers Stable Diffusion 1.x/2.x folder (text_encoder, tokenizer, unet, vae, scheduler) and the
/// loop of diffusers' `StableDiffusionPipeline` / `StableDiffusionImg2ImgPipeline`: encode the prompts,
/// start from noise (or from the noised init image), for each timestep run the UNet on
/// [unconditional, conditional] at once, mix them by the guidance scale, step the scheduler; decode.
public final class StableDiffusionPipeline: Sendable {
    package let tokenizer: any Tokenizer
    package let padID: Int
    package let textEncoder: CLIPTextTransformer
    package let unet: UNet2DConditionModel
    package let vae: AutoencoderKL
    package let schedulerConfig: SchedulerConfig
    /// The scheduler the folder ships (`scheduler/scheduler_config.json`'s class).
    public let defaultScheduler: SchedulerKind
    public let folder: String

    public init(folder: String) throws {
        self.folder = folder
        let url = URL(fileURLWithPath: folder)
        func path(_ parts: String...) -> String { parts.reduce(url) { $0.appendingPathComponent($1) }.path }
        guard FileManager.default.fileExists(atPath: path("unet", "config.json")) else {
            throw WeightFileError(folder, "is not a diffusers Stable Diffusion folder (no unet/config.json)")
        }
        func weights(_ component: String, stem: String) throws -> SafeTensorsCheckpoint {
            let dir = path(component)
            for candidate in [stem, "\(stem).fp16"] where FileManager.default.fileExists(atPath: "\(dir)/\(candidate).safetensors")
                || FileManager.default.fileExists(atPath: "\(dir)/\(candidate).safetensors.index.json") {
                return try SafeTensorsCheckpoint(folder: dir, stem: candidate)
            }
            throw WeightFileError("\(component)/", "has no \(stem).safetensors (only safetensors checkpoints are read)")
        }

        tokenizer = try TokenizerLoader.load(folder: url.appendingPathComponent("tokenizer"))
        padID = Self.padID(tokenizer, configPath: path("tokenizer", "tokenizer_config.json"))
        let textConfig = try JSONConfig.load(CLIPConfig.Text.self, from: path("text_encoder", "config.json"))
        textEncoder = try CLIPTextTransformer(Self.underTextModel(try weights("text_encoder", stem: "model")), config: textConfig,
                                              file: "text_encoder/config.json")
        let unetConfig = try JSONConfig.load(UNet2DConditionConfig.self, from: path("unet", "config.json"))
        unet = try UNet2DConditionModel(try weights("unet", stem: "diffusion_pytorch_model"), config: unetConfig, file: "unet/config.json")
        vae = try AutoencoderKL(try weights("vae", stem: "diffusion_pytorch_model"),
                                config: try JSONConfig.load(AutoencoderKLConfig.self, from: path("vae", "config.json")))
        let schedulerFile = path("scheduler", "scheduler_config.json")
        guard let schedulerData = FileManager.default.contents(atPath: schedulerFile) else {
            throw WeightFileError("scheduler/", "has no scheduler_config.json")
        }
        schedulerConfig = try SchedulerConfig.decode(schedulerData)
        guard let kind = SchedulerKind(className: schedulerConfig.className ?? "PNDMScheduler") else {
            throw WeightFileError("scheduler/scheduler_config.json", "names \(schedulerConfig.className ?? "?"), which this build does not implement; choose one of \(SchedulerKind.allCases.map(\.rawValue).joined(separator: ", ")) per request")
        }
        defaultScheduler = kind
        guard textConfig.hiddenSize == unetConfig.crossAttentionDim[0, of: 1] else {
            throw WeightFileError(folder, "text encoder width \(textConfig.hiddenSize) does not match the UNet's cross_attention_dim \(unetConfig.crossAttentionDim.values)")
        }
    }

    /// transformers 4 saves CLIPTextModel's weights under `text_model.`, transformers 5 without it;
    /// the encoder binds the prefixed names either way.
    package static func underTextModel(_ weights: WeightSource) -> WeightSource {
        let names = weights.names
        guard !names.contains(where: { $0.hasPrefix("text_model.") }) else { return weights }
        return RenamedWeights(weights, mapping: Dictionary(uniqueKeysWithValues: names.map { ("text_model.\($0)", $0) }))
    }

    /// The tokenizer's pad token (SD 1.x pads with <|endoftext|>, SD 2.x with "!").
    package static func padID(_ tokenizer: any Tokenizer, configPath: String) -> Int {
        if let data = FileManager.default.contents(atPath: configPath),
           let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
            let pad = (json["pad_token"] as? String) ?? ((json["pad_token"] as? [String: Any])?["content"] as? String)
            if let pad, let id = tokenizer.tokenID(pad) { return id }
        }
        return tokenizer.tokenID("<|endoftext|>") ?? 0
    }

    /// Latent channels and the image/latent size ratio.
    public var latentChannels: Int { vae.config.latentChannels }
    public var downscale: Int { vae.downscale }
    /// The image side the UNet was trained at (sample_size × the VAE's factor): 512 for SD 1.5.
    public var nativeSize: Int { (unet.config.sampleSize ?? 64) * downscale }
    public var predictionType: String { schedulerConfig.predictionType }

    // MARK: - Text

    /// Prompt → ids padded to 77 with the pad token, truncated keeping <|endoftext|> last
    /// (the tokenizer call of diffusers' `encode_prompt`).
    public func tokenize(_ text: String) -> [Int] {
        let limit = textEncoder.maxTokens
        var ids = tokenizer.encode(text)
        if ids.count > limit, let last = ids.last { ids = Array(ids.prefix(limit - 1)) + [last] }
        return ids + Array(repeating: padID, count: limit - ids.count)
    }

    /// Token counts beyond what the text encoder sees are dropped; this says how many.
    public func truncatedTokens(_ text: String) -> Int { max(0, tokenizer.encode(text).count - textEncoder.maxTokens) }

    /// The text's tokens, start and end of text aside.
    public func plainTokenCount(_ text: String) -> Int { max(0, tokenizer.encode(text).count - 2) }

    /// The text encoder's last hidden state [B, 77, D] (no attention mask, as the SD pipeline runs it).
    package func textEmbeddings(ids: [[Int]]) -> Tensor {
        textEncoder(ids: ids).lastHiddenState
    }

    // MARK: - The loop

    /// Runs `scheduler` from step `start` on `latents` [n, C, h, w] with the context [2n or n, 77, D]
    /// (unconditional rows first when guiding), the ControlNets of `control` adding their residuals.
    /// `onStep(i, latents)` sees the latents after each step and may throw to stop the loop.
    package func denoise(_ latents: Tensor, context: Tensor, guidance: Float, scheduler: inout any Scheduler, from start: Int = 0,
                         control: ControlGuidance? = nil, noise: () -> [Float], onStep: (Int, Tensor) throws -> Void) rethrows -> Tensor {
        let guided = context.shape[0] == 2 * latents.shape[0]
        var sample = latents.storage
        let steps = scheduler.timesteps.count
        for i in start..<steps {
            let scaled = scheduler.scaleModelInput(sample, step: i)
            let input = Tensor(shape: [context.shape[0]] + latents.shape.dropFirst(), storage: guided ? scaled + scaled : scaled)
            let residuals = control?.residuals(input: input, timestep: scheduler.timesteps[i], context: context, guided: guided,
                                               step: i - start, of: steps - start)
            let prediction = unet(input, timestep: scheduler.timesteps[i], context: context, residuals: residuals).storage
            var output = prediction
            if guided {
                let half = sample.count
                output = (0..<half).map { prediction[$0] + guidance * (prediction[half + $0] - prediction[$0]) }
            }
            sample = scheduler.step(output, step: i, sample: sample, noise: noise)
            try onStep(i, Tensor(shape: latents.shape, storage: sample))
        }
        return Tensor(shape: latents.shape, storage: sample)
    }

    /// Latents → images [n, H, W, 3] in [0, 1]: decode(latents / scaling_factor) / 2 + 0.5, clamped.
    package func decodeImages(_ latents: Tensor) -> Tensor {
        var z = latents * (1 / vae.config.scalingFactor)
        if let shift = vae.config.shiftFactor { z = z + shift }
        let image = vae.decode(z)
        var nhwc = image.permuted([0, 2, 3, 1])
        nhwc.storage.withUnsafeMutableBufferPointer { p in
            for i in p.indices { p[i] = min(max(p[i] / 2 + 0.5, 0), 1) }
        }
        return nhwc
    }

    /// An RGB image [1, 3, H, W] in [0, 1] → its latents (the distribution's mean + std · noise,
    /// × scaling_factor), as the img2img pipeline's `retrieve_latents(..., sample_mode="sample")`.
    package func encodeImage(_ rgb: Tensor, noise: [Float]) -> Tensor {
        let (mean, std) = vae.encode(rgb * 2 + -1)
        var latents = mean
        for i in latents.storage.indices { latents.storage[i] += std.storage[i] * noise[i] }
        if let shift = vae.config.shiftFactor { latents = latents + (-shift) }
        return latents * vae.config.scalingFactor
    }
}
