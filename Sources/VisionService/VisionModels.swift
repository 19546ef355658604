import ChorusAPI
import ChorusCLIP
import ChorusLLM
import ChorusLLaVA
import ChorusServiceKit
import ChorusTensor
import Foundation

/// The kinds of model the vision service loads — Hugging Face CLIPModel and LlavaForConditionalGeneration
/// folders, and GGUF language models — each loaded ready to serve: a CLIP engine with its batcher, a LLaVA
/// engine or a language model with its caches.
enum VisionModels {
    static func kinds(runtime: ServiceRuntime, settings: VisionServer.Settings, compute: ComputeQueue) -> [ModelKind] {
        let batching = ServedCLIP.Batching(window: settings.batchWindow, maxBatch: settings.maxBatch,
                                           maxWaiting: max(settings.maxBatch, runtime.options.maxQueue * settings.maxBatch))
        let chatLimits = ChatLimits(maxImages: settings.maxChatImages, defaultMaxNewTokens: settings.defaultMaxNewTokens,
                                            maxNewTokens: settings.maxNewTokens, maxStops: 16, image: settings.imageLimits)
        let limiter = runtime.limiter
        let clip = ModelKind("clip", recognizes: { JSONConfig.modelType(folder: $0) == "clip" }) { name, path in
            let pipeline = try CLIPPipeline(folder: path)
            let config = pipeline.model.config
            let engine = ServedCLIP(name: name, pipeline: pipeline, batching: batching, limiter: limiter, compute: compute)
            return [.init(name: name, model: engine, info: ModelInfo(
                format: "Hugging Face safetensors",
                details: [KeyValue(key: "dimension", value: "\(pipeline.model.dimension)"),
                          KeyValue(key: "image_size", value: "\(config.vision.imageSize)"),
                          KeyValue(key: "vision_width", value: "\(config.vision.hiddenSize)"),
                          KeyValue(key: "text_width", value: "\(config.text.hiddenSize)")]))]
        }
        let llava = ModelKind("llava", recognizes: { JSONConfig.modelType(folder: $0) == "llava" }) { name, path in
            let pipeline = try LlavaPipeline(folder: path)
            let config = pipeline.model.config
            let engine = ServedLLaVA(generator: LlavaGenerator(pipeline: pipeline, cachedConversations: settings.cachedConversations),
                                     limiter: limiter, compute: compute, limits: chatLimits)
            return [.init(name: name, model: engine, info: ModelInfo(
                format: GGUFFolder.file(in: path) == nil ? "Hugging Face safetensors" : "Hugging Face safetensors, GGUF language model",
                details: [KeyValue(key: "context", value: "\(config.text.maxPositionEmbeddings)"),
                          KeyValue(key: "image_tokens", value: "\(pipeline.model.imageTokens)"),
                          KeyValue(key: "text_layers", value: "\(config.text.numHiddenLayers)"),
                          KeyValue(key: "text_width", value: "\(config.text.hiddenSize)"),
                          KeyValue(key: "chat_template", value: pipeline.chatTemplate == nil ? "llava-1.5 default" : "from the folder")]))]
        }
        // A folder holding one GGUF file: a language model as llama.cpp serves it (SmolLM2, Gemma 3 ...). In a
        // LLaVA folder the GGUF is that LLaVA's language half, loaded by the kind above.
        let gguf = ModelKind("gguf", recognizes: { GGUFFolder.file(in: $0) != nil && JSONConfig.modelType(folder: $0) != "llava" }) { name, path in
            guard let file = GGUFFolder.file(in: path) else { throw WeightFileError(name, "holds no .gguf file") }
            let model = try GGUFLanguageModel(path: file)
            let engine = ServedLanguageModel(name: name, model: model, cachedConversations: settings.cachedConversations,
                                             limiter: limiter, compute: compute, limits: chatLimits)
            return [.init(name: name, model: engine, info: ModelInfo(
                format: "GGUF",
                details: [KeyValue(key: "architecture", value: model.architecture),
                          KeyValue(key: "context", value: "\(model.contextLength)"),
                          KeyValue(key: "layers", value: "\(model.layers)"),
                          KeyValue(key: "width", value: "\(model.width)"),
                          KeyValue(key: "vocabulary", value: "\(model.vocabularySize)"),
                          KeyValue(key: "chat_template", value: model.chatTemplateOrigin)]))]
        }
        return [clip, llava, gguf]
    }
}

/// Where a model folder's GGUF file is: the folder's one `.gguf` (or the path itself when it is one).
enum GGUFFolder {
    static func file(in path: String) -> String? {
        if path.hasSuffix(".gguf") { return path }
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: path) else { return nil }
        let files = names.filter { $0.hasSuffix(".gguf") }
        return files.count == 1 ? (path as NSString).appendingPathComponent(files[0]) : nil
    }
}
