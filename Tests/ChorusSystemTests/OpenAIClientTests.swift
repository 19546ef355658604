import ChorusTestSupport
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

/// The official `openai` Python client drives every endpoint of the HTTP API against `chorus up` on
/// loopback: the tiny LLaVA and CLIP fixtures in VisionService, the real Whisper and Piper in
/// SpeechService, the real terrain UNet in DiffusionService (scripts/openai_client_check.py); the
/// pipelines endpoint runs every built-in recipe. Then a second gateway relays to that stack as its upstream, and
/// every check of a relayed route runs again through it.
@Suite(.serialized) struct OpenAIClientTests {
    static let python = VisionProcessTests.repository.appendingPathComponent(".venv/bin/python").path
    static let script = VisionProcessTests.repository.appendingPathComponent("scripts/openai_client_check.py").path

    @Test func theOfficialClientDrivesEveryEndpoint() async throws {
        let realModels = try RealModels.path("")
        let openAI = Process()
        openAI.executableURL = URL(fileURLWithPath: Self.python)
        openAI.arguments = ["-c", "import openai"]
        guard (try? openAI.run()) != nil, ({ openAI.waitUntilExit(); return openAI.terminationStatus == 0 }()) else {
            Issue.record("the openai package is missing: python3 -m venv .venv && .venv/bin/pip install openai==3.57.0 (as .ci/run does)")
            return
        }

        let visionModels = NSTemporaryDirectory() + "chorus-openai-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: visionModels, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: visionModels + "/llava-tiny", withDestinationPath: ChatProcessTests.llavaFolder.path)
        try FileManager.default.createSymbolicLink(atPath: visionModels + "/clip-tiny", withDestinationPath: VisionProcessTests.clipFolder.path)
        try FileManager.default.createSymbolicLink(atPath: visionModels + "/smollm2-135m-instruct",
                                                   withDestinationPath: try RealModels.path("smollm2-135m-instruct"))
        let ports = try (0..<5).map { _ in try freePort() }
        let config = """
            {"host": "127.0.0.1", "gateway": {"port": \(ports[0]), "http_port": \(ports[4])},
             "services": {"vision": {"port": \(ports[1]), "models": "\(visionModels)"},
                          "diffusion": {"port": \(ports[2]), "models": "\(realModels)"},
                          "speech": {"port": \(ports[3]), "models": "\(realModels)"}}}
            """
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-up-openai-\(ports[0]).json")
        try config.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let up = try ChorusProcess(["up", "--config", file.path])
        defer { up.signal(SIGKILL) }
        let (healthy, health) = try await ChorusProcess.run(["health", "--target", "127.0.0.1:\(ports[0])", "--wait-seconds", "90"], timeout: 100)
        #expect(healthy == 0, "\(health)\n\(up.log)")

        let direct = try Self.runChecks("http://127.0.0.1:\(ports[4])/v1", routedOnly: false)
        #expect(direct.status == 0, "\(direct.text)")
        #expect(direct.passed.count == 29, "\(direct.text)")

        // The same stack as the upstream of a second gateway with no services of its own, which serves its
        // models under the same names: every check of a relayed route, through the relay.
        let aliases: [(String, String)] = [("llava-tiny", "\"chat\", \"vision\""), ("clip-tiny", "\"embeddings\""),
                                           ("smollm2-135m-instruct", "\"chat\", \"completions\""), ("terrain", "\"images\"")]
            + ["tts-1", "whisper-1", "whisper-base", "whisper-tiny.en", "en_US-joe-medium"].map { ($0, "\"audio\"") }
        let upstreams = """
            {"upstreams": [{"name": "chorus-up", "base_url": "http://127.0.0.1:\(ports[4])/v1", "timeout_seconds": 300,
                            "models": {\(aliases.map { "\"\($0.0)\": {\"model\": \"\($0.0)\", \"capabilities\": [\($0.1)]}" }.joined(separator: ", "))}}]}
            """
        let upstreamsFile = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-upstreams-openai-\(ports[0]).json")
        try upstreams.write(to: upstreamsFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: upstreamsFile) }
        let (front, _) = try await ChorusProcess.serve(["gateway", "--port", "0", "--http-port", "0", "--upstreams", upstreamsFile.path])
        defer { front.signal(SIGKILL) }
        let line = try await front.waitForLine(containing: "OpenAI-compatible HTTP on http://")
        let frontURL = String(line[line.range(of: "http://")!.lowerBound...].split(separator: " ").first!) + "/v1"
        let relayed = try Self.runChecks(frontURL, routedOnly: true)
        #expect(relayed.status == 0, "\(relayed.text)\n\(front.log)")
        #expect(relayed.passed.count == 20, "\(relayed.text)")
        // Every call went through the relay, counted by the upstream's status: 19 answers and the two malformed
        // requests (an image that is none, a video that is an image) refused there.
        let (metrics, _) = try await URLSession.shared.data(from: URL(string: frontURL.replacingOccurrences(of: "/v1", with: "/metrics"))!)
        let lines = String(decoding: metrics, as: UTF8.self).split(separator: "\n")
        func relayedCalls(_ status: Int) -> Int? {
            lines.first { $0.hasPrefix("chorus_upstream_requests_total{upstream=\"chorus-up\",status=\"\(status)\"}") }
                .flatMap { Int($0.split(separator: " ").last ?? "") }
        }
        #expect(relayedCalls(200) == 19 && relayedCalls(400) == 2, "\(String(decoding: metrics, as: UTF8.self))")
    }

    /// scripts/openai_client_check.py against `baseURL`: its exit status, output and the checks that passed.
    static func runChecks(_ baseURL: String, routedOnly: Bool) throws -> (status: Int32, text: String, passed: [String]) {
        let client = Process()
        client.executableURL = URL(fileURLWithPath: Self.python)
        client.arguments = [Self.script, baseURL, "llava-tiny", "clip-tiny",
                            ChatProcessTests.llavaFolder.appendingPathComponent("input_image.png").path, "smollm2-135m-instruct",
                            VideoProcessTests.videos.path]
        client.environment = ProcessInfo.processInfo.environment.merging(["CHORUS_CHECK_ROUTED": routedOnly ? "1" : "0"]) { $1 }
        let output = Pipe()
        client.standardOutput = output
        client.standardError = output
        try client.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        client.waitUntilExit()
        let summary = text.split(separator: "\n").last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        return (client.terminationStatus, text, summary?["passed"] as? [String] ?? [])
    }
}
