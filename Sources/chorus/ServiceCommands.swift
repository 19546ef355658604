import ArgumentParser
import ChorusAPI
import ChorusMedia
import ChorusServiceKit
import ChorusTensor
import ChorusWire
import DiffusionService
import ChorusStableDiffusion
import Foundation
import Logging
import NIOCore
import SpeechService
import VisionService

/// The flags every service takes (STYLE.md: the same flags everywhere).
struct ServiceFlags: ParsableArguments {
    @OptionGroup var listener: ListenerFlags

    @Option(help: "Compute device (ChorusTensor's Backend): 'cpu' runs on OpenBLAS; 'cuda:N' names the CUDA backend, which this build does not have.")
    var device = "cpu"

    @Option(help: "Folder with model weights to load at start.")
    var models: String?

    @Option(help: "Model calls running at once; more wait in the queue.")
    var maxConcurrency = 2

    @Option(help: "Model calls allowed to wait; past that calls are refused with RESOURCE_EXHAUSTED.")
    var maxQueue = 64

    @Option(help: "Resident memory in MiB this process may reach: a call whose work would take it past is refused with RESOURCE_EXHAUSTED before it starts, instead of the kernel's OOM killer ending every call (default: no budget).")
    var memoryBudgetMib: Int?

    @Option(help: "Require 'authorization: Bearer KEY' metadata on every call but Health (or set CHORUS_SERVICE_API_KEY); give the gateway the same key with --service-api-key.")
    var apiKey: String?

    @Option(help: "A file whose first line is the key (instead of --api-key).")
    var apiKeyFile: String?

    @Option(help: "Port for plain-HTTP health checks and metrics (GET /livez, /readyz, /metrics) on --host, for Kubernetes probes and Prometheus; it answers 'loading models' from the start (default: none; 0 picks a free one).")
    var healthHTTPPort: Int?

    func validate() throws {
        do {
            _ = try Backend.select(device)
        } catch {
            throw ValidationError("\(error)")
        }
        if let models {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: models, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ValidationError("models folder '\(models)' does not exist (scripts/fetch-models fills models/)")
            }
        }
        guard maxConcurrency >= 1 else { throw ValidationError("--max-concurrency must be at least 1") }
        guard maxQueue >= 0 else { throw ValidationError("--max-queue must not be negative") }
        if let healthHTTPPort { guard (0...65_535).contains(healthHTTPPort) else { throw ValidationError("--health-http-port must be 0 ... 65535") } }
        if let memoryBudgetMib { guard (1...(1 << 30)).contains(memoryBudgetMib) else { throw ValidationError("--memory-budget-mib must be 1 ... 1073741824") } }
    }

    /// Builds the runtime, lets `makeRoutes` adapt it to the wire, and serves until SIGTERM.
    func run(service: String, defaultPort: Int, makeRoutes: (ServiceRuntime) throws -> [ServerRoute]) async throws {
        ParentWatch.startIfAsked()
        try Logs.bootstrap(level: listener.logLevel)
        RequestNote.installCrashReport(process: service)
        // Past a file-size limit (ulimit -f) a write fails with EFBIG, which the index store reports;
        // the default SIGXFSZ would end the process instead.
        signal(SIGXFSZ, SIG_IGN)
        let logger = Logger(label: "chorus.\(service)")
        let runtime = ServiceRuntime(
            options: .init(service: service, device: device, modelsDirectory: models,
                           maxConcurrency: maxConcurrency, maxQueue: maxQueue, memoryBudgetBytes: memoryBudgetMib.map { $0 << 20 }),
            logger: logger)
        logger.info("kernels: \(VectorMath.features)")
        logger.info("OpenBLAS kernel \(BLASInfo.kernel); \(BLASInfo.threading)")
        if let note = BLASInfo.replacementNote { logger.info("\(note)") }
        if let advice = BLASInfo.advice { logger.warning("\(advice)") }
        if let models {
            logger.info("looking for \(service) models in \(models)")
        } else {
            logger.info("no --models folder given: model methods answer FAILED_PRECONDITION until models are loaded")
        }
        // Before the models load, so a startup probe reads "loading models" rather than a refused connection.
        var health: HealthEndpoint?
        if let healthHTTPPort {
            health = try await HealthEndpoint.start(host: listener.host, port: healthHTTPPort, runtime: runtime)
            logger.info("health checks on http://\(listener.host):\(health!.port) (/livez, /readyz, /metrics)")
        }
        let key = try APIKey.load(flag: apiKey, file: apiKeyFile, environment: "CHORUS_SERVICE_API_KEY")
        let routes = try key.map { $0.guarding(try makeRoutes(runtime), who: "the \(service) service") } ?? makeRoutes(runtime)
        if key != nil { logger.info("calls other than Health need the service API key") }
        try await ServiceHost.serve(
            routes: routes, host: listener.host, port: listener.port ?? defaultPort, maxFrameSize: listener.maxFrameMib << 20,
            limits: listener.connections.limits, security: try listener.security(), drainGrace: .seconds(Int64(listener.drainGrace)), logger: logger,
            onStarted: { address, server in
                runtime.attach(server: server, address: address)
                logger.info("\(service) listening on \(address) (device \(device), \(routes.count) methods, max concurrency \(maxConcurrency), max queue \(maxQueue))")
            },
            onDraining: { runtime.setDraining() })
        await health?.close()
    }
}

