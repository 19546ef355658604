import ChorusTestSupport
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

/// The browser playground the gateway serves at `/`: its files (built into the binary, nothing from elsewhere,
/// no key needed for the page itself, `--no-playground`), and the page driven in a real browser (Debian's
/// chromium through chromedriver and Selenium: scripts/playground_check.py) against `chorus up` with the real
/// speech and terrain models and the tiny LLaVA and CLIP fixtures.
@Suite(.serialized) struct PlaygroundTests {
    static let python = VisionProcessTests.repository.appendingPathComponent(".venv/bin/python").path
    static let script = VisionProcessTests.repository.appendingPathComponent("scripts/playground_check.py").path
    /// Screenshots of every tab, kept as the test's artifacts.
    static let artifacts = VisionProcessTests.repository.appendingPathComponent(".build/artifacts/playground")

    static func get(_ url: String, headers: [String: String] = [:]) async throws -> (status: Int, body: String, headers: [String: String]) {
        var request = URLRequest(url: URL(string: url)!)
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as! HTTPURLResponse
        let fields = Dictionary(uniqueKeysWithValues: http.allHeaderFields.map { ("\($0.key)".lowercased(), "\($0.value)") })
        return (http.statusCode, String(decoding: data, as: UTF8.self), fields)
    }

    @Test func theGatewayServesThePageAndItsFilesFromItsBinary() async throws {
        let stack = try await OpenAIHTTPTests.start(gatewayFlags: ["--api-key", "sk-page"])
        defer { stack.stop() }
        let page = try await Self.get(stack.http + "/")
        #expect(page.status == 200 && page.headers["content-type"]?.hasPrefix("text/html") == true, "\(page)")
        #expect(page.headers["content-security-policy"]?.contains("connect-src 'self'") == true, "the page may call only the gateway")
        // Every file the page names is served, with its type, and none of its URLs leaves the gateway.
        let named = page.body.matches(of: #/(?:src|href)="([^"]+)"/#).map { String($0.1) }
        #expect(!named.isEmpty && named.allSatisfy { $0.hasPrefix("/playground/") || $0.hasPrefix("playground/") }, "\(named)")
        for path in named {
            let file = try await Self.get(stack.http + (path.hasPrefix("/") ? path : "/" + path))
            #expect(file.status == 200, "\(path): \(file.status)")
        }
        // Nothing outside the folder can be named; the page needs no key, the API it calls does.
        for hostile in ["/playground/..%2FPackage.swift", "/playground/.hidden", "/playground/nothing.js"] {
            let answer = try await Self.get(stack.http + hostile)
            #expect(answer.status == 404, "\(hostile): \(answer.status) \(answer.body)")
        }
        #expect(try await Self.get(stack.http + "/v1/models").status == 401)

        let bare = try await OpenAIHTTPTests.start(gatewayFlags: ["--no-playground"])
        defer { bare.stop() }
        #expect(try await Self.get(bare.http + "/").status == 404)
        #expect(try await Self.get(bare.http + "/v1/models").status == 200)
    }

    @Test func aRealBrowserUsesEveryTab() async throws {
        for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
            guard FileManager.default.isExecutableFile(atPath: tool) else {
                Issue.record("\(tool) is missing: scripts/install-deps installs chromium and chromium-driver (as .ci/run does)")
                return
            }
        }
        let selenium = Process()
        selenium.executableURL = URL(fileURLWithPath: Self.python)
        selenium.arguments = ["-c", "import selenium"]
        guard (try? selenium.run()) != nil, ({ selenium.waitUntilExit(); return selenium.terminationStatus == 0 }()) else {
            Issue.record("selenium is missing: .venv/bin/pip install selenium==4.50.0 (as .ci/run does)")
            return
        }

        let stack = try await DocsTests.UpStack.start()
        defer { stack.stop() }
        let ports = stack.ports
        // A second gateway in front of the same services that wants a key.
        let (keyed, _) = try await ChorusProcess.serve(["gateway", "--port", "0", "--http-port", "0", "--api-key", "sk-playground",
                                                        "--vision", "127.0.0.1:\(ports[1])", "--diffusion", "127.0.0.1:\(ports[2])",
                                                        "--speech", "127.0.0.1:\(ports[3])"])
        defer { keyed.signal(SIGKILL) }
        let line = try await keyed.waitForLine(containing: "OpenAI-compatible HTTP on http://")
        let keyedURL = String(line[line.range(of: "http://")!.lowerBound...].split(separator: " ").first!)

        // The spoken question the speech tab transcribes, made by the stack's own voice.
        let wav = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-playground-\(ports[0]).wav")
        defer { try? FileManager.default.removeItem(at: wav) }
        let (made, _) = try await ChorusProcess.run(["call", "speech.Synthesize", #"{"text": "Turn on the lights."}"#,
                                                     "--target", "127.0.0.1:\(ports[0])", "--save", "data=\(wav.path)"], timeout: 60)
        #expect(made == 0)

        try? FileManager.default.removeItem(at: Self.artifacts)
        try FileManager.default.createDirectory(at: Self.artifacts, withIntermediateDirectories: true)
        let browser = Process()
        browser.executableURL = URL(fileURLWithPath: Self.python)
        browser.arguments = [Self.script, "http://127.0.0.1:\(ports[4])", "--wav", wav.path, "--expect", "lights",
                             "--screenshots", Self.artifacts.path, "--api-key-url", keyedURL]
        let output = Pipe()
        browser.standardOutput = output
        browser.standardError = output
        try browser.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        browser.waitUntilExit()
        #expect(browser.terminationStatus == 0, "\(text)\n\(stack.up.log.suffix(4000))")
        let summary = text.split(separator: "\n").last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let passed = summary?["passed"] as? [String] ?? []
        #expect(passed.count >= 9, "every tab, the network log and the key prompt: \(text)")
        for tab in ["chat", "images", "speech-to-text", "text-to-speech", "search", "pipelines", "status", "api-key"] {
            #expect(FileManager.default.fileExists(atPath: Self.artifacts.appendingPathComponent(tab + ".png").path), "a screenshot of \(tab)")
        }
    }
}
