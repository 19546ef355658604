import ChorusAPI
import ChorusCLIP
import ChorusLLM
import ChorusLLaVA
import ChorusMedia
import ChorusServiceKit
import ChorusTensor
import ChorusWire
import Foundation
import Logging

/// The Vision RPC handlers: a thin adapter between the wire and the CLIP engine, the image index and
/// the LLaVA engine.
public struct VisionServer: VisionHandler, CommonServiceHandler, ModelLoadingHandler {
    public struct Settings: Sendable {
        /// How long a call waits for others to share its batch.
        public var batchWindow: Duration
        public var maxBatch: Int
        public var maxImagesPerRequest: Int
        public var maxTextsPerRequest: Int
        public var maxLabels: Int
        public var maxTemplates: Int
        /// Where indexes are saved; nil keeps them in memory only.
        public var dataDirectory: String?
        public var imageLimits: ImageLimits
        /// Most images in one LLaVA conversation.
        public var maxChatImages: Int
        /// LLaVA: new tokens when a request gives no max_new_tokens, and the most it may ask for.
        public var defaultMaxNewTokens: Int
        public var maxNewTokens: Int
        /// LLaVA: finished conversations whose KV cache is kept for their next turn.
        public var cachedConversations: Int
        /// Videos: checked on the container's headers before anything is decoded (--max-video-bytes,
        /// --max-video-seconds; frames wider or taller than 8192 are refused), and the most frames one request
        /// samples (--max-video-frames).
        public var video: VideoLimits
        /// Sampled frames are scaled so their longer side is at most this (the vision towers read 224-448).
        public var videoFrameSide: Int

        public init(batchWindow: Duration = .milliseconds(4), maxBatch: Int = 32, maxImagesPerRequest: Int = 256,
                    maxTextsPerRequest: Int = 4096, maxLabels: Int = 1000, maxTemplates: Int = 100,
                    dataDirectory: String? = nil, imageLimits: ImageLimits = .init(maxWidth: 16384, maxHeight: 16384, maxPixels: 64 << 20),
                    maxChatImages: Int = 8, defaultMaxNewTokens: Int = 256, maxNewTokens: Int = 4096, cachedConversations: Int = 4,
                    video: VideoLimits = VideoLimits(maxBytes: 256 << 20, maxSeconds: 3600, maxFrameSide: 8192, maxFrames: 64),
                    videoFrameSide: Int = 768) {
            self.video = video
            self.videoFrameSide = videoFrameSide
            self.maxChatImages = maxChatImages
            self.defaultMaxNewTokens = defaultMaxNewTokens
            self.maxNewTokens = maxNewTokens
            self.cachedConversations = cachedConversations
            self.batchWindow = batchWindow
            self.maxBatch = maxBatch
            self.maxImagesPerRequest = maxImagesPerRequest
            self.maxTextsPerRequest = maxTextsPerRequest
            self.maxLabels = maxLabels
            self.maxTemplates = maxTemplates
            self.dataDirectory = dataDirectory
            self.imageLimits = imageLimits
        }
    }

    public let runtime: ServiceRuntime
    let settings: Settings
    /// CLIP and LLaVA engines by name: --models at start, LoadModel and UnloadModel since.
    public let registry: ModelRegistry
    public let compute = ComputeQueue()
    let indexes: IndexStore

    var clip: [String: ServedCLIP] { registry.models(ServedCLIP.self) }
    var llava: [String: ServedLLaVA] { registry.models(ServedLLaVA.self) }

    /// Loads every model under the runtime's --models folder (its subfolders, or the folder itself) and
    /// the indexes under the data folder.
    public init(runtime: ServiceRuntime, settings: Settings = .init()) throws {
        self.runtime = runtime
        self.settings = settings
        registry = ModelRegistry(runtime: runtime, kinds: VisionModels.kinds(runtime: runtime, settings: settings, compute: compute))
        if let folder = runtime.options.modelsDirectory {
            try registry.scan(folder, includingFolder: true)
            if registry.models(ServedCLIP.self).isEmpty {
                runtime.logger.warning("no CLIP model under \(folder): embedding, classification and image search answer FAILED_PRECONDITION")
            }
            if registry.models(ServedLLaVA.self).isEmpty {
                let chat = registry.models(ServedLanguageModel.self).isEmpty ? "Caption, Ask and Chat" : "Caption and Ask (Chat has a language model)"
                runtime.logger.warning("no LLaVA model under \(folder): \(chat) answer FAILED_PRECONDITION")
            }
        }
        indexes = try IndexStore(directory: settings.dataDirectory, logger: runtime.logger)
        // FFmpeg's complaints are about a client's file, not the server: logged quietly, never on stderr.
        let logger = runtime.logger
        FFmpegLog.route { level, line in logger.log(level: level == .error ? .info : .debug, "ffmpeg: \(line)") }
        if settings.dataDirectory == nil {
            runtime.logger.info("no --data-dir: image indexes live in memory and are lost on restart")
        }
    }

