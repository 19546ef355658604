import ChorusAPI
import ChorusWire
import Foundation
import Testing

/// `chorus load` as a user runs it, against real services on loopback.
@Suite(.serialized) struct LoadProcessTests {
    static func report(_ path: String) throws -> [[String: Any]] {
        let data = try #require(FileManager.default.contents(atPath: path))
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return try #require(json["levels"] as? [[String: Any]])
    }

    static func latency(_ row: [String: Any], _ key: String = "latency_ms") -> [String: Double] {
        ((row[key] as? [String: Any]) ?? [:]).compactMapValues { ($0 as? NSNumber)?.doubleValue }
    }

    @Test func aConcurrencySweepOfTranscriptionsReportsEveryLevel() async throws {
        let (_, address) = try await SpeechProcessTests.service
        let wav = SpeechProcessTests.repository.appendingPathComponent("Tests/SpeechServiceTests/Fixtures/espeak_lights.wav").path
        let folder = NSTemporaryDirectory() + "chorus-load-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let (status, output) = try await ChorusProcess.run([
            "load", "speech.Transcribe", #"{"model": "whisper-tiny.en"}"#, "--file", "audio.wav=\(wav)", "--target", address,
            "--concurrency", "1:2:x2", "--requests", "3", "--warmup", "1", "--json", folder + "/run.json", "--csv", folder + "/run.csv"],
            timeout: 120)
        #expect(status == 0, "\(output)")
        let rows = try Self.report(folder + "/run.json")
        #expect(rows.map { $0["concurrency"] as? Int } == [1, 2], "\(rows)")
        for row in rows {
            #expect(row["sent"] as? Int == 3 && row["succeeded"] as? Int == 3 && (row["failures"] as? [String: Int])?.isEmpty == true, "\(row)")
            let e2e = Self.latency(row), first = Self.latency(row, "first_answer_ms")
            let (p50, p90, p99, max) = (e2e["p50"] ?? -1, e2e["p90"] ?? -1, e2e["p99"] ?? -1, e2e["max"] ?? -1)
            #expect(0 < p50 && p50 <= p90 && p90 <= p99 && p99 <= max, "\(e2e)")
            // The first segment streams before the final result.
            #expect((first["p50"] ?? .infinity) <= max, "\(first) vs \(e2e)")
        }
        let csv = try String(contentsOfFile: folder + "/run.csv", encoding: .utf8).split(separator: "\n")
        #expect(csv.count == 3 && csv[0].hasPrefix("Concurrency,") && csv[1].hasPrefix("1,") && csv[2].hasPrefix("2,"), "\(csv)")
        #expect(output.contains("concurrency 1") && output.contains("concurrency 2"), "\(output)")
    }

    @Test func overloadAtARateIsCountedAsResourceExhausted() async throws {
        let (service, address) = try await ChorusProcess.serve(["speech", "--port", "0", "--max-concurrency", "1", "--max-queue", "0"])
        defer { service.signal(SIGKILL) }
        // Each call holds the only slot for 300 ms; 20 arrive at 20/s: most find it taken.
        let (status, output) = try await ChorusProcess.run([
            "load", "speech.Echo", #"{"delay_ms": 300}"#, "--target", address, "--rate", "20", "--arrivals", "constant",
            "--requests", "20", "--warmup", "0", "--json", "-"], timeout: 60)
        #expect(status == 0, "\(output)")
        let start = try #require(output.firstIndex(of: "{"))
        let json = try #require(try JSONSerialization.jsonObject(with: Data(output[start...].utf8)) as? [String: Any])
        let row = try #require((json["levels"] as? [[String: Any]])?.first)
        let refused = (row["failures"] as? [String: Int])?["RESOURCE_EXHAUSTED"] ?? 0
        #expect(row["sent"] as? Int == 20 && refused > 0 && (row["succeeded"] as? Int ?? 0) + refused == 20, "\(row)")
    }

    @Test func badInputsFailClearlyWithoutHanging() async throws {
        let (_, address) = try await SpeechProcessTests.service
        let unknown = try await ChorusProcess.run(["load", "speech.Nope", "--target", address, "--requests", "1"])
        #expect(unknown.0 != 0 && unknown.1.contains("speech.Nope"), "\(unknown.1)")
        let field = try await ChorusProcess.run(["load", "speech.Echo", #"{"delay_ms": "soon"}"#, "--target", address, "--requests", "1"])
        #expect(field.0 != 0 && field.1.contains("EchoRequest"), "\(field.1)")
        let folder = try await ChorusProcess.run(["load", "speech.Transcribe", "--inputs", "audio.wav=/nonexistent/folder", "--target", address])
        #expect(folder.0 != 0 && folder.1.contains("/nonexistent/folder"), "\(folder.1)")
        let unreachable = try await ChorusProcess.run(["load", "speech.Echo", "--target", "127.0.0.1:\(try freePort())", "--requests", "1"])
        #expect(unreachable.0 != 0 && unreachable.1.contains("cannot reach"), "\(unreachable.1)")
        let sweep = try await ChorusProcess.run(["load", "speech.Echo", "--target", address, "--concurrency", "8:1:x2"])
        #expect(sweep.0 != 0 && sweep.1.contains("--concurrency"), "\(sweep.1)")
    }
}