struct VisionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vision", abstract: "Run VisionService: CLIP embeddings, zero-shot classification, image search, LLaVA chat, video questions.",
        discussion: "Every subfolder of --models holding a Hugging Face CLIPModel or LlavaForConditionalGeneration is loaded under its folder name. Concurrent embedding calls are combined into batches (dynamic batching): a call waits up to --batch-window-ms for company, batches hold at most --max-batch inputs. LLaVA chats keep the KV cache of their last --cached-conversations conversations, so a next turn computes only its new tokens.")
    @OptionGroup var flags: ServiceFlags

    @Option(help: "Milliseconds an embedding call waits for others to share its batch (0 = no dynamic batching).")
    var batchWindowMs: Double = 4

    @Option(help: "Most images or texts run as one batch.")
    var maxBatch = 32

    @Option(help: "Most labels one Classify call may name.")
    var maxLabels = 1000

    @Option(help: "Most images one call may carry.")
    var maxImages = 256

    @Option(help: "Folder where image indexes are saved (one file per index); without it indexes live in memory only.")
    var dataDir: String?

    @Option(help: "Most images in one LLaVA conversation.")
    var maxChatImages = 8

    @Option(help: "LLaVA: new tokens generated when a request sets no max_new_tokens.")
    var defaultMaxNewTokens = 256

    @Option(help: "LLaVA: the most new tokens a request may ask for.")
    var maxNewTokens = 4096

    @Option(help: "LLaVA: finished conversations whose KV cache is kept for their next turn (0 = none).")
    var cachedConversations = 4

    @Option(help: "Videos (AskVideo, DescribeVideo): the largest container accepted, in MiB.")
    var maxVideoMib = 256

    @Option(help: "Videos: the longest accepted, in seconds, as the container's header says (checked before decoding).")
    var maxVideoSeconds = 3600.0

    @Option(help: "Videos: the most frames one request samples (num_frames, or fps over the clip).")
    var maxVideoFrames = 64

    func validate() throws {
        guard batchWindowMs >= 0, batchWindowMs <= 1000 else { throw ValidationError("--batch-window-ms must be 0 ... 1000") }
        guard maxBatch >= 1 else { throw ValidationError("--max-batch must be at least 1") }
        guard maxLabels >= 1, maxImages >= 1 else { throw ValidationError("--max-labels and --max-images must be at least 1") }
        guard maxChatImages >= 1, defaultMaxNewTokens >= 1, maxNewTokens >= defaultMaxNewTokens else {
            throw ValidationError("--max-chat-images and --default-max-new-tokens must be at least 1, and --max-new-tokens at least --default-max-new-tokens")
        }
        guard cachedConversations >= 0 else { throw ValidationError("--cached-conversations cannot be negative") }
        guard (1...4096).contains(maxVideoMib), maxVideoSeconds.isFinite, maxVideoSeconds > 0, maxVideoSeconds <= 86400, (1...1024).contains(maxVideoFrames) else {
            throw ValidationError("--max-video-mib must be 1 ... 4096, --max-video-seconds 0 ... 86400, --max-video-frames 1 ... 1024")
        }
    }

    func run() async throws {
        let settings = VisionServer.Settings(batchWindow: .microseconds(Int64(batchWindowMs * 1000)), maxBatch: maxBatch,
                                             maxImagesPerRequest: maxImages, maxLabels: maxLabels, dataDirectory: dataDir,
                                             maxChatImages: maxChatImages, defaultMaxNewTokens: defaultMaxNewTokens,
                                             maxNewTokens: maxNewTokens, cachedConversations: cachedConversations,
                                             video: VideoLimits(maxBytes: maxVideoMib << 20, maxSeconds: maxVideoSeconds, maxFrameSide: 8192, maxFrames: maxVideoFrames))
        try await flags.run(service: "vision", defaultPort: 7101) { try VisionServer(runtime: $0, settings: settings).routes }
    }
}

