import ChorusAPI
import ChorusTestSupport
import ChorusWire
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

/// A service's health port (`--health-http-port`) as a kubelet and Prometheus see it, over a real SpeechService:
/// ready only once its models are loaded (loading the real Whisper and Piper models takes seconds; the port
/// answers from before the first is read), live throughout, busy while its queue is full, draining after SIGTERM; the
/// metrics parse as Prometheus text and move with the load.
@Suite(.serialized) struct HealthPortProcessTests {
    static func get(_ url: String) async throws -> (status: Int, text: String) {
        var request = URLRequest(url: URL(string: url)!)
        request.timeoutInterval = 10
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as! HTTPURLResponse).statusCode, String(decoding: data, as: UTF8.self))
    }

    /// A Prometheus text exposition, checked line by line: every sample belongs to a family with a TYPE, has a
    /// number, and histogram buckets are cumulative up to +Inf, which equals the count.
    static func parsePrometheus(_ text: String) throws -> [String: Double] {
        var types: [String: String] = [:], samples: [String: Double] = [:]
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# HELP ") { continue }
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                guard parts.count == 4, ["counter", "gauge", "histogram"].contains(parts[3]) else { throw TestFailure("bad TYPE line: \(line)") }
                types[String(parts[2])] = String(parts[3])
                continue
            }
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { throw TestFailure("no value: \(line)") }
            let series = String(line[..<space])
            let name = String(series.prefix { $0 != "{" })
            let family = ["_bucket", "_sum", "_count"].reduce(name) { $0.hasSuffix($1) && types[String($0.dropLast($1.count))] == "histogram" ? String($0.dropLast($1.count)) : $0 }
            guard types[family] != nil else { throw TestFailure("sample before its TYPE: \(line)") }
            if series.contains("{") {
                guard series.hasSuffix("}"), series.range(of: #"^[a-z_]+\{([a-z_]+="([^"\\]|\\.)*",?)+\}$"#, options: .regularExpression) != nil else {
                    throw TestFailure("bad labels: \(line)")
                }
            }
            samples[series] = value
        }
        for (family, type) in types where type == "histogram" {
            let buckets = samples.filter { $0.key.hasPrefix(family + "_bucket{") }
            let ordered = buckets.sorted { bound($0.key) < bound($1.key) }.map(\.value)
            guard ordered == ordered.sorted(), let last = ordered.last, last == samples.first(where: { $0.key.hasPrefix(family + "_count") })?.value else {
                throw TestFailure("\(family): buckets not cumulative up to the count")
            }
        }
        return samples
    }

    static func bound(_ series: String) -> Double {
        guard let range = series.range(of: #"le="[^"]+""#, options: .regularExpression) else { return .infinity }
        let text = series[range].dropFirst(4).dropLast()
        return text == "+Inf" ? .infinity : Double(text) ?? .nan
    }

    static func value(_ samples: [String: Double], _ prefix: String) -> Double? {
        samples.first { $0.key.hasPrefix(prefix) }?.value
    }

    @Test func readyAfterLoadingLiveThroughoutBusyWhenFullDrainingAfterSIGTERM() async throws {
        // The real models: Whisper tiny.en and base and the Piper voice take seconds to load, and the health port
        // answers from before the first of them is read.
        let models = try RealModels.path("")
        let process = try ChorusProcess(["speech", "--port", "0", "--health-http-port", "0", "--models", models,
                                         "--max-concurrency", "1", "--max-queue", "1"])
        defer { process.signal(SIGKILL) }
        let line = try await process.waitForLine(containing: "health checks on http://")
        let health = String(line[line.range(of: "http://")!.lowerBound...].split(separator: " ").first!)

        let loading = try await Self.get(health + "/readyz")
        #expect(loading.status == 503 && loading.text.contains("\"reason\":\"loading models\""), "\(loading.text)")
        #expect(try await Self.get(health + "/livez").status == 200)
        let early = try Self.parsePrometheus(try await Self.get(health + "/metrics").text)
        #expect(Self.value(early, "chorus_ready{") == 0 && Self.value(early, "chorus_model_loaded{") == nil, "\(early)")
        #expect(try await Self.get(health + "/nothing").status == 404)

        // The models load, the wire port opens, and the service is ready.
        _ = try await process.waitForLine(containing: " listening on ", timeout: 60)
        #expect(await eventually(timeout: .seconds(30)) { (try? await Self.get(health + "/readyz").status) == 200 })
        let loaded = try Self.parsePrometheus(try await Self.get(health + "/metrics").text)
        #expect(loaded["chorus_model_loaded{service=\"speech\",model=\"en_US-joe-medium\",kind=\"piper\"}"] == 1, "\(loaded)")
        #expect(Self.value(loaded, "chorus_compute_seconds_count{") == 0)

        // One slot, one place in the queue: two long syntheses fill both, and the service is busy (not ready),
        // still live; a third call is refused and counted.
        let speech = SpeechClient(try WireClient(address: try #require(process.listeningAddress)))
        defer { (speech.channel as? WireClient)?.close() }
        let text = String(repeating: "The quick brown fox jumps over the lazy dog near the river bank. ", count: 12)
        let calls = (0..<2).map { _ in
            Task { var n = 0; for try await _ in speech.synthesize(SynthesizeRequest(text: text)) { n += 1 }; return n }
        }
        #expect(await eventually(timeout: .seconds(30)) { (try? await Self.get(health + "/readyz").text.contains("busy: 1 calls running and 1 waiting")) == true })
        #expect(try await Self.get(health + "/livez").status == 200)
        let busy = try Self.parsePrometheus(try await Self.get(health + "/metrics").text)
        #expect(Self.value(busy, "chorus_queue_depth{") == 1 && Self.value(busy, "chorus_compute_in_flight{") == 1, "\(busy)")
        await #expect(throws: WireStatus.self) { for try await _ in speech.synthesize(SynthesizeRequest(text: "One more.")) {} }
        for call in calls { #expect(try await call.value > 1) }

        #expect(await eventually(timeout: .seconds(30)) { (try? await Self.get(health + "/readyz").status) == 200 })
        let after = try Self.parsePrometheus(try await Self.get(health + "/metrics").text)
        #expect(Self.value(after, "chorus_compute_seconds_count{") == 2 && Self.value(after, "chorus_compute_refused_total{") == 1, "\(after)")
        #expect((Self.value(after, "chorus_compute_seconds_sum{") ?? 0) > 0.05)
        #expect(after["chorus_calls_total{service=\"speech\",outcome=\"ok\"}"] ?? 0 >= 2)

        // SIGTERM with a call open: draining (not ready) until the call ends and the process exits.
        let last = Task { for try await _ in speech.synthesize(SynthesizeRequest(text: text)) {} }
        #expect(await eventually(timeout: .seconds(30)) { (try? await Self.get(health + "/metrics").text.contains("chorus_compute_in_flight{service=\"speech\"} 1")) == true })
        process.signal(SIGTERM)
        #expect(await eventually(timeout: .seconds(30)) { (try? await Self.get(health + "/readyz").text.contains("\"reason\":\"draining\"")) == true })
        _ = try? await last.value
        #expect(await process.waitForExit(timeout: 60) == 0)
    }
}
