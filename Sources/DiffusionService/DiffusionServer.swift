import ChorusAPI
import ChorusInput
import ChorusMedia
import ChorusServiceKit
import ChorusWire
import Foundation
import ChorusStableDiffusion
import ChorusTerrain

/// The Diffusion RPC handlers: a thin adapter between the wire and the two engines, Stable Diffusion
/// (diffusers folders) and the terrain consistency UNet.
public struct DiffusionServer: DiffusionHandler, CommonServiceHandler, ModelLoadingHandler {
    public struct Settings: Sendable {
        /// Largest width × height a Stable Diffusion request may ask for.
        public var maxPixels: Int
        public var maxSteps: Int
        public var maxImages: Int
        /// Memory a run may use beyond the weights; nil = what /proc/meminfo says is available.
        public var memoryBudgetBytes: Int?
        /// The prompt styles requests may name.
        public var styles: PromptStyleLibrary

        public init(maxPixels: Int = 1024 * 1024, maxSteps: Int = 150, maxImages: Int = 8, memoryBudgetBytes: Int? = nil,
                    styles: PromptStyleLibrary = .builtIn) {
            self.maxPixels = maxPixels
            self.maxSteps = maxSteps
            self.maxImages = maxImages
            self.memoryBudgetBytes = memoryBudgetBytes
            self.styles = styles
        }
    }

    public let runtime: ServiceRuntime
    let settings: Settings
    /// Stable Diffusion and terrain engines by name: --models at start, LoadModel and UnloadModel since.
    public let registry: ModelRegistry
    public let compute = ComputeQueue()

    /// Loads every model under the runtime's --models folder: diffusers Stable Diffusion folders and
    /// terrain consistency UNets, each named after its subfolder.
    public init(runtime: ServiceRuntime, settings: Settings = .init()) throws {
        self.runtime = runtime
        self.settings = settings
        registry = ModelRegistry(runtime: runtime, kinds: DiffusionModels.kinds)
        guard let folder = runtime.options.modelsDirectory else { return }
        try registry.scan(folder)
        if registry.names.isEmpty { runtime.logger.warning("no diffusion model under \(folder): TextToImage answers FAILED_PRECONDITION") }
    }

    /// The model a request names; without a name, Stable Diffusion for a request with a prompt (or a prompt
    /// to build) and the terrain model otherwise, falling back to whichever is loaded.
    private func model(_ name: String, prompted: Bool) throws -> (name: String, model: DiffusionModel) {
        let all = DiffusionModels.all(in: registry)
        if !name.isEmpty {
            guard let model = all[name] else {
                throw WireStatus(.notFound, "no diffusion model named '\(name)'; loaded: \(all.keys.sorted().joined(separator: ", "))")
            }
            return (name, model)
        }
        let sorted = all.sorted { $0.key < $1.key }
        let stableDiffusion = sorted.first { $0.value.isStableDiffusion }, terrain = sorted.first { !$0.value.isStableDiffusion }
        guard let chosen = prompted ? (stableDiffusion ?? terrain) : (terrain ?? stableDiffusion) else {
            throw runtime.missingModel("diffusion", hint: "start it with --models DIR holding the terrain consistency UNet (scripts/fetch-models) or a diffusers Stable Diffusion folder")
        }
        return (chosen.key, chosen.value)
    }

    /// Every numeric field in range before a model is chosen: a NaN or a 4-billion count is refused even
    /// where the chosen model would ignore the field. The models' own limits (--max-steps, the terrain
    /// model's size) come after, with their flags named.
    static func checkRanges(_ p: TextToImageRequest) throws {
        _ = try Checked.number(p.guidanceScale, "guidance_scale", in: 0...50)
        _ = try Checked.integer(p.steps, "steps", in: 0...UInt32(10_000))
        _ = try Checked.integer(p.numImages, "num_images", in: 0...UInt32(64))
        _ = try Checked.integer(p.width, "width", in: 0...UInt32(16384))
        _ = try Checked.integer(p.height, "height", in: 0...UInt32(16384))
        _ = try Checked.integer(p.previewEvery, "preview_every", in: 0...UInt32(10_000))
        _ = try Checked.integer(p.difficulty, "difficulty", in: 0...UInt32(100))
        try checkControlRanges(p)
    }

