import ChorusAPI
import ChorusServiceKit
import ChorusTensor
import Foundation
import Logging
import ChorusWhisper
import ChorusVITS

/// The speech models found under --models at start.
struct SpeechModels: Sendable {
    var whisper: [String: WhisperEngine] = [:]
    /// Transcription uses this one when a request names none.
    var defaultWhisper: String?
    var voices: [String: VitsVoice] = [:]
    /// Synthesis uses this one when a request names none.
    var defaultVoice: String?

    /// Each subfolder holding a Whisper model (CTranslate2 model.bin or a Hugging Face folder) is loaded
    /// under the folder's name.
    static func load(from folder: String?, runtime: ServiceRuntime) throws -> SpeechModels {
        var models = SpeechModels()
        guard let folder else { return models }
        let fm = FileManager.default
        let entries = (try? fm.contentsOfDirectory(atPath: folder))?.sorted() ?? []
        for entry in entries where !entry.hasPrefix(".") {
            let path = (folder as NSString).appendingPathComponent(entry)
            try loadVoices(in: path, name: entry, into: &models, runtime: runtime)
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
        models.defaultVoice = models.voices.values.filter { $0.kind == "piper" }.map(\.name).sorted().first ?? models.voices.keys.sorted().first
        if models.voices.isEmpty {
            runtime.logger.warning("no VITS or Piper voice under \(folder): Synthesize answers FAILED_PRECONDITION")
        } else if !EspeakPhonemizer().isAvailable && models.voices.values.contains(where: { $0.kind == "piper" }) {
            runtime.logger.warning("espeak-ng is not installed: Piper voices answer FAILED_PRECONDITION (apt-get install espeak-ng)")
        }
        return models
    }

    /// Piper voices (`X.onnx` beside `X.onnx.json`, named X) and Hugging Face VitsModel folders (named
    /// after the folder).
    private static func loadVoices(in path: String, name: String, into models: inout SpeechModels, runtime: ServiceRuntime) throws {
        let fm = FileManager.default
        let started = Date()
        var loaded: [(VitsVoice, String, String)] = []
        if JSONConfig.modelType(folder: path) == "vits" {
            do {
                loaded.append((try VitsVoice(name: name, huggingFaceFolder: path), path, "Hugging Face safetensors"))
            } catch {
                throw WeightFileError(path, "looks like a VITS model but did not load: \(error)")
            }
        }
        for file in ((try? fm.contentsOfDirectory(atPath: path)) ?? []).sorted() where file.hasSuffix(".onnx") {
            let onnx = (path as NSString).appendingPathComponent(file)
            guard fm.fileExists(atPath: onnx + ".json") else { continue }
            do {
                loaded.append((try VitsVoice(name: String(file.dropLast(5)), piperONNX: onnx), onnx, "Piper ONNX"))
            } catch {
                throw WeightFileError(onnx, "looks like a Piper voice but did not load: \(error)")
            }
        }
        for (voice, source, format) in loaded {
            models.voices[voice.name] = voice
            runtime.addModel(ModelInfo(
                name: voice.name, kind: voice.kind, source: source, format: format, device: runtime.options.device,
                details: [KeyValue(key: "language", value: voice.language), KeyValue(key: "sample_rate", value: "\(voice.sampleRate)"),
                          KeyValue(key: "speakers", value: "\(voice.speakers)"),
                          KeyValue(key: "load_seconds", value: String(format: "%.2f", Date().timeIntervalSince(started)))]))
            runtime.logger.info("loaded voice '\(voice.name)' (\(voice.kind), \(voice.sampleRate) Hz) from \(source)")
        }
    }


    private static func isWhisperFolder(_ path: String) -> Bool {
        let fm = FileManager.default
        guard fm.fileExists(atPath: path + "/tokenizer.json") else { return false }
        if fm.fileExists(atPath: path + "/model.bin") { return true }
        return JSONConfig.modelType(folder: path) == "whisper"
    }
}