    /// The chat model a request names — a LLaVA or a GGUF language model — or the default one: for a
    /// conversation with images a LLaVA, for text alone a language model when one is loaded (else a LLaVA).
    /// Caption and Ask need one that reads images.
    func chatEngine(_ name: String, needsImages: Bool = false) throws -> (name: String, engine: any ChatModel) {
        let languageModels = registry.models(ServedLanguageModel.self)
        var models: [String: any ChatModel] = languageModels
        models.merge(llava) { _, vision in vision }
        if !name.isEmpty {
            guard let engine = models[name] else {
                throw WireStatus(.notFound, "no chat model named '\(name)'; loaded: \(models.keys.sorted().joined(separator: ", "))")
            }
            guard engine.readsImages || !needsImages else {
                throw WireStatus(.invalidArgument, "'\(name)' is a language model and reads text only; captions and questions about images need a LLaVA model")
            }
            return (name, engine)
        }
        let candidates = needsImages ? llava.mapValues { $0 as any ChatModel } : models
        guard let first = (needsImages ? nil : languageModels.keys.sorted().first) ?? llava.keys.sorted().first, let engine = candidates[first] else {
            throw runtime.missingModel(needsImages ? "LLaVA" : "chat", hint: "start it with --models DIR holding a Hugging Face LlavaForConditionalGeneration folder or a GGUF language model")
        }
        return (first, engine)
    }

    /// The CLIP engine a request names, or the default one.
    private func engine(_ name: String) throws -> ServedCLIP {
        let clip = self.clip
        if !name.isEmpty {
            guard let engine = clip[name] else {
                throw WireStatus(.notFound, "no CLIP model named '\(name)'; loaded: \(clip.keys.sorted().joined(separator: ", "))")
            }
            return engine
        }
        guard let name = clip.keys.sorted().first, let engine = clip[name] else {
            throw runtime.missingModel("CLIP", hint: "start it with --models DIR holding a Hugging Face CLIPModel folder")
        }
        return engine
    }

    private func imageBytes(_ images: [EncodedImage], field: String) throws -> [[UInt8]] {
        guard images.count <= settings.maxImagesPerRequest else {
            throw WireStatus(.invalidArgument, "\(images.count) \(field) in one request; the limit is \(settings.maxImagesPerRequest)")
        }
        try admit(images.map(\.data), for: "embedding \(images.count) image(s)")
        return images.map { [UInt8]($0.data) }
    }

    /// Refuses work on images that would take the process past --memory-budget-mib: their decoded pixels
    /// (about 30 times the encoded bytes, at most what the image limits allow) and the model's activations.
    func admit(_ images: [Data], generating: Bool = false, for what: @autoclosure () -> String) throws {
        let cap = settings.imageLimits.maxPixels.multipliedReportingOverflow(by: 4)
        let perImage = cap.overflow ? Int.max / 1024 : cap.partialValue
        let decoded = images.reduce(0) { total, data in
            let (scaled, overflow) = data.count.multipliedReportingOverflow(by: 30)
            let (sum, past) = total.addingReportingOverflow(overflow ? perImage : min(scaled, perImage))
            return past ? .max : sum
        }
        let (needed, past) = decoded.addingReportingOverflow(generating ? 128 << 20 : 32 << 20)
        try runtime.admit(needing: past ? .max : needed, for: what())
    }

    /// A conversation's images, and the generation's caches.
    private func admit(chat messages: [ChatTurn]) throws {
        let images = messages.flatMap(\.parts).compactMap { $0.image?.data }
        try admit(images, generating: true, for: "a conversation with \(images.count) image(s)")
    }

    private func embeddings(_ rows: ChorusTensor.Tensor) -> [Embedding] {
        let width = rows.shape[1], storage = rows.storage
        return (0..<rows.shape[0]).map { (row: Int) -> Embedding in Embedding(values: Array(storage[(row * width)..<((row + 1) * width)])) }
    }

    public func embedImages(_ request: EmbedImagesRequest, context: CallContext) async throws -> EmbeddingsResponse {
        let engine = try engine(request.model)
        guard !request.images.isEmpty else { throw WireStatus(.invalidArgument, "the request has no images") }
        let rows = try await engine.embed(images: imageBytes(request.images, field: "images"), limits: settings.imageLimits)
        return EmbeddingsResponse(model: engine.name, dimension: UInt32(engine.dimension), embeddings: embeddings(rows))
    }

