import ChorusAPI
import ChorusServiceKit
import ChorusTensor
import Foundation
import Logging

/// The speech models found under --models at start.
struct SpeechModels: Sendable {
    var whisper: [String: WhisperEngine] = [:]
    /// Transcription uses this one when a request names none.
    var defaultWhisper: String?

    /// Each subfolder holding a Whisper model (CTranslate2 model.bin or a Hugging Face folder) is loaded
    /// under the folder's name.
    static func load(from folder: String?, runtime: ServiceRuntime) throws -> SpeechModels {
        var models = SpeechModels()
        guard let folder else { return models }
        let fm = FileManager.default
        let entries = (try? fm.contentsOfDirectory(atPath: folder))?.sorted() ?? []
        for entry in entries where !entry.hasPrefix(".") {
            let path = (folder as NSString).appendingPathComponent(entry)
            guard isWhisperFolder(path) else { continue }
            let started = Date()
            do {
                let engine = try WhisperEngine(name: entry, folder: path)
                models.whisper[entry] = engine
                let format = fm.fileExists(atPath: path + "/model.bin") ? "CTranslate2" : "Hugging Face safetensors"
                runtime.addModel(ModelInfo(
                    name: entry, kind: "whisper", source: path, format: format, device: runtime.options.device,
                    details: [KeyValue(key: "multilingual", value: "\(engine.multilingual)"),
                              KeyValue(key: "mel_bins", value: "\(engine.model.melBins)"),
                              KeyValue(key: "load_seconds", value: String(format: "%.2f", Date().timeIntervalSince(started)))]))
            } catch {
                throw WeightFileError(entry, "looks like a Whisper model but did not load: \(error)")
            }
        }
        models.defaultWhisper = models.whisper["whisper-tiny.en"] != nil ? "whisper-tiny.en" : models.whisper.keys.sorted().first
        if models.whisper.isEmpty {
            runtime.logger.warning("no Whisper model under \(folder): transcription answers FAILED_PRECONDITION")
        }
        return models
    }

    private static func isWhisperFolder(_ path: String) -> Bool {
        let fm = FileManager.default
        guard fm.fileExists(atPath: path + "/tokenizer.json") else { return false }
        if fm.fileExists(atPath: path + "/model.bin") { return true }
        guard let data = fm.contents(atPath: path + "/config.json"),
              let config = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return false }
        return config["model_type"] as? String == "whisper"
    }
}
