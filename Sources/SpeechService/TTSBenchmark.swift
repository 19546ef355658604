import ChorusAPI
import ChorusServiceKit
import ChorusWire
import Foundation
import Logging
import ChorusVITS

/// What `chorus bench tts` measures on our side, kept beside the engine it times.
public struct TTSBenchmark {
    let voice: VitsVoice

    public init(onnx: String) throws {
        voice = try VitsVoice(name: ((onnx as NSString).lastPathComponent as NSString).deletingPathExtension, piperONNX: onnx)
    }

    private func sentenceIDs(_ text: String) throws -> [[Int]] {
        try EspeakPhonemizer.sentences(text).map { try voice.ids($0).ids }
    }

    /// The ids both engines speak, and the voice's default scales, for the peer.
    public func writeIDs(_ texts: [(String, String)], to url: URL) throws {
        var named: [String: [[Int]]] = [:]
        for (name, text) in texts { named[name] = try sentenceIDs(text) }
        let spec: [String: Any] = ["texts": named, "scales": [voice.defaults.noise, voice.defaults.lengthScale, voice.defaults.noiseW]]
        try JSONSerialization.data(withJSONObject: spec).write(to: url)
    }

    /// Median seconds for all sentences, seconds to the first sentence's audio, seconds of audio.
    public func measure(_ text: String) -> (seconds: Double, firstSeconds: Double, audioSeconds: Double) {
        let sentences = (try? sentenceIDs(text)) ?? []
        let noise = VitsModel.Noise(scale: voice.defaults.noise, durationScale: voice.defaults.noiseW, lengthScale: voice.defaults.lengthScale)
        _ = voice.model.synthesize(sentences[0], noise: noise)
        var totals: [Double] = [], firsts: [Double] = []
        var samples = 0
        let started = Date()
        while totals.count < 3 || (Date().timeIntervalSince(started) < 5 && totals.count < 20) {
            let t0 = Date()
            samples = 0
            for (i, ids) in sentences.enumerated() {
                samples += voice.model.synthesize(ids, noise: noise).waveform.count
                if i == 0 { firsts.append(Date().timeIntervalSince(t0)) }
            }
            totals.append(Date().timeIntervalSince(t0))
        }
        return (totals.sorted()[totals.count / 2], firsts.sorted()[firsts.count / 2], Double(samples) / Double(voice.sampleRate))
    }

    /// Time from sending Synthesize to the first chunk, on loopback with a service in this process.
    public func firstChunkOverTheWire(_ text: String, calls: Int = 9) async throws -> (p50: Double, worst: Double, count: Int, audioSeconds: Double) {
        let logger = Logger(label: "bench")
        let runtime = ServiceRuntime(options: .init(service: "speech"), logger: logger)
        let models = SpeechModels(runtime: runtime)
        models.registry.add(voice.name, kind: "voice", model: voice, info: ModelInfo(kind: voice.kind.rawValue, source: "benchmark"))
        let server = SpeechServer(runtime: runtime, settings: .init(), models: models)
        let wire = WireServer(configuration: .init(port: 0), routes: server.routes, logger: logger)
        let port = try await wire.start()
        let connection = WireClient(host: "127.0.0.1", port: port)
        let client = SpeechClient(connection)
        defer { connection.close() }
        var times: [Double] = []
        var audioSeconds = 0.0
        for _ in 0..<(calls + 1) {
            let t0 = Date()
            for try await chunk in client.synthesize(SynthesizeRequest(text: text, format: .pcmF32)) {
                times.append(Date().timeIntervalSince(t0))
                audioSeconds = Double(chunk.data.count / 4) / Double(chunk.sampleRate)
                break
            }
        }
        await wire.close()
        times.removeFirst()  // warm-up
        return (times.sorted()[times.count / 2], times.max() ?? 0, times.count, audioSeconds)
    }
}