    public func textToImage(_ request: TextToImageRequest, context: CallContext, responses: ResponseWriter<DiffusionEvent>) async throws {
        try Self.checkRanges(request)
        switch try model(request.model, prompted: Self.hasPrompt(request)).model {
        case .terrain(let engine): try await runTerrain(engine, request, initial: nil, strength: 1, responses: responses)
        case .stableDiffusion(let engine): try await runStableDiffusion(engine, try job(request, engine: engine), responses: responses)
        }
    }

    public func imageToImage(_ request: ImageToImageRequest, context: CallContext, responses: ResponseWriter<DiffusionEvent>) async throws {
        let params = request.params ?? TextToImageRequest()
        try Self.checkRanges(params)
        let chosen = try model(params.model, prompted: Self.hasPrompt(params)).model
        guard let image = request.initImage, !image.data.isEmpty else { throw WireStatus(.invalidArgument, "the request has no init_image") }
        guard request.strength > 0 && request.strength <= 1 else {
            throw WireStatus(.invalidArgument, "strength \(request.strength) is outside (0, 1]")
        }
        switch chosen {
        case .terrain(let engine):
            let heights: [Float]
            do {
                heights = try TerrainEngine.heights(from: [UInt8](image.data))
            } catch let error as MediaError {
                throw WireStatus(.invalidArgument, "init_image: \(error)")
            }
            try await runTerrain(engine, params, initial: heights, strength: request.strength, responses: responses)
        case .stableDiffusion(let engine):
            let decoded: Image
            do {
                decoded = try ImageCodec.decode([UInt8](image.data), limits: ImageLimits(maxWidth: 8192, maxHeight: 8192, maxPixels: 64 << 20))
            } catch let error as MediaError {
                throw WireStatus(.invalidArgument, "init_image: \(error)")
            }
            // Without a size the init image's own, rounded down to the VAE's multiple of 8.
            var sized = params
            let f = max(8, engine.pipeline.downscale)
            if sized.width == 0 { sized.width = UInt32(max(f, decoded.width / f * f)) }
            if sized.height == 0 { sized.height = UInt32(max(f, decoded.height / f * f)) }
            var job = try job(sized, engine: engine, img2img: true)
            job.initImage = decoded.width == job.width && decoded.height == job.height
                ? decoded.rgb() : try decoded.rgb().resized(width: job.width, height: job.height)
            job.strength = request.strength
            guard StableDiffusionEngine.img2imgStart(steps: job.steps, strength: job.strength) != nil else {
                throw WireStatus(.invalidArgument, "strength \(job.strength) of \(job.steps) steps re-runs no step (⌊steps · strength⌋ = 0); raise strength or steps")
            }
            try await runStableDiffusion(engine, job, responses: responses)
        }
    }

    // MARK: - Stable Diffusion

    static func hasPrompt(_ p: TextToImageRequest) -> Bool { !p.prompt.isEmpty || p.build != nil }

    /// The prompt and negative prompt a request means: built from `build` (its prompt and negative_prompt
    /// after a comma), then through the named styles.
    func prompts(_ p: TextToImageRequest) throws -> (prompt: String, negative: String) {
        var (prompt, negative) = (p.prompt, p.negativePrompt)
        do {
            if let b = p.build {
                let built = try PromptBuild(subject: b.subject, style: b.style, qualityBoosters: !b.noQualityBoosters, lighting: b.lighting,
                                            composition: b.composition, extraNegative: b.extraNegative,
                                            defaultNegative: !b.noDefaultNegative).build(with: settings.styles)
                prompt = PromptStyle.merge(prompt, into: built.prompt)
                negative = PromptBuild.uniqueTerms([built.negative, negative]).joined(separator: ", ")
            }
            return try settings.styles.apply(p.styles, prompt: prompt, negative: negative)
        } catch let error as PromptStyleError {
            throw WireStatus(.invalidArgument, "\(error)")
        }
    }

