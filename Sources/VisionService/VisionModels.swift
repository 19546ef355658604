import ChorusAPI
import ChorusCLIP
import ChorusLLaVA
import ChorusServiceKit
import ChorusTensor
import Foundation

/// The vision models found under --models at start.
struct VisionModels: Sendable {
    var clip: [String: CLIPPipeline] = [:]
    /// Embedding and search use this one when a request names none.
    var defaultCLIP: String?
    var llava: [String: LlavaPipeline] = [:]
    /// Captioning and chat use this one when a request names none.
    var defaultLLaVA: String?

    /// Each subfolder (or the folder itself) holding a Hugging Face CLIPModel is loaded under its name.
    static func load(from folder: String?, runtime: ServiceRuntime) throws -> VisionModels {
        var models = VisionModels()
        guard let folder else { return models }
        var candidates = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
            .filter { !$0.hasPrefix(".") }
            .map { ($0, (folder as NSString).appendingPathComponent($0)) }
        candidates.append(((folder as NSString).lastPathComponent, folder))
        for (name, path) in candidates where JSONConfig.modelType(folder: path) == "clip" {
            let started = Date()
            do {
                let pipeline = try CLIPPipeline(folder: path)
                models.clip[name] = pipeline
                let config = pipeline.model.config
                runtime.addModel(ModelInfo(
                    name: name, kind: "clip", source: path, format: "Hugging Face safetensors", device: runtime.options.device,
                    details: [KeyValue(key: "dimension", value: "\(pipeline.model.dimension)"),
                              KeyValue(key: "image_size", value: "\(config.vision.imageSize)"),
                              KeyValue(key: "vision_width", value: "\(config.vision.hiddenSize)"),
                              KeyValue(key: "text_width", value: "\(config.text.hiddenSize)"),
                              KeyValue(key: "load_seconds", value: String(format: "%.2f", Date().timeIntervalSince(started)))]))
                runtime.logger.info("loaded CLIP '\(name)' from \(path) (dimension \(pipeline.model.dimension)) in \(String(format: "%.2f", Date().timeIntervalSince(started))) s")
            } catch {
                throw WeightFileError(path, "looks like a CLIP model but did not load: \(error)")
            }
        }
        for (name, path) in candidates where JSONConfig.modelType(folder: path) == "llava" {
            let started = Date()
            do {
                let pipeline = try LlavaPipeline(folder: path)
                models.llava[name] = pipeline
                let config = pipeline.model.config
                let seconds = String(format: "%.2f", Date().timeIntervalSince(started))
                runtime.addModel(ModelInfo(
                    name: name, kind: "llava", source: path, format: "Hugging Face safetensors", device: runtime.options.device,
                    details: [KeyValue(key: "context", value: "\(config.text.maxPositionEmbeddings)"),
                              KeyValue(key: "image_tokens", value: "\(pipeline.model.imageTokens)"),
                              KeyValue(key: "text_layers", value: "\(config.text.numHiddenLayers)"),
                              KeyValue(key: "text_width", value: "\(config.text.hiddenSize)"),
                              KeyValue(key: "chat_template", value: pipeline.chatTemplate == nil ? "llava-1.5 default" : "from the folder"),
                              KeyValue(key: "load_seconds", value: seconds)]))
                runtime.logger.info("loaded LLaVA '\(name)' from \(path) (\(config.text.numHiddenLayers) layers × \(config.text.hiddenSize), context \(config.text.maxPositionEmbeddings)) in \(seconds) s")
            } catch {
                throw WeightFileError(path, "looks like a LLaVA model but did not load: \(error)")
            }
        }
        models.defaultCLIP = models.clip.keys.sorted().first
        models.defaultLLaVA = models.llava.keys.sorted().first
        if models.clip.isEmpty {
            runtime.logger.warning("no CLIP model under \(folder): embedding, classification and image search answer FAILED_PRECONDITION")
        }
        if models.llava.isEmpty {
            runtime.logger.warning("no LLaVA model under \(folder): Caption, Ask and Chat answer FAILED_PRECONDITION")
        }
        return models
    }
}
