import ChorusAPI
import ChorusServiceKit
import ChorusTensor
import ChorusVITS
import ChorusWhisper
import Foundation

/// The speech models by name — Whisper engines and voices (Piper ONNX or Hugging Face VITS) — what
/// --models held at start and what LoadModel added since.
struct SpeechModels: Sendable {
    let registry: ModelRegistry

    /// Whisper models load with their linears in `precision` (one that runs here: `Precision.available`).
    init(runtime: ServiceRuntime, precision: Precision = .float32) {
        registry = ModelRegistry(runtime: runtime, kinds: [Self.whisperKind(precision), Self.voiceKind])
    }

    var whisper: [String: WhisperEngine] {
        registry.models(WhisperEngine.self)
    }

    /// Transcription uses this one when a request names none.
    var defaultWhisper: String? {
        let whisper = self.whisper
        return whisper["whisper-tiny.en"] != nil ? "whisper-tiny.en" : whisper.keys.sorted().first
    }

    var voices: [String: VitsVoice] {
        registry.models(VitsVoice.self)
    }

    /// Synthesis uses this one when a request names none: a Piper voice first.
    var defaultVoice: String? {
        let voices = self.voices
        return voices.values.filter { $0.kind == .piper }.map(\.name).sorted().first ?? voices.keys.sorted().first
    }

    /// Every subfolder of `folder` holding a Whisper model (CTranslate2 model.bin or a Hugging Face
    /// folder) or voices is loaded, under the folder's name (voices under their own).
    static func load(from folder: String?, runtime: ServiceRuntime, precision: Precision = .float32) throws -> SpeechModels {
        let models = SpeechModels(runtime: runtime, precision: precision)
        guard let folder else { return models }
        try models.registry.scan(folder)
        if models.whisper.isEmpty {
            runtime.logger.warning("no Whisper model under \(folder): transcription answers FAILED_PRECONDITION")
        }
        let voices = models.voices
        if voices.isEmpty {
            runtime.logger.warning("no VITS or Piper voice under \(folder): Synthesize answers FAILED_PRECONDITION")
        } else if !EspeakPhonemizer().isAvailable && voices.values.contains(where: { $0.kind == .piper }) {
            runtime.logger.warning("espeak-ng is not installed: Piper voices answer FAILED_PRECONDITION (apt-get install espeak-ng)")
        }
        return models
    }

    static func whisperKind(_ precision: Precision) -> ModelKind { ModelKind("whisper", recognizes: { isWhisperFolder($0) }) { name, path in
        let engine = try WhisperEngine(name: name, folder: path, precision: precision)
        let format = FileManager.default.fileExists(atPath: path + "/model.bin") ? "CTranslate2" : "Hugging Face safetensors"
        return [.init(name: name, model: engine, info: ModelInfo(
            format: format,
            details: [KeyValue(key: "multilingual", value: "\(engine.multilingual)"),
                      KeyValue(key: "mel_bins", value: "\(engine.model.melBins)"),
                      KeyValue(key: "precision", value: "\(engine.model.precision)")]))]
    } }

    /// Piper voices (`X.onnx` beside `X.onnx.json`, named X; or one such file) and Hugging Face
    /// VitsModel folders (MMS-TTS, named after the folder).
    static let voiceKind = ModelKind("voice", recognizes: { !piperFiles(at: $0).isEmpty || JSONConfig.modelType(folder: $0) == "vits" }) { name, path in
        var voices: [(VitsVoice, String, String)] = []
        if JSONConfig.modelType(folder: path) == "vits" {
            voices.append((try VitsVoice(name: name, huggingFaceFolder: path), path, "Hugging Face safetensors"))
        }
        let single = path.hasSuffix(".onnx")
        for onnx in piperFiles(at: path) {
            let stem = ((onnx as NSString).lastPathComponent as NSString).deletingPathExtension
            // One file loaded by LoadModel takes the name asked for; a folder's voices keep their own.
            let voiceName = single && name != (path as NSString).lastPathComponent ? name : stem
            voices.append((try VitsVoice(name: voiceName, piperONNX: onnx), onnx, "Piper ONNX"))
        }
        return voices.map { voice, source, format in
            .init(name: voice.name, model: voice, info: ModelInfo(
                kind: voice.kind.rawValue, source: source, format: format,
                details: [KeyValue(key: "language", value: voice.language), KeyValue(key: "sample_rate", value: "\(voice.sampleRate)"),
                          KeyValue(key: "speakers", value: "\(voice.speakers)")]))
        }
    }

    /// The Piper voices at `path`: the file itself, or the folder's `X.onnx` files with `X.onnx.json` beside.
    static func piperFiles(at path: String) -> [String] {
        let fm = FileManager.default
        if path.hasSuffix(".onnx") { return fm.fileExists(atPath: path + ".json") ? [path] : [] }
        return ((try? fm.contentsOfDirectory(atPath: path)) ?? []).sorted()
            .filter { $0.hasSuffix(".onnx") }
            .map { (path as NSString).appendingPathComponent($0) }
            .filter { fm.fileExists(atPath: $0 + ".json") }
    }

    static func isWhisperFolder(_ path: String) -> Bool {
        let fm = FileManager.default
        guard fm.fileExists(atPath: path + "/tokenizer.json") else { return false }
        if fm.fileExists(atPath: path + "/model.bin") { return true }
        return JSONConfig.modelType(folder: path) == "whisper"
    }
}
