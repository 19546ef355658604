import ChorusAPI
import ChorusServiceKit
import ChorusVITS
import ChorusWire
import Foundation
import Logging

extension SpeechServer {
    /// Time from sending Synthesize to the first chunk, on loopback with a service in this process
    /// serving `voice` (`chorus bench tts`).
    package static func firstChunkOverTheWire(voice: VitsVoice, text: String, calls: Int = 9) async throws -> (p50: Double, worst: Double, count: Int, audioSeconds: Double) {
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
