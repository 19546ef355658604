import ChorusAPI
import ChorusServiceKit
import ChorusStableDiffusion
import ChorusTerrain
import ChorusWire
import Foundation

/// A loaded diffusion model of either kind.
enum DiffusionModel: Sendable {
    case terrain(TerrainEngine)
    case stableDiffusion(StableDiffusionEngine)

    var isStableDiffusion: Bool {
        if case .stableDiffusion = self { return true }
        return false
    }
}

/// The kinds of model the diffusion service loads: diffusers Stable Diffusion folders and the terrain
/// consistency UNet (an ONNX file, or a folder holding one).
enum DiffusionModels {
    /// Every loaded model by name.
    static func all(in registry: ModelRegistry) -> [String: DiffusionModel] {
        registry.models(StableDiffusionEngine.self).mapValues(DiffusionModel.stableDiffusion)
            .merging(registry.models(TerrainEngine.self).mapValues(DiffusionModel.terrain)) { first, _ in first }
    }

    static let kinds = [stableDiffusion, consistencyUNet, controlNet]

    /// A diffusers ControlNet folder (config.json naming ControlNetModel): steers Stable Diffusion runs whose UNet
    /// has its encoder's shape; ListModels shows the cross-attention width and the UNet widths it fits.
    static let controlNet = ModelKind("controlnet", recognizes: isControlNet) { name, path in
        let model = try ControlNetModel(folder: path)
        return [.init(name: name, model: model, info: ModelInfo(
            format: "diffusers ControlNet",
            details: [KeyValue(key: "cross_attention_dim", value: "\(model.crossAttentionDim)"),
                      KeyValue(key: "block_out_channels", value: model.config.blockOutChannels.map(String.init).joined(separator: ",")),
                      KeyValue(key: "conditioning_channel_order", value: model.control.controlnetConditioningChannelOrder),
                      KeyValue(key: "guess_mode_only", value: "\(model.control.globalPoolConditions)")]))]
    }

    static func isControlNet(_ path: String) -> Bool {
        guard let data = FileManager.default.contents(atPath: path + "/config.json"),
              let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return false }
        return json["_class_name"] as? String == "ControlNetModel"
    }

    static let stableDiffusion = ModelKind("stable-diffusion", recognizes: { FileManager.default.fileExists(atPath: $0 + "/unet/config.json") }) { name, path in
        let engine = try StableDiffusionEngine(name: name, folder: path)
        let p = engine.pipeline
        return [.init(name: name, model: engine, info: ModelInfo(
            format: "diffusers",
            details: [KeyValue(key: "native_size", value: "\(p.nativeSize)x\(p.nativeSize)"),
                      KeyValue(key: "scheduler", value: p.defaultScheduler.rawValue),
                      KeyValue(key: "prediction_type", value: p.predictionType)]))]
    }

    /// A folder scanned at start holds the file; LoadModel may name the file itself.
    static let consistencyUNet = ModelKind("consistency-unet", recognizes: { terrainFile(at: $0) != nil }) { name, path in
        guard let onnx = terrainFile(at: path) else {
            throw WireStatus(.invalidArgument, "\(path) holds no terrain consistency UNet .onnx file")
        }
        let engine = try TerrainEngine(name: name, onnx: onnx)
        return [.init(name: name, model: engine, info: ModelInfo(
            source: onnx, format: "ONNX",
            details: [KeyValue(key: "size", value: "128x128"), KeyValue(key: "difficulty", value: "1-100")]))]
    }

    /// The terrain UNet at `path`: the .onnx file itself, or in a folder the .onnx whose name says
    /// consistency and that is no Piper voice.
    static func terrainFile(at path: String) -> String? {
        let fm = FileManager.default
        var isFolder: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isFolder) else { return nil }
        if !isFolder.boolValue { return path.hasSuffix(".onnx") ? path : nil }
        return ((try? fm.contentsOfDirectory(atPath: path)) ?? []).sorted().first {
            $0.hasSuffix(".onnx") && $0.contains("consistency") && !fm.fileExists(atPath: path + "/" + $0 + ".json")
        }.map { (path as NSString).appendingPathComponent($0) }
    }
}