    public func embedTexts(_ request: EmbedTextsRequest, context: CallContext) async throws -> EmbeddingsResponse {
        let engine = try engine(request.model)
        guard !request.texts.isEmpty else { throw WireStatus(.invalidArgument, "the request has no texts") }
        guard request.texts.count <= settings.maxTextsPerRequest else {
            throw WireStatus(.invalidArgument, "\(request.texts.count) texts in one request; the limit is \(settings.maxTextsPerRequest)")
        }
        try Self.checkLengths(request.texts, field: "texts")
        let rows = try await engine.embed(texts: request.texts)
        return EmbeddingsResponse(model: engine.name, dimension: UInt32(engine.dimension), embeddings: embeddings(rows),
                                  tokens: UInt32(engine.tokenCount(request.texts)))
    }

    /// CLIP reads 77 tokens of a text: longer ones are cut anyway, so a megabyte label (or a template
    /// of 500,000 "{}" that a label multiplies) is refused before it costs memory and tokenizer time.
    static let maxTextCharacters = 4096

    static func checkLengths(_ texts: [String], field: String) throws {
        if let long = texts.firstIndex(where: { $0.utf8.count > maxTextCharacters }) {
            throw WireStatus(.invalidArgument, "\(field)[\(long)] is \(texts[long].utf8.count) bytes; the limit is \(maxTextCharacters) (CLIP reads 77 tokens)")
        }
    }

