import ChorusAPI
import ChorusMedia
import ChorusServiceKit
import ChorusWire
import Foundation
import Synchronization

/// The Diffusion RPC handlers: a thin adapter between the wire and the diffusion engines. Today that is
/// the terrain consistency UNet; Stable Diffusion folders answer FAILED_PRECONDITION until that engine lands.
/// The loaded terrain models; UnloadModel takes one away while calls keep the engine they already hold.
final class TerrainModels: Sendable {
    private let engines: Mutex<[String: TerrainEngine]>

    init(_ engines: [String: TerrainEngine]) { self.engines = Mutex(engines) }

    var all: [String: TerrainEngine] { engines.withLock { $0 } }

    func remove(_ name: String) { _ = engines.withLock { $0.removeValue(forKey: name) } }
}

public struct DiffusionServer: DiffusionHandler, CommonServiceHandler {
    public let runtime: ServiceRuntime
    let models: TerrainModels
    let compute = ComputeQueue()

    /// Loads every model under the runtime's --models folder.
    public init(runtime: ServiceRuntime) throws {
        self.runtime = runtime
        models = TerrainModels(try Self.loadTerrain(from: runtime.options.modelsDirectory, runtime: runtime))
    }

    private var terrain: [String: TerrainEngine] { models.all }

    /// ONNX files whose graph takes (noisy, sigma, difficulty), in any subfolder, named after the subfolder.
    static func loadTerrain(from folder: String?, runtime: ServiceRuntime) throws -> [String: TerrainEngine] {
        guard let folder else { return [:] }
        var engines: [String: TerrainEngine] = [:]
        let fm = FileManager.default
        for entry in ((try? fm.contentsOfDirectory(atPath: folder)) ?? []).sorted() where !entry.hasPrefix(".") {
            let path = (folder as NSString).appendingPathComponent(entry)
            for file in ((try? fm.contentsOfDirectory(atPath: path)) ?? []).sorted()
            where file.hasSuffix(".onnx") && file.contains("consistency") && !fm.fileExists(atPath: path + "/" + file + ".json") {
                let onnx = (path as NSString).appendingPathComponent(file)
                let started = Date()
                do {
                    let engine = try TerrainEngine(name: entry, onnx: onnx)
                    engines[entry] = engine
                    runtime.addModel(ModelInfo(
                        name: entry, kind: "consistency-unet", source: onnx, format: "ONNX", device: runtime.options.device,
                        details: [KeyValue(key: "size", value: "128x128"), KeyValue(key: "difficulty", value: "1-100"),
                                  KeyValue(key: "load_seconds", value: String(format: "%.2f", Date().timeIntervalSince(started)))]))
                    runtime.logger.info("loaded terrain consistency UNet '\(entry)' from \(onnx)")
                } catch {
                    throw WireStatus(.failedPrecondition, "\(onnx) looks like the terrain consistency UNet but did not load: \(error)")
                }
            }
        }
        if engines.isEmpty { runtime.logger.warning("no diffusion model under \(folder): TextToImage answers FAILED_PRECONDITION") }
        return engines
    }

    private func engine(_ name: String) throws -> TerrainEngine {
        if !name.isEmpty {
            guard let engine = terrain[name] else {
                throw WireStatus(.notFound, "no diffusion model named '\(name)'; loaded: \(terrain.keys.sorted().joined(separator: ", "))")
            }
            return engine
        }
        guard let first = terrain.keys.sorted().first, let engine = terrain[first] else {
            throw runtime.missingModel("diffusion", hint: "start it with --models DIR holding the terrain consistency UNet (scripts/fetch-models) or a diffusers Stable Diffusion folder")
        }
        return engine
    }

    /// Checks what the terrain model can honour: its fixed size, difficulty 1–100, a few images at once.
    private func terrainSettings(_ p: TextToImageRequest) throws -> (count: Int, difficulty: Int) {
        guard (p.width == 0 || p.width == UInt32(TerrainEngine.size)) && (p.height == 0 || p.height == UInt32(TerrainEngine.size)) else {
            throw WireStatus(.invalidArgument, "the terrain model makes \(TerrainEngine.size)×\(TerrainEngine.size) heightfields; width and height must be 0 or \(TerrainEngine.size)")
        }
        guard p.difficulty <= 100 else { throw WireStatus(.invalidArgument, "difficulty \(p.difficulty) is outside 1 ... 100") }
        guard p.numImages <= 16 else { throw WireStatus(.invalidArgument, "num_images \(p.numImages) is above the limit of 16") }
        return (max(1, Int(p.numImages)), p.difficulty == 0 ? 50 : Int(p.difficulty))
    }

    public func textToImage(_ request: TextToImageRequest, context: CallContext, responses: ResponseWriter<DiffusionEvent>) async throws {
        try await run(request, initial: nil, strength: 1, responses: responses)
    }

    public func imageToImage(_ request: ImageToImageRequest, context: CallContext, responses: ResponseWriter<DiffusionEvent>) async throws {
        guard let image = request.initImage, !image.data.isEmpty else { throw WireStatus(.invalidArgument, "the request has no init_image") }
        guard request.strength > 0 && request.strength <= 1 else {
            throw WireStatus(.invalidArgument, "strength \(request.strength) is outside (0, 1]")
        }
        let heights: [Float]
        do {
            heights = try TerrainEngine.heights(from: [UInt8](image.data))
        } catch let error as MediaError {
            throw WireStatus(.invalidArgument, "init_image: \(error)")
        }
        try await run(request.params ?? TextToImageRequest(), initial: heights, strength: request.strength, responses: responses)
    }

    private func run(_ p: TextToImageRequest, initial: [Float]?, strength: Float, responses: ResponseWriter<DiffusionEvent>) async throws {
        let engine = try engine(p.model)
        let (count, difficulty) = try terrainSettings(p)
        let seed = p.seed == 0 ? UInt64.random(in: 1...UInt64.max) : p.seed
        let started = Date()
        let heights = try await runtime.limiter.run {
            try await compute.run { _ in engine.generate(count: count, difficulty: difficulty, seed: seed, initial: initial, strength: strength) }
        }
        try await responses.write(DiffusionEvent(progress: Progress(step: 1, total: 1, elapsedSeconds: Date().timeIntervalSince(started))))
        var images: [ChorusAPI.Image] = [], previews: [ChorusAPI.Image] = []
        for field in heights {
            let (png16, preview) = try TerrainEngine.encode(field)
            images.append(ChorusAPI.Image(data: Data(png16)))
            previews.append(ChorusAPI.Image(data: Data(preview)))
        }
        try await responses.write(DiffusionEvent(result: DiffusionResult(images: images, previews: previews, seed: seed,
                                                                          elapsedSeconds: Date().timeIntervalSince(started))))
    }

    public func loadModel(_ request: LoadModelRequest, context: CallContext) async throws -> LoadModelResponse {
        throw WireStatus(.unimplemented, "loading '\(request.path)' at run time is not in this build yet; put the model under --models and restart")
    }

    public func unloadModel(_ request: UnloadModelRequest, context: CallContext) async throws -> UnloadModelResponse {
        models.remove(request.name)
        guard runtime.removeModel(named: request.name) else {
            throw WireStatus(.notFound, "no model named '\(request.name)' is loaded; ListModels shows what is")
        }
        return UnloadModelResponse(unloaded: true)
    }
}
