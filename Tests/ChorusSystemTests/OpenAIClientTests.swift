import ChorusTestSupport
import Foundation
import Testing

/// The official `openai` Python client drives every endpoint of the HTTP API against `chorus up` on
/// loopback: the tiny LLaVA and CLIP fixtures in VisionService, the real Whisper and Piper in
/// SpeechService, the real terrain UNet in DiffusionService (scripts/openai_client_check.py); the
/// pipelines endpoint runs every built-in recipe.
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

        let client = Process()
        client.executableURL = URL(fileURLWithPath: Self.python)
        client.arguments = [Self.script, "http://127.0.0.1:\(ports[4])/v1", "llava-tiny", "clip-tiny",
                            ChatProcessTests.llavaFolder.appendingPathComponent("input_image.png").path, "smollm2-135m-instruct",
                            VideoProcessTests.videos.path]
        let output = Pipe()
        client.standardOutput = output
        client.standardError = output
        try client.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        client.waitUntilExit()
        #expect(client.terminationStatus == 0, "\(text)")
        let summary = try #require(text.split(separator: "\n").last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
        #expect((summary["passed"] as? [String])?.count == 27, "\(text)")
    }
}