    public func classify(_ request: ClassifyRequest, context: CallContext) async throws -> ClassifyResponse {
        let engine = try engine(request.model)
        guard let image = request.image, !image.data.isEmpty else { throw WireStatus(.invalidArgument, "the request has no image") }
        guard !request.labels.isEmpty else { throw WireStatus(.invalidArgument, "the request has no labels to choose from") }
        try admit([image.data], for: "classifying an image")
        guard request.labels.count <= settings.maxLabels else {
            throw WireStatus(.invalidArgument, "\(request.labels.count) labels; the limit is \(settings.maxLabels) (--max-labels)")
        }
        if let blank = request.labels.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces).isEmpty }) {
            throw WireStatus(.invalidArgument, "label \(blank) is empty")
        }
        let templates = request.templates.isEmpty ? ZeroShot.defaultTemplates : request.templates
        guard templates.count <= settings.maxTemplates else {
            throw WireStatus(.invalidArgument, "\(templates.count) templates; the limit is \(settings.maxTemplates)")
        }
        if let bad = templates.first(where: { !$0.contains("{}") }) {
            throw WireStatus(.invalidArgument, "template '\(bad)' has no {} where the label goes")
        }
        try Self.checkLengths(request.labels, field: "labels")
        try Self.checkLengths(templates, field: "templates")
        guard request.labels.count * templates.count <= settings.maxTextsPerRequest else {
            throw WireStatus(.invalidArgument, "\(request.labels.count) labels × \(templates.count) templates is \(request.labels.count * templates.count) texts to embed; the limit is \(settings.maxTextsPerRequest)")
        }
        async let imageRow = engine.embed(images: [[UInt8](image.data)], limits: settings.imageLimits)
        let prompts = try await engine.embed(texts: ZeroShot.prompts(labels: request.labels, templates: templates))
        let labels = ZeroShot.labelEmbeddings(prompts, templates: templates.count)
        let (logits, probabilities) = ZeroShot.scores(image: try await imageRow, labels: labels, logitScale: engine.pipeline.model.logitScale)
        let k = request.topK == 0 ? request.labels.count : min(Int(request.topK), request.labels.count)
        return ClassifyResponse(labels: TopK.indices(of: probabilities, k: k).map {
            LabelScore(label: request.labels[$0], probability: probabilities[$0], logit: logits[$0])
        })
    }

    public func indexAdd(_ request: IndexAddRequest, context: CallContext) async throws -> IndexAddResponse {
        try IndexStore.validate(request.index)
        guard !request.ids.isEmpty else { throw WireStatus(.invalidArgument, "the request has no ids") }
        guard Set(request.ids).count == request.ids.count else { throw WireStatus(.invalidArgument, "ids repeat within the request") }
        let vectors: [[Float]]
        switch (request.images.isEmpty, request.vectors.isEmpty) {
        case (false, true):
            guard request.images.count == request.ids.count else {
                throw WireStatus(.invalidArgument, "\(request.ids.count) ids but \(request.images.count) images")
            }
            let engine = try engine(request.model)
            let rows = try await engine.embed(images: imageBytes(request.images, field: "images"), limits: settings.imageLimits)
            vectors = embeddings(rows).map { $0.values }
        case (true, false):
            guard request.vectors.count == request.ids.count else {
                throw WireStatus(.invalidArgument, "\(request.ids.count) ids but \(request.vectors.count) vectors")
            }
            vectors = try request.vectors.enumerated().map { i, vector in
                guard !vector.values.isEmpty, vector.values.allSatisfy(\.isFinite) else {
                    throw WireStatus(.invalidArgument, "vector \(i) is empty or holds NaN/infinity")
                }
                return vector.values
            }
        default:
            throw WireStatus(.invalidArgument, "give either images or vectors (one per id), not both or neither")
        }
        let (added, size) = try await indexes.add(to: request.index, ids: request.ids, vectors: vectors)
        return IndexAddResponse(added: UInt32(added), size: UInt64(size))
    }

    public func indexSearch(_ request: IndexSearchRequest, context: CallContext) async throws -> IndexSearchResponse {
        try IndexStore.validate(request.index)
        let given = [!request.text.isEmpty, !(request.image?.data.isEmpty ?? true), !(request.vector?.values.isEmpty ?? true)]
        guard given.filter({ $0 }).count == 1 else {
            throw WireStatus(.invalidArgument, "give exactly one query: text, image or vector")
        }
        let k = request.topK == 0 ? 10 : Int(request.topK)
        guard k <= 10_000 else { throw WireStatus(.invalidArgument, "top_k \(k) is above the limit of 10000") }
        let query: [Float]
        if let vector = request.vector, !vector.values.isEmpty {
            guard vector.values.allSatisfy(\.isFinite) else { throw WireStatus(.invalidArgument, "the query vector holds NaN/infinity") }
            query = vector.values
        } else if !request.text.isEmpty {
            query = try await engine(request.model).embed(texts: [request.text]).storage
        } else {
            let image = request.image?.data ?? Data()  // the check above: the one query given is the image
            try admit([image], for: "searching by an image")
            query = try await engine(request.model).embed(images: [[UInt8](image)], limits: settings.imageLimits).storage
        }
        let hits = try await indexes.search(request.index, query: query, k: k)
        return IndexSearchResponse(hits: hits.map { IndexHit(id: $0.id, score: $0.score) })
    }

    public func indexDelete(_ request: IndexDeleteRequest, context: CallContext) async throws -> IndexDeleteResponse {
        try IndexStore.validate(request.index)
        let (deleted, size) = try await indexes.delete(from: request.index, ids: request.ids)
        return IndexDeleteResponse(deleted: UInt32(deleted), size: UInt64(size))
    }

    public func caption(_ request: CaptionRequest, context: CallContext) async throws -> TextResponse {
        let engine = try chatEngine(request.model, needsImages: true).engine
        guard let image = request.image, !image.data.isEmpty else { throw WireStatus(.invalidArgument, "the request has no image") }
        let prompt = request.prompt.isEmpty ? "Describe the image." : request.prompt
        return try await reply(engine, [ChatTurn(role: "user", parts: [ChatPart(image: image), ChatPart(text: prompt)])], request.generation)
    }

    public func ask(_ request: AskRequest, context: CallContext) async throws -> TextResponse {
        let engine = try chatEngine(request.model, needsImages: true).engine
        guard let image = request.image, !image.data.isEmpty else { throw WireStatus(.invalidArgument, "the request has no image") }
        guard !request.question.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw WireStatus(.invalidArgument, "the request has no question")
        }
        return try await reply(engine, [ChatTurn(role: "user", parts: [ChatPart(image: image), ChatPart(text: request.question)])], request.generation)
    }

    private func reply(_ engine: any ChatModel, _ messages: [ChatTurn], _ options: GenerationOptions?) async throws -> TextResponse {
        try admit(chat: messages)
        let completion = try await engine.chat(messages, options: options, onToken: { _ in })
        return TextResponse(text: completion.text.trimmingCharacters(in: .whitespaces), usage: completion.usage,
                            finishReason: completion.finishReason.rawValue)
    }

    /// One event per token with the text it completes; the last event carries the finish reason, usage
    /// and any text no token completed.
    /// With `prompt` set (and no messages) the text is continued as it is, without the chat template.
    public func chat(_ request: ChatRequest, context: CallContext, responses: ResponseWriter<ChatEvent>) async throws {
        let hasImages = request.messages.contains { $0.parts.contains { $0.image != nil } }
        let engine = try chatEngine(request.model, needsImages: hasImages).engine
        let write: @Sendable (StreamedToken) async throws -> Void = { token in
            try await responses.write(ChatEvent(text: token.text, tokenId: Int32(token.id)))
        }
        let completion: Completion
        if request.prompt.isEmpty {
            try admit(chat: request.messages)
            completion = try await engine.chat(request.messages, options: request.generation, onToken: write)
        } else {
            guard request.messages.isEmpty else {
                throw WireStatus(.invalidArgument, "the request has both messages and a prompt; send one (prompt: text continued without the chat template)")
            }
            completion = try await engine.complete(request.prompt, options: request.generation, onToken: write)
        }
        try await responses.write(ChatEvent(text: completion.tail, finishReason: completion.finishReason.rawValue, usage: completion.usage))
    }
}
