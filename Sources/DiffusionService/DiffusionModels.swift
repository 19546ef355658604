import ChorusAPI
import ChorusServiceKit
import ChorusWire
import Foundation
import Synchronization
import ChorusStableDiffusion
import ChorusTerrain

/// A loaded diffusion model of either kind.
enum DiffusionModel: Sendable {
    case terrain(TerrainEngine)
    case stableDiffusion(StableDiffusionEngine)
}

/// The loaded models by name; LoadModel adds one and UnloadModel takes one away while calls keep the
/// engine they already hold.
final class DiffusionModels: Sendable {
    private let models = Mutex<[String: DiffusionModel]>([:])

    var all: [String: DiffusionModel] { models.withLock { $0 } }

    func add(_ name: String, _ model: DiffusionModel) { models.withLock { $0[name] = model } }

    func remove(_ name: String) -> Bool { models.withLock { $0.removeValue(forKey: name) } != nil }

    /// What a folder or file holds: a diffusers Stable Diffusion folder, or an ONNX terrain consistency
    /// UNet (a file, or a folder holding one); nil when neither.
    static func kind(at path: String) -> String? {
        let fm = FileManager.default
        var isFolder: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isFolder) else { return nil }
        if !isFolder.boolValue { return path.hasSuffix(".onnx") ? "consistency-unet" : nil }
        if fm.fileExists(atPath: path + "/unet/config.json") { return "stable-diffusion" }
        return terrainFile(in: path) == nil ? nil : "consistency-unet"
    }

    /// The terrain UNet in a folder: an .onnx whose name says consistency and that is no Piper voice.
    static func terrainFile(in folder: String) -> String? {
        let fm = FileManager.default
        return ((try? fm.contentsOfDirectory(atPath: folder)) ?? []).sorted().first {
            $0.hasSuffix(".onnx") && $0.contains("consistency") && !fm.fileExists(atPath: folder + "/" + $0 + ".json")
        }.map { (folder as NSString).appendingPathComponent($0) }
    }

    /// Loads `path` as `kind` ("stable-diffusion", "consistency-unet", or nil to tell from the files) and
    /// describes it for ListModels.
    static func load(name: String, path: String, kind: String?, device: String) throws -> (DiffusionModel, ModelInfo) {
        guard let found = kind ?? Self.kind(at: path) else {
            throw WireStatus(.invalidArgument, "\(path) is neither a diffusers Stable Diffusion folder (unet/config.json …) nor a terrain consistency UNet (.onnx)")
        }
        let started = Date()
        func seconds() -> KeyValue { KeyValue(key: "load_seconds", value: String(format: "%.2f", Date().timeIntervalSince(started))) }
        do {
            switch found {
            case "stable-diffusion":
                let engine = try StableDiffusionEngine(name: name, folder: path)
                let p = engine.pipeline
                return (.stableDiffusion(engine), ModelInfo(
                    name: name, kind: "stable-diffusion", source: path, format: "diffusers", device: device,
                    details: [KeyValue(key: "native_size", value: "\(p.nativeSize)x\(p.nativeSize)"),
                              KeyValue(key: "scheduler", value: p.defaultScheduler.rawValue),
                              KeyValue(key: "prediction_type", value: p.predictionType), seconds()]))
            case "consistency-unet":
                guard let onnx = path.hasSuffix(".onnx") ? path : terrainFile(in: path) else {
                    throw WireStatus(.invalidArgument, "\(path) holds no terrain consistency UNet .onnx file")
                }
                let engine = try TerrainEngine(name: name, onnx: onnx)
                return (.terrain(engine), ModelInfo(
                    name: name, kind: "consistency-unet", source: onnx, format: "ONNX", device: device,
                    details: [KeyValue(key: "size", value: "128x128"), KeyValue(key: "difficulty", value: "1-100"), seconds()]))
            default:
                throw WireStatus(.invalidArgument, "kind '\(found)' is not one of stable-diffusion, consistency-unet")
            }
        } catch let status as WireStatus {
            throw status
        } catch {
            throw WireStatus(.failedPrecondition, "\(path) looks like a \(found) model but did not load: \(error)")
        }
    }
}