    /// The request's prompt_syntax; empty is a1111.
    static func syntax(_ p: TextToImageRequest) throws -> PromptSyntax {
        if p.promptSyntax.isEmpty { return .a1111 }
        guard let named = PromptSyntax(rawValue: p.promptSyntax) else {
            throw WireStatus(.invalidArgument, "prompt_syntax '\(p.promptSyntax)' is not one of \(PromptSyntax.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return named
    }

    public func promptPreview(_ request: TextToImageRequest, context: CallContext) async throws -> PromptPreviewResponse {
        let engine: StableDiffusionEngine
        switch try model(request.model, prompted: true).model {
        case .stableDiffusion(let e): engine = e
        case .terrain: throw WireStatus(.invalidArgument, "'\(request.model)' is the terrain model, which takes no prompt")
        }
        let pipeline = engine.pipeline
        let (prompt, negative) = try prompts(request)
        let syntax = try Self.syntax(request)
        var answer = PromptPreviewResponse(prompt: prompt, negativePrompt: negative, promptSyntax: syntax.rawValue,
                                           styles: settings.styles.names)
        func chunk(_ tokens: [Int], _ weights: [Double]) -> PromptChunk {
            PromptChunk(tokens: tokens.map { UInt32(clamping: $0) }, weights: weights.map { Float($0) },
                        texts: tokens.map { pipeline.tokenizer.token($0) ?? "" })
        }
        switch syntax {
        case .plain:
            let ids = pipeline.tokenize(prompt), negativeIDs = pipeline.tokenize(negative)
            answer.pieces = [PromptPiece(text: prompt, weight: 1)]
            answer.negativePieces = [PromptPiece(text: negative, weight: 1)]
            answer.chunks = [chunk(ids, ids.map { _ in 1 })]
            answer.negativeChunks = [chunk(negativeIDs, negativeIDs.map { _ in 1 })]
            answer.promptTokens = UInt32(clamping: pipeline.plainTokenCount(prompt))
            answer.negativeTokens = UInt32(clamping: pipeline.plainTokenCount(negative))
            answer.truncatedTokens = UInt32(clamping: pipeline.truncatedTokens(prompt))
        case .compel:
            do {
                let parsed = try CompelPrompt(parsing: prompt), negativeParsed = try CompelPrompt(parsing: negative)
                let (tokens, negativeTokens) = try pipeline.checkedCompelTokens(prompt: prompt, negative: negative, guided: true)
                func pieces(_ p: CompelPrompt) -> [PromptPiece] { p.fragments.map { PromptPiece(text: $0.text, weight: $0.weight) } }
                func chunks(_ t: CompelTokens) -> [PromptChunk] {
                    t.parts.flatMap(\.runs).flatMap { run in
                        stride(from: 0, to: run.ids.count, by: 77).map { chunk(Array(run.ids[$0..<($0 + 77)]), Array(run.weights[$0..<($0 + 77)])) }
                    }
                }
                answer.pieces = pieces(parsed)
                answer.negativePieces = pieces(negativeParsed)
                answer.chunks = chunks(tokens)
                answer.negativeChunks = negativeTokens.map(chunks) ?? []
                answer.promptTokens = UInt32(clamping: tokens.tokenCount)
                answer.negativeTokens = UInt32(clamping: negativeTokens?.tokenCount ?? 0)
            } catch {
                throw WireStatus(.invalidArgument, "\(error)")
            }
        case .a1111:
            do {
                let parsed = try A1111Prompt(parsing: prompt), negativeParsed = try A1111Prompt(parsing: negative)
                let (chunks, negativeChunks) = try pipeline.checkedChunks(prompt: prompt, negative: negative, guided: true)
                answer.pieces = parsed.pieces.map { PromptPiece(text: $0.text, weight: $0.weight) }
                answer.negativePieces = negativeParsed.pieces.map { PromptPiece(text: $0.text, weight: $0.weight) }
                answer.chunks = zip(chunks.tokens, chunks.multipliers).map(chunk)
                answer.negativeChunks = negativeChunks.map { zip($0.tokens, $0.multipliers).map(chunk) } ?? []
                answer.promptTokens = UInt32(clamping: chunks.tokenCount)
                answer.negativeTokens = UInt32(clamping: negativeChunks?.tokenCount ?? 0)
            } catch let error as WireStatus {
                throw error
            } catch {
                throw WireStatus(.invalidArgument, "\(error)")
            }
        }
        return answer
    }

    /// Checks a request against the model and the limits; fills in the defaults (the model's native
    /// size, 50 steps, guidance 7.5, the folder's scheduler, a random seed).
    private func job(_ p: TextToImageRequest, engine: StableDiffusionEngine, img2img: Bool = false) throws -> StableDiffusionJob {
        let pipeline = engine.pipeline
        let f = max(8, pipeline.downscale)  // diffusers' pipelines take multiples of 8 whatever the VAE's factor
        let width = p.width == 0 ? pipeline.nativeSize : Int(p.width), height = p.height == 0 ? pipeline.nativeSize : Int(p.height)
        guard width % f == 0, height % f == 0, width >= f, height >= f else {
            throw WireStatus(.invalidArgument, "width and height must be positive multiples of \(f); got \(width)×\(height)")
        }
        guard width * height <= settings.maxPixels else {  // each side is at most 16384 (checkRanges)
            throw WireStatus(.invalidArgument, "\(width)×\(height) is \(width * height) pixels; the limit is \(settings.maxPixels) (--max-pixels)")
        }
        let steps = p.steps == 0 ? 50 : Int(p.steps)
        guard steps <= settings.maxSteps else { throw WireStatus(.invalidArgument, "steps \(steps) is above the limit of \(settings.maxSteps) (--max-steps)") }
        let count = max(1, Int(p.numImages))
        guard count <= settings.maxImages else { throw WireStatus(.invalidArgument, "num_images \(count) is above the limit of \(settings.maxImages) (--max-images)") }
        guard p.guidanceScale.isFinite, p.guidanceScale >= 0, p.guidanceScale <= 50 else {
            throw WireStatus(.invalidArgument, "guidance_scale \(p.guidanceScale) is outside 0 ... 50")
        }
        let scheduler: SchedulerKind
        if p.scheduler.isEmpty {
            scheduler = pipeline.defaultScheduler
        } else {
            guard let named = SchedulerKind(rawValue: p.scheduler) else {
                throw WireStatus(.invalidArgument, "scheduler '\(p.scheduler)' is not one of \(SchedulerKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            scheduler = named
        }
        do {
            _ = try scheduler.make(config: pipeline.schedulerConfig, steps: steps)
        } catch {
            throw WireStatus(.invalidArgument, "\(scheduler.rawValue) with \(steps) steps: \(error)")
        }
        let guidance = p.guidanceScale == 0 ? 7.5 : p.guidanceScale
        let needed = engine.estimatedBytes(width: width, height: height, count: count, guided: guidance > 1, controlNets: p.controlnets.count)
        var budget = settings.memoryBudgetBytes ?? Self.availableMemory()
        if let processBudget = runtime.options.memoryBudgetBytes {
            // --memory-budget-mib caps the whole process: a run gets what the weights and other runs leave.
            budget = min(budget, max(0, processBudget - Int(clamping: ProcessMemory.residentBytes)))
        }
        guard needed <= budget else {
            throw WireStatus(.resourceExhausted, String(format: "%d×%d × %d image(s) needs about %.1f GB beyond the weights; %.1f GB is available. Ask for fewer or smaller images", width, height, count, Double(needed) / 1e9, Double(budget) / 1e9))
        }
        let syntax = try Self.syntax(p)
        let (prompt, negative) = try prompts(p)
        var report = (tokens: 0, truncated: 0)
        switch syntax {
        case .plain:
            report = (pipeline.plainTokenCount(prompt), pipeline.truncatedTokens(prompt))
            if report.truncated > 0 { runtime.logger.info("plain prompt longer than the text encoder's 77 tokens: \(report.truncated) tokens dropped") }
        case .a1111:
            do {
                let (chunks, _) = try pipeline.checkedChunks(prompt: prompt, negative: negative, guided: guidance > 1)
                report.tokens = chunks.tokenCount
            } catch {
                throw WireStatus(.invalidArgument, "\(error)")
            }
        case .compel:
            do {
                let (tokens, _) = try pipeline.checkedCompelTokens(prompt: prompt, negative: negative, guided: guidance > 1)
                report.tokens = tokens.tokenCount
            } catch {
                throw WireStatus(.invalidArgument, "\(error)")
            }
        }
        var job = StableDiffusionJob(prompt: prompt, negativePrompt: negative, promptSyntax: syntax,
                                     promptTokens: report.tokens, truncatedTokens: report.truncated, guidanceScale: guidance, steps: steps,
                                     seed: p.seed == 0 ? UInt64.random(in: 1...UInt64.max) : p.seed, width: width, height: height,
                                     count: count, scheduler: scheduler, previewEvery: Int(p.previewEvery))
        job.controlNets = try controlNets(p, engine: engine, width: width, height: height, img2img: img2img)
        job.guessMode = p.guessMode
        return job
    }

    /// MemAvailable from /proc/meminfo (Int.max where it cannot be read).
    static func availableMemory() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return .max }
        for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            return (line.split(separator: " ").compactMap { Int($0) }.first ?? 0) * 1024
        }
        return .max
    }

    /// Runs the job on a compute thread, streaming progress and previews as they happen; CANCEL or a
    /// passed deadline stops it after the step in flight.
    private func runStableDiffusion(_ engine: StableDiffusionEngine, _ job: StableDiffusionJob, responses: ResponseWriter<DiffusionEvent>) async throws {
        let started = Date()
        let (events, continuation) = AsyncStream<DiffusionStepEvent>.makeStream()
        let work = Task {
            // Finished however the work ends, a full queue's refusal included: otherwise nobody would.
            defer { continuation.finish() }
            return try await runtime.limiter.run {
                try await compute.run { flag in
                    try engine.generate(job) { event in
                        if flag.isCancelled { throw CancellationError() }
                        continuation.yield(event)
                    }
                }
            }
        }
        do {
            for await event in events {
                switch event {
                case .progress(let step, let total):
                    try await responses.write(DiffusionEvent(progress: Progress(step: UInt32(step), total: UInt32(total),
                                                                                elapsedSeconds: Date().timeIntervalSince(started))))
                case .preview(let image):
                    try await responses.write(DiffusionEvent(preview: EncodedImage(data: Data(try ImageCodec.encodePNG(image)))))
                }
            }
        } catch {
            work.cancel()
            throw error
        }
        let images = try await withTaskCancellationHandler { try await work.value } onCancel: { work.cancel() }
        try Task.checkCancellation()
        let encoded = try images.map { EncodedImage(data: Data(try ImageCodec.encodePNG($0))) }
        let controls = try job.controlNets.map { EncodedImage(data: Data(try ImageCodec.encodePNG($0.image))) }
        let steering = job.controlNets.isEmpty ? "" : ", \(job.controlNets.count) ControlNet(s)"
        runtime.logger.info("\(engine.name): \(job.count) image(s) \(job.width)×\(job.height), \(job.scheduler.rawValue) \(job.steps) steps\(steering) in \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
        try await responses.write(DiffusionEvent(result: DiffusionResult(images: encoded, seed: job.seed, elapsedSeconds: Date().timeIntervalSince(started),
                                                                         promptTokens: UInt32(clamping: job.promptTokens),
                                                                         truncatedTokens: UInt32(clamping: job.truncatedTokens),
                                                                         prompt: job.prompt, negativePrompt: job.negativePrompt,
                                                                         controlImages: controls)))
    }

    // MARK: - Terrain

    /// Checks what the terrain model can honour: its fixed size, difficulty 1–100, a few images at once.
    private func terrainSettings(_ p: TextToImageRequest) throws -> (count: Int, difficulty: Int) {
        guard (p.width == 0 || p.width == UInt32(TerrainEngine.size)) && (p.height == 0 || p.height == UInt32(TerrainEngine.size)) else {
            throw WireStatus(.invalidArgument, "the terrain model makes \(TerrainEngine.size)×\(TerrainEngine.size) heightfields; width and height must be 0 or \(TerrainEngine.size)")
        }
        guard p.difficulty <= 100 else { throw WireStatus(.invalidArgument, "difficulty \(p.difficulty) is outside 1 ... 100") }
        guard p.numImages <= 16 else { throw WireStatus(.invalidArgument, "num_images \(p.numImages) is above the limit of 16") }
        return (max(1, Int(p.numImages)), p.difficulty == 0 ? 50 : Int(p.difficulty))
    }

    private func runTerrain(_ engine: TerrainEngine, _ p: TextToImageRequest, initial: [Float]?, strength: Float,
                            responses: ResponseWriter<DiffusionEvent>) async throws {
        let (count, difficulty) = try terrainSettings(p)
        let seed = p.seed == 0 ? UInt64.random(in: 1...UInt64.max) : p.seed
        let started = Date()
        let heights = try await runtime.limiter.run {
            try await compute.run { _ in engine.generate(count: count, difficulty: difficulty, seed: seed, initial: initial, strength: strength) }
        }
        try await responses.write(DiffusionEvent(progress: Progress(step: 1, total: 1, elapsedSeconds: Date().timeIntervalSince(started))))
        var images: [EncodedImage] = [], previews: [EncodedImage] = []
        for field in heights {
            let (png16, preview) = try TerrainEngine.encode(field)
            images.append(EncodedImage(data: Data(png16)))
            previews.append(EncodedImage(data: Data(preview)))
        }
        try await responses.write(DiffusionEvent(result: DiffusionResult(images: images, previews: previews, seed: seed,
                                                                          elapsedSeconds: Date().timeIntervalSince(started))))
    }
}
