import ChorusTestSupport
import Foundation
import Testing

/// deploy/kubernetes, checked offline by scripts/check-manifests: every overlay renders, validates strictly against
/// Kubernetes' schemas, and runs only flags the chorus binary has; a drifted copy fails naming the flag.
@Suite(.serialized) struct DeploymentManifestTests {
    static let python = VisionProcessTests.repository.appendingPathComponent(".venv/bin/python").path
    static let script = VisionProcessTests.repository.appendingPathComponent("scripts/check-manifests").path

    static func check(root: String) throws -> (status: Int32, text: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script, "--chorus", ChorusProcess.binary.path, "--root", root]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }

    @Test func everyOverlayRendersValidatesAndRunsFlagsThatExist() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.python) else {
            Issue.record("no .venv: python3 -m venv .venv && .venv/bin/pip install kubernetes-validate==1.37.0 (as .ci/run does)")
            return
        }
        let result = try Self.check(root: VisionProcessTests.repository.path)
        #expect(result.status == 0, "\(result.text)")
        #expect(result.text.contains("3 overlays, 0 problems") && result.text.contains("gpu: 19 objects rendered and checked"), "\(result.text)")

        // A copy whose speech service runs a flag chorus does not have, and whose gateway points at a port no
        // Service exposes: both named.
        let copy = NSTemporaryDirectory() + "chorus-manifests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: copy + "/deploy", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: copy) }
        try FileManager.default.copyItem(atPath: VisionProcessTests.repository.path + "/deploy/kubernetes", toPath: copy + "/deploy/kubernetes")
        let speech = copy + "/deploy/kubernetes/base/speech.yaml"
        try String(contentsOfFile: speech, encoding: .utf8).replacingOccurrences(of: "\"--drain-grace\"", with: "\"--drain-grace-seconds\"")
            .write(toFile: speech, atomically: true, encoding: .utf8)
        let gateway = copy + "/deploy/kubernetes/base/gateway.yaml"
        try String(contentsOfFile: gateway, encoding: .utf8).replacingOccurrences(of: "dns:///chorus-vision:7101", with: "dns:///chorus-vision:7199")
            .write(toFile: gateway, atomically: true, encoding: .utf8)
        let drifted = try Self.check(root: copy)
        #expect(drifted.status == 1, "\(drifted.text)")
        #expect(drifted.text.contains("cpu: Deployment/chorus-speech: chorus speech has no flag --drain-grace-seconds"), "\(drifted.text)")
        #expect(drifted.text.contains("--vision chorus-vision:7199 is no Service port of the render"), "\(drifted.text)")
    }
}
