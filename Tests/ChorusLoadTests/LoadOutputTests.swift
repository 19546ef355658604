import ChorusMedia
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import ChorusLoad

/// What `chorus load` writes and reads: JSON, CSV, the SVG plot, the comparison, synthetic inputs, and the
/// pieces of its HTTP client.
@Suite struct LoadOutputTests {
    struct Caller: LoadCaller {
        let failEvery: Int
        let slowdown: Int
        func call(_ index: Int) async -> CallOutcome {
            let failure: String? = failEvery > 0 && index % failEvery == 0 ? "RESOURCE_EXHAUSTED" : nil
            return CallOutcome(failure: failure, latency: .microseconds((100 + index) * slowdown), firstAnswer: .microseconds(10), answers: 3)
        }
    }

    func report(slowdown: Int = 1) async -> LoadReport {
        let runner = LoadRunner(caller: Caller(failEvery: 4, slowdown: slowdown), limits: LoadLimits(requests: 12))
        return LoadReport(target: "in-process", method: "/test/Call", levels: [await runner.run(.concurrency(1)), await runner.run(.concurrency(3))])
    }

    @Test func theReportsParseAndAgree() async throws {
        let report = await report()
        let json = try #require(try JSONSerialization.jsonObject(with: report.jsonData()) as? [String: Any])
        let rows = try #require(json["levels"] as? [[String: Any]])
        #expect(rows.count == 2 && rows.map { $0["sent"] as? Int } == [12, 12] && rows.map { $0["concurrency"] as? Int } == [1, 3])
        #expect((rows[0]["failures"] as? [String: Int]) == ["RESOURCE_EXHAUSTED": 3])
        #expect((json["machine"] as? String)?.contains("cores") == true)
        let csv = report.csv.split(separator: "\n")
        let columns = csv[0].split(separator: ",").count
        #expect(csv.count == 3 && csv.allSatisfy { $0.split(separator: ",", omittingEmptySubsequences: false).count == columns })
        #expect(report.table.contains("RESOURCE_EXHAUSTED 3"))
    }