struct DiffusionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diffusion", abstract: "Run DiffusionService: text-to-image and img2img.",
        discussion: "Every subfolder of --models that is a diffusers Stable Diffusion 1.x/2.x folder (unet/, vae/, text_encoder/, tokenizer/, scheduler/; safetensors) or holds the terrain consistency UNet (.onnx) is loaded under its folder name. A request without a model name goes to Stable Diffusion when it has a prompt and to the terrain model when it has none. Schedulers per request: pndm, ddim, euler, euler_a, dpmpp_2m, dpmpp_2m_karras, lcm (default: the folder's own).")
    @OptionGroup var flags: ServiceFlags

    @Option(help: "Stable Diffusion: the largest width × height a request may ask for, in pixels.")
    var maxPixels = 1024 * 1024

    @Option(help: "Stable Diffusion: the most denoising steps a request may ask for.")
    var maxSteps = 150

    @Option(help: "Stable Diffusion: the most images one request may ask for.")
    var maxImages = 8

    @Option(help: "Memory in GB a run may use beyond the weights; a request estimated above it is refused with RESOURCE_EXHAUSTED before it starts (default: what the machine has available at that moment).")
    var memoryBudgetGb: Double?

    @Option(help: ArgumentHelp("Prompt styles to add to the built-in ones (a style of the same name replaces it): a JSON file {\"styles\": [{\"name\": …, \"prompt\": \"… {prompt} …\", \"negative_prompt\": …}]}, the same in YAML (.yaml, .yml), or AUTOMATIC1111's styles.csv.", valueName: "file"))
    var styles: String?

    func validate() throws {
        guard maxPixels >= 64 * 64, maxSteps >= 1, maxImages >= 1 else {
            throw ValidationError("--max-pixels must be at least 4096, --max-steps and --max-images at least 1")
        }
        if let memoryBudgetGb, memoryBudgetGb <= 0 { throw ValidationError("--memory-budget-gb must be positive") }
    }

    func run() async throws {
        var library = PromptStyleLibrary.builtIn
        if let styles {
            do {
                library = library.adding(try StyleFile.load(path: styles))
            } catch {
                throw ValidationError("--styles: \(error)")
            }
        }
        let settings = DiffusionServer.Settings(maxPixels: maxPixels, maxSteps: maxSteps, maxImages: maxImages,
                                                memoryBudgetBytes: memoryBudgetGb.map { Int($0 * 1e9) }, styles: library)
        try await flags.run(service: "diffusion", defaultPort: 7102) { try DiffusionServer(runtime: $0, settings: settings).routes }
    }
}

struct SpeechCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "speech", abstract: "Run SpeechService: Whisper speech-to-text and VITS text-to-speech.",
        discussion: "Every subfolder of --models holding a Whisper model (CTranslate2 model.bin or a Hugging Face folder) is loaded under its folder name; whisper-tiny.en is the default. Piper voices (X.onnx beside X.onnx.json, named X; phonemes from the espeak-ng program) and Hugging Face VitsModel folders (MMS-TTS) found there are loaded for Synthesize.")
    @OptionGroup var flags: ServiceFlags

    @Option(help: "Longest audio accepted, in seconds.")
    var maxAudioSeconds: Double = 3600

    @Option(help: "Beams for transcription when a request does not say (1 = greedy).")
    var beamSize = 5

    @Option(help: "Longest text Synthesize accepts, in characters.")
    var maxTextChars = 5000

    @Option(help: "Whisper's linears: float32, or int8 (int8 weights with a scale per row and 128 values, about 2-4x faster products; the same words on the reference clips, timestamps within 0.1 s). int8 needs AVX-512 VNNI; without it the service logs why and runs float32. ListModels reports each model's precision.")
    var precision: Precision = .float32

    func run() async throws {
        let settings = SpeechServer.Settings(maxAudioSeconds: maxAudioSeconds, beamSize: max(1, beamSize), maxTextCharacters: max(1, maxTextChars),
                                             precision: precision)
        try await flags.run(service: "speech", defaultPort: 7103) { try SpeechServer(runtime: $0, settings: settings).routes }
    }
}

extension Precision: ExpressibleByArgument {}

extension VisionCommand: HasExamples {
    static let examples = [
        "chorus vision --port 7101 --models models --data-dir data/vision",
    ]
}

extension DiffusionCommand: HasExamples {
    static let examples = [
        "chorus diffusion --port 7102 --models models",
    ]
}

extension SpeechCommand: HasExamples {
    static let examples = [
        "chorus speech --port 7103 --models models",
    ]
}