    /// Collects the elements of an XML document, failing on any parse error.
    final class Elements: NSObject, XMLParserDelegate {
        var names: [String] = []
        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            names.append(name)
        }
    }

    @Test func thePlotIsWellFormedSVGWithALinePerPercentile() async throws {
        var report = await report()
        report.method = "/test/Call <&> \"quoted\""
        let svg = LoadPlot(report: report).svg
        let parser = XMLParser(data: Data(svg.utf8)), elements = Elements()
        parser.delegate = elements
        #expect(parser.parse(), "\(parser.parserError.map { "\($0)" } ?? "")")
        #expect(elements.names.first == "svg" && elements.names.filter { $0 == "polyline" }.count == 3)
        #expect(elements.names.filter { $0 == "circle" }.count == 3 * report.levels.count)
        #expect(svg.contains("c=1") && svg.contains("c=3") && svg.contains("throughput (requests/s)"))
    }

    @Test func theComparisonPrintsRatiosLevelByLevel() async throws {
        let a = try JSONSerialization.jsonObject(with: await report(slowdown: 1).jsonData()) as? [String: Any] ?? [:]
        let b = try JSONSerialization.jsonObject(with: await report(slowdown: 2).jsonData()) as? [String: Any] ?? [:]
        let table = LoadComparison(a: a, b: b).table
        let p50 = table.split(separator: "\n").filter { $0.hasPrefix("concurrency 1") && $0.contains("| p50 ms") }
        #expect(p50.count == 1 && p50.first?.contains("2.000") == true && p50.first?.contains("A better") == true, "\(table)")
        #expect(LoadComparison(a: a, b: ["levels": [[String: Any]]()]).table.contains("no level of A"))
    }

    @Test func syntheticInputsAreWhatTheyClaim() throws {
        guard case .bytes(let wav, _, let seconds) = try SyntheticInput(parsing: "audio:2.5s").make(variant: 0, seed: 1) else {
            Issue.record("audio is bytes")
            return
        }
        #expect(seconds == 2.5 && WAVSeconds.of(wav) == 2.5)
        guard case .bytes(let png, _, _) = try SyntheticInput(parsing: "image:64").make(variant: 1, seed: 1) else {
            Issue.record("an image is bytes")
            return
        }
        let image = try ImageCodec.decode(png)
        #expect(image.width == 64 && image.height == 64)
        guard case .text(let words) = try SyntheticInput(parsing: "text:12").make(variant: 0, seed: 1),
              case .text(let again) = try SyntheticInput(parsing: "text:12").make(variant: 0, seed: 1),
              case .text(let other) = try SyntheticInput(parsing: "text:12").make(variant: 1, seed: 1) else {
            Issue.record("text is text")
            return
        }
        #expect(words.split(separator: " ").count == 12 && words == again && words != other)
        for bad in ["audio", "audio:0s", "audio:-1", "image:3", "image:99999", "text:0", "video:3"] {
            #expect(throws: SyntheticInput.ParseError.self, "\(bad)") { try SyntheticInput(parsing: bad) }
        }
    }

    @Test func serverSentEventsAreSplitHoweverTheBytesArrive() {
        let stream = "data: {\"a\":1}\n\ndata: {\"b\":2}\r\n\r\n: comment\n\ndata: line1\ndata: line2\n\ndata: [DONE]\n\n"
        let bytes = Array(stream.utf8)
        for cut in [1, 3, 7, bytes.count] {
            var events = ServerSentEvents(), seen: [String] = []
            var start = 0
            while start < bytes.count {
                seen += events.feed(Array(bytes[start..<min(start + cut, bytes.count)]))
                start += cut
            }
            #expect(seen == ["{\"a\":1}", "{\"b\":2}", "line1\nline2", "[DONE]"], "cut \(cut): \(seen)")
        }
    }

    @Test func chatChunksAreTokensAndUsageIsTheServersCount() {
        var outcome = CallOutcome(failure: nil, latency: .zero)
        var last: Duration?
        for (i, chunk) in [#"{"choices":[{"delta":{"role":"assistant","content":""}}]}"#, #"{"choices":[{"delta":{"content":"Hel"}}]}"#,
                           #"{"choices":[{"delta":{"content":"lo"}}]}"#, #"{"choices":[],"usage":{"completion_tokens":5}}"#].enumerated() {
            #expect(HTTPLoadCaller.readEvent(chunk, at: .milliseconds(10 * i), into: &outcome, lastToken: &last) == nil)
        }
        // The role chunk and the content chunks each follow a gap; the usage chunk has no choices.
        #expect(outcome.tokens == 5 && outcome.tokenGaps == [.milliseconds(10), .milliseconds(10)])
        #expect(HTTPLoadCaller.readEvent(#"{"error":{"message":"boom"}}"#, at: .zero, into: &outcome, lastToken: &last) == "STREAM ERROR")
    }

    @Test func aFormCarriesTheTemplatesFieldsAndTheFiles() throws {
        let request = try HTTPLoadRequest.multipart(fields: ["model": "whisper-tiny.en", "temperature": 0], files: [("file", "a.wav", [1, 2, 3])])
        let text = String(decoding: request.body, as: UTF8.self)
        let boundary = try #require(request.contentType.split(separator: "=").last)
        #expect(request.contentType.hasPrefix("multipart/form-data; boundary="))
        #expect(text.contains("name=\"model\"\r\n\r\nwhisper-tiny.en\r\n") && text.contains("name=\"temperature\"\r\n\r\n0\r\n"))
        #expect(text.contains("name=\"file\"; filename=\"a.wav\"") && text.hasSuffix("--\(boundary)--\r\n"))
    }

    @Test func addressesAndMetricsAreRead() throws {
        #expect(try HTTPLoadCaller.hostAndPort("http://127.0.0.1:7180/v1") == ("127.0.0.1", 7180))
        #expect(try HTTPLoadCaller.hostAndPort("localhost:80") == ("localhost", 80))
        for bad in ["127.0.0.1", "http://:80", "host:99999", "host:port"] {
            #expect(throws: HTTPLoadCaller.AddressError.self, "\(bad)") { try HTTPLoadCaller.hostAndPort(bad) }
        }
        let metrics = """
            # TYPE chorus_http_requests_total counter
            chorus_http_requests_total{method="POST",route="/v1/echo",status="200"} 40
            chorus_http_requests_total{method="POST",route="/v1/echo",status="429"} 2
            chorus_http_requests_in_flight{method="POST",route="/v1/echo"} 3
            """
        let figures = HTTPMetricsProbe.parse(metrics)
        #expect(figures.callsTotal == 42 && figures.callsFailed == 2 && figures.inFlight == 3)
    }
}
