import ChorusAPI
import ChorusTestSupport
import ChorusWire
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

/// Upstream OpenAI-compatible servers behind the gateway's HTTP API, over real processes: a second Chorus gateway
/// (B: VisionService with the tiny LLaVA and CLIP, its HTTP API behind a key) is the upstream of the first (A, no
/// services of its own), which serves B's models under aliases with the key from an environment variable.
@Suite(.serialized) struct UpstreamProcessTests {
    struct Stack {
        let processes: [ChorusProcess]
        let front: String
        let upstreamVision: VisionClient
        let upstreamGateway: ChorusProcess
        let gateway: ChorusProcess

        func stop() {
            (upstreamVision.channel as? WireClient)?.close()
            for process in processes { process.signal(SIGKILL) }
        }
    }

    static let key = "upstream-secret-\(UUID().uuidString.prefix(8))"

    static func httpAddress(_ process: ChorusProcess) async throws -> String {
        let line = try await process.waitForLine(containing: "OpenAI-compatible HTTP on http://")
        return String(line[line.range(of: "http://")!.lowerBound...].split(separator: " ").first!)
    }

    /// B behind a key, and A with `upstreams` (B's URL unless given) and the key in its environment.
    static func start(upstreamURL: String? = nil, timeout: Double = 60, breakerFailures: Int = 2, key: String = Self.key,
                      keysFile: String? = nil, localSpeech: Bool = false) async throws -> Stack {
        // The LLaVA fixture with a 1024-token context (as VideoProcessTests serve it), so a stream runs long enough to
        // be caught running.
        let models = try VideoProcessTests.models()
        try FileManager.default.createSymbolicLink(atPath: models + "/clip-tiny", withDestinationPath: VisionProcessTests.clipFolder.path)
        let (vision, visionAddress) = try await ChorusProcess.serve(["vision", "--port", "0", "--models", models])
        let (upstream, _) = try await ChorusProcess.serve(["gateway", "--port", "0", "--http-port", "0", "--vision", visionAddress, "--api-key", Self.key])
        let upstreamHTTP = try await httpAddress(upstream)
        let config = """
            {"upstreams": [{"name": "chorus-b", "base_url": "\(upstreamURL ?? upstreamHTTP + "/v1")", "api_key_env": "CHORUS_TEST_UPSTREAM_KEY",
                            "timeout_seconds": \(timeout), "max_concurrent": 8, "breaker_failures": \(breakerFailures), "breaker_cooldown_seconds": 60,
                            "models": {"remote-llava": {"model": "llava-tiny", "capabilities": ["chat", "vision", "completions"]},
                                       "remote-clip": {"model": "clip-tiny", "capabilities": ["embeddings"]},
                                       "remote-text": {"model": "llava-tiny", "capabilities": ["chat"]}}}]}
            """
        let file = NSTemporaryDirectory() + "chorus-upstreams-\(UUID().uuidString).json"
        try config.write(toFile: file, atomically: true, encoding: .utf8)
        var local: [String] = [], processes: [ChorusProcess] = [], speechList: (path: String, address: String)?
        if localSpeech {
            // Found through a replica list, as a discovered service, which is empty when the gateway starts (a
            // headless Service before its first pod is ready): the replica joins once the front is up.
            let (speech, speechAddress) = try await ChorusProcess.serve(["speech", "--port", "0", "--models", try RealModels.path(""), "--beam-size", "1"])
            speechList = (NSTemporaryDirectory() + "chorus-speech-list-\(UUID().uuidString)", speechAddress)
            try "".write(toFile: speechList!.path, atomically: true, encoding: .utf8)
            local = ["--speech", "file://" + speechList!.path, "--discovery-interval-ms", "100"]
            processes.append(speech)
        }
        let (gateway, _) = try await ChorusProcess.serve(["gateway", "--port", "0", "--http-port", "0", "--upstreams", file]
                                                         + (keysFile.map { ["--api-keys", $0] } ?? []) + local,
                                                         environment: ["CHORUS_TEST_UPSTREAM_KEY": key, "CHORUS_TEST_TEAM_KEY": "team-secret-1",
                                                                       "CHORUS_TEST_CLIP_KEY": "clip-secret-2", "CHORUS_TEST_SLOW_KEY": "slow-secret-3"])
        let front = try await httpAddress(gateway)
        if let speechList {
            try "\(speechList.address)\n".write(toFile: speechList.path, atomically: true, encoding: .utf8)
            _ = try await gateway.waitForLine(containing: "re-admitted")  // the listed replica's first health check
        }
        return Stack(processes: [gateway, upstream, vision] + processes, front: front,
                     upstreamVision: VisionClient(try WireClient(address: visionAddress)), upstreamGateway: upstream, gateway: gateway)
    }

    static func post(_ url: String, _ json: [String: Any], key: String? = nil) async throws -> (status: Int, body: [String: Any], text: String) {
        try await postWithHeaders(url, json, key: key).answer
    }

    /// A multipart form: `before`, the file, then `after`.
    static func postForm(_ url: String, before: [(String, String)], file: Data, after: [(String, String)], key: String) async throws -> (status: Int, text: String) {
        let boundary = "chorus-form-\(UUID().uuidString)"
        func field(_ name: String, _ value: String) -> Data {
            Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n".utf8)
        }
        var body = before.map(field).reduce(Data(), +)
        body += Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\n".utf8) + file + Data("\r\n".utf8)
        body += after.map(field).reduce(Data(), +) + Data("--\(boundary)--\r\n".utf8)
        var request = URLRequest(url: URL(string: url)!)
        request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization")
        request.httpMethod = "POST"
        request.httpBody = body
        request.setValue("multipart/form-data; boundary=\(boundary)", forHTTPHeaderField: "Content-Type")
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as! HTTPURLResponse).statusCode, String(decoding: data, as: UTF8.self))
    }

    static func postWithHeaders(_ url: String, _ json: [String: Any], key: String? = nil) async throws -> (answer: (status: Int, body: [String: Any], text: String), retryAfter: String?) {
        var request = URLRequest(url: URL(string: url)!)
        if let key { request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization") }
        request.httpMethod = "POST"
        request.httpBody = try JSONSerialization.data(withJSONObject: json)
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.timeoutInterval = 120
        let (data, response) = try await URLSession.shared.data(for: request)
        let text = String(decoding: data, as: UTF8.self)
        let http = response as! HTTPURLResponse
        return ((http.statusCode, (try? JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:], text), http.value(forHTTPHeaderField: "Retry-After"))
    }

    /// A streamed chat opened on a raw socket and read up to its first token: the request stays in flight
    /// until the socket is closed.
    static func openStream(_ front: String, key: String? = nil) throws -> Int32 {
        let port = Int(front.split(separator: ":").last!)!
        let body = try JSONSerialization.data(withJSONObject: ["model": "remote-llava", "max_tokens": 2000, "stream": true,
                                                               "messages": [["role": "user", "content": "Tell me everything."]]] as [String: Any])
        let fd = try connectedSocket(port: port)
        let auth = key.map { "Authorization: Bearer \($0)\r\n" } ?? ""
        let head = "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n\(auth)Content-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n"
        let bytes = Array(head.utf8) + [UInt8](body)
        guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count else { throw TestFailure("short write") }
        var received = [UInt8](), buffer = [UInt8](repeating: 0, count: 4096)
        while !String(decoding: received, as: UTF8.self).contains("\"content\"") {
            let n = read(fd, &buffer, buffer.count)
            guard n > 0 else { throw TestFailure("the stream ended before a token: \(String(decoding: received, as: UTF8.self))") }
            received += buffer[..<n]
        }
        return fd
    }

    static func get(_ url: String, key: String? = nil) async throws -> (status: Int, text: String) {
        var request = URLRequest(url: URL(string: url)!)
        if let key { request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization") }
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as! HTTPURLResponse).statusCode, String(decoding: data, as: UTF8.self))
    }

    static let question: [String: Any] = ["role": "user", "content": [
        ["type": "image_url", "image_url": ["url": "data:image/png;base64," + ChatProcessTests.png.base64EncodedString()]],
        ["type": "text", "text": "What is shown in this image?"]]]

    @Test func upstreamModelsAreServedUnderTheirAliasesWithTheKey() async throws {
        let stack = try await Self.start()
        defer { stack.stop() }
        let models = try await Self.get(stack.front + "/v1/models")
        #expect(models.status == 200 && models.text.contains("\"remote-llava\"") && models.text.contains("\"owned_by\":\"chorus-b\""), "\(models.text)")
        #expect(!models.text.contains(Self.key) && !stack.gateway.log.contains(Self.key))

        let answer = try await Self.post(stack.front + "/v1/chat/completions", ["model": "remote-llava", "max_tokens": 5, "messages": [Self.question]])
        #expect(answer.status == 200, "\(answer.text)")
        let usage = answer.body["usage"] as? [String: Any]
        // The fixture's prompt is 46 tokens (as ChatProcessTests): the upstream ran it, under its own model name.
        #expect(usage?["prompt_tokens"] as? Int == 46 && usage?["completion_tokens"] as? Int == 5 && answer.body["model"] as? String == "llava-tiny")

        let embedded = try await Self.post(stack.front + "/v1/embeddings", ["model": "remote-clip", "input": ["a cat", "a dog"]])
        #expect(embedded.status == 200 && (embedded.body["data"] as? [Any])?.count == 2, "\(embedded.text)")

        // The upstream's own 400, with its message and status; a route the alias does not serve, refused here.
        let bad = try await Self.post(stack.front + "/v1/chat/completions", ["model": "remote-llava", "messages": []])
        #expect(bad.status == 400 && bad.text.contains("messages"), "\(bad.text)")
        let wrongRoute = try await Self.post(stack.front + "/v1/chat/completions", ["model": "remote-clip", "messages": [Self.question]])
        let wrongMessage = (wrongRoute.body["error"] as? [String: Any])?["message"] as? String ?? ""
        #expect(wrongRoute.status == 400 && wrongMessage.contains("does not serve /v1/chat/completions; it serves /v1/embeddings"), "\(wrongRoute.text)")
        // Images only for a model with the vision capability; its text chats go through.
        let blind = try await Self.post(stack.front + "/v1/chat/completions", ["model": "remote-text", "messages": [Self.question]])
        #expect(blind.status == 400 && blind.text.contains("does not take images"), "\(blind.text)")
        let text = try await Self.post(stack.front + "/v1/chat/completions", ["model": "remote-text", "max_tokens": 2,
                                                                              "messages": [["role": "user", "content": "hi"]]])
        #expect(text.status == 200, "\(text.text)")
        // A model neither local nor upstream, where the gateway has no vision service of its own: 404 naming both.
        let unknown = try await Self.post(stack.front + "/v1/chat/completions", ["model": "nobody", "messages": [Self.question]])
        #expect(unknown.status == 404 && unknown.text.contains("model 'nobody' is not served here: no upstream model has that name (remote-clip, remote-llava, remote-text)")
                && unknown.text.contains("no vision service of its own"), "\(unknown.text)")
    }

    @Test func aStreamIsRelayedAsItArrivesAndLeavingCancelsTheUpstreamCall() async throws {
        let stack = try await Self.start()
        defer { stack.stop() }
        // The first chunk of tokens arrives while the upstream is still generating.
        let fd = try Self.openStream(stack.front)
        let generating = try await stack.upstreamVision.status(StatusRequest()).inFlight
        #expect(generating == 2, "the upstream's generation is still running when the first chunk has arrived")
        // The client leaves: the front cancels its upstream call, and the upstream stops generating.
        close(fd)
        let idle = await eventually(timeout: .seconds(30)) { (try? await stack.upstreamVision.status(StatusRequest()).inFlight) == 1 }
        #expect(idle, "the upstream still generates after the client left")
    }

    @Test func aDeadUpstreamIs503AndOpensTheBreaker() async throws {
        let stack = try await Self.start(breakerFailures: 2)
        defer { stack.stop() }
        stack.upstreamGateway.signal(SIGKILL)
        for _ in 0..<2 {
            let answer = try await Self.post(stack.front + "/v1/chat/completions", ["model": "remote-llava", "max_tokens": 2, "messages": [Self.question]])
            #expect(answer.status == 503 && answer.text.contains("upstream 'chorus-b'") && answer.text.contains("unreachable"), "\(answer.text)")
        }
        let refused = try await Self.post(stack.front + "/v1/chat/completions", ["model": "remote-llava", "max_tokens": 2, "messages": [Self.question]])
        #expect(refused.status == 503 && refused.text.contains("is unhealthy: 2 failures in a row"), "\(refused.text)")
        let ready = try await Self.get(stack.front + "/readyz")
        #expect(ready.text.contains("\"chorus-b\"") && ready.text.contains("\"healthy\":false"), "\(ready.text)")
        let metrics = try await Self.get(stack.front + "/metrics")
        #expect(metrics.text.contains("chorus_upstream_healthy{upstream=\"chorus-b\"} 0"), "\(metrics.text)")
        #expect(metrics.text.contains("chorus_upstream_requests_total{upstream=\"chorus-b\",status=\"none\"} 2"), "\(metrics.text)")
    }

    @Test func aHungUpstreamMeetsItsTimeoutAndAWrongKeyIsTheUpstreamsRefusal() async throws {
        // A listener that accepts and never answers.
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) } }
        listen(listener, 8)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
        defer { close(listener) }
        let hungPort = Int(UInt16(bigEndian: address.sin_port))
        let stack = try await Self.start(upstreamURL: "http://127.0.0.1:\(hungPort)/v1", timeout: 1.5)
        defer { stack.stop() }
        let started = Date()
        let answer = try await Self.post(stack.front + "/v1/chat/completions", ["model": "remote-llava", "max_tokens": 2, "messages": [Self.question]])
        #expect(answer.status == 504 && answer.text.contains("did not answer within 1.5 s"), "\(answer.text)")
        #expect(Date().timeIntervalSince(started) < 30)

        let wrongKey = try await Self.start(key: "not-the-key")
        defer { wrongKey.stop() }
        let refused = try await Self.post(wrongKey.front + "/v1/chat/completions", ["model": "remote-llava", "max_tokens": 2, "messages": [Self.question]])
        #expect(refused.status == 401 && refused.text.contains("incorrect API key"), "\(refused.text)")
        #expect(!wrongKey.gateway.log.contains("not-the-key"))
    }

    @Test func keysFromAFileHaveTheirModelsAndLimits() async throws {
        let file = NSTemporaryDirectory() + "chorus-keys-\(UUID().uuidString).json"
        try """
            {"keys": [{"name": "team", "key_env": "CHORUS_TEST_TEAM_KEY", "models": ["remote-llava"], "requests_per_minute": 3},
                      {"name": "clip-only", "key_env": "CHORUS_TEST_CLIP_KEY", "models": ["remote-clip"]},
                      {"name": "slow", "key_env": "CHORUS_TEST_SLOW_KEY", "models": ["*"], "max_concurrent": 1}]}
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let stack = try await Self.start(keysFile: file)
        defer { stack.stop() }
        let chat: [String: Any] = ["model": "remote-llava", "max_tokens": 1, "messages": [Self.question]]
        #expect(try await Self.post(stack.front + "/v1/chat/completions", chat).status == 401)
        #expect(try await Self.post(stack.front + "/v1/chat/completions", chat, key: "guess").text.contains("incorrect API key"))
        let forbidden = try await Self.post(stack.front + "/v1/chat/completions", chat, key: "clip-secret-2")
        #expect(forbidden.status == 403 && forbidden.text.contains("key 'clip-only' may not use model 'remote-llava'"), "\(forbidden.text)")
        #expect(try await Self.post(stack.front + "/v1/embeddings", ["model": "remote-clip", "input": "a cat"], key: "clip-secret-2").status == 200)
        // A restricted key names its model: no request may fall back on a default, nor run a pipeline's own models.
        let unnamed = try await Self.post(stack.front + "/v1/embeddings", ["input": "a cat"], key: "clip-secret-2")
        #expect(unnamed.status == 403 && unnamed.text.contains("key 'clip-only' may use only model remote-clip: name one in 'model'"), "\(unnamed.text)")
        let pipeline = try await Self.post(stack.front + "/v1/pipelines", ["stream": false, "steps": [
            ["id": "echo", "method": "speech.Echo", "inputs": [:] as [String: Any]]]] as [String: Any], key: "clip-secret-2")
        #expect(pipeline.status == 403 && pipeline.text.contains("runs models a request does not name"), "\(pipeline.text)")

        // A form is read as far as its model field, wherever that is, and the route still gets all of it (the file
        // streams on from there): past a 200 KB file to the model, refused; with no model, on to the route, which
        // finds the file and then no speech service.
        let audio = Data(repeating: 1, count: 200_000)
        let late = try await Self.postForm(stack.front + "/v1/audio/transcriptions", before: [("language", "en")], file: audio,
                                           after: [("model", "remote-llava")], key: "clip-secret-2")
        #expect(late.status == 403 && late.text.contains("key 'clip-only' may not use model 'remote-llava'"), "\(late.text)")
        let routed = try await Self.postForm(stack.front + "/v1/audio/transcriptions", before: [("language", "en")], file: audio,
                                             after: [], key: "slow-secret-3")
        #expect(routed.status == 503 && routed.text.contains("speech"), "\(routed.status) \(routed.text)")

        // Three a minute: the fourth is 429 with Retry-After.
        for _ in 0..<3 { #expect(try await Self.post(stack.front + "/v1/chat/completions", chat, key: "team-secret-1").status == 200) }
        let limited = try await Self.postWithHeaders(stack.front + "/v1/chat/completions", chat, key: "team-secret-1")
        #expect(limited.answer.status == 429 && limited.answer.text.contains("requests_per_minute"), "\(limited.answer.text)")
        #expect(Int(limited.retryAfter ?? "") ?? 0 >= 1, "\(String(describing: limited.retryAfter))")

        // One at a time: while a stream is open, the next request waits its turn with a 429.
        let fd = try Self.openStream(stack.front, key: "slow-secret-3")
        let busy = try await Self.postWithHeaders(stack.front + "/v1/chat/completions", chat, key: "slow-secret-3")
        #expect(busy.answer.status == 429 && busy.answer.text.contains("max_concurrent") && busy.retryAfter == "1", "\(busy.answer.text)")
        close(fd)

        let metrics = try await Self.get(stack.front + "/metrics", key: "clip-secret-2")
        #expect(metrics.text.contains("chorus_key_requests_total{key=\"team\",status=\"429\"} 1"), "\(metrics.text)")
        #expect(metrics.text.contains("chorus_key_requests_total{key=\"clip-only\",status=\"403\"} 4"))
        for secret in ["team-secret-1", "clip-secret-2", "slow-secret-3", Self.key] {
            #expect(!stack.gateway.log.contains(secret) && !metrics.text.contains(secret))
        }
    }

    @Test func aPipelineMixesALocalAndAnUpstreamStep() async throws {
        let stack = try await Self.start(localSpeech: true)
        defer { stack.stop() }
        let answer = try await Self.post(stack.front + "/v1/pipelines", ["stream": false, "steps": [
            ["id": "local", "method": "speech.Echo", "inputs": ["payload": "\"aGk=\""]],
            ["id": "remote", "method": "upstream.chat", "inputs": ["model": "remote-llava", "max_tokens": "3",
                                                                  "messages.0.role": "user", "messages.0.content": "$local.served_by"]],
        ] as [[String: Any]]])
        #expect(answer.status == 200, "\(answer.text)")
        let steps = answer.body["steps"] as? [String: Any]
        let remote = steps?["remote"] as? [String: Any]
        #expect((remote?["usage"] as? [String: Any])?["completion_tokens"] as? Int == 3, "\(answer.text)")
        #expect(remote?["text"] is String && (steps?["local"] as? [String: Any])?["served_by"] != nil)
        // An upstream step naming a model the upstreams do not have is refused by name.
        let unknown = try await Self.post(stack.front + "/v1/pipelines", ["stream": false, "steps": [
            ["id": "remote", "method": "upstream.chat", "inputs": ["model": "nobody", "messages.0.role": "user", "messages.0.content": "hi"]],
        ] as [[String: Any]]])
        #expect(unknown.status == 400 && unknown.text.contains("'model' must be an upstream model (remote-clip, remote-llava, remote-text)"), "\(unknown.text)")

        // The spoken-question recipe with an upstream answer: Whisper here transcribes, the upstream's LLaVA answers
        // about the image (sent as a data URL), Piper here speaks the answer; each step's event has its timings.
        var speech = URLRequest(url: URL(string: stack.front + "/v1/audio/speech")!)
        speech.httpMethod = "POST"
        speech.httpBody = try JSONSerialization.data(withJSONObject: ["model": "tts-1", "voice": "alloy", "response_format": "wav",
                                                                      "input": "Please turn off the lights before you leave."])
        speech.setValue("application/json", forHTTPHeaderField: "Content-Type")
        let (wav, _) = try await URLSession.shared.data(for: speech)
        #expect(wav.starts(with: Array("RIFF".utf8)), "\(String(decoding: wav.prefix(300), as: UTF8.self))")
        let streamed = try await Self.post(stack.front + "/v1/pipelines", [
            "recipe": "spoken-question", "inputs": ["upstream_model": "remote-llava", "max_tokens": 4],
            "images": ["data:image/png;base64," + ChatProcessTests.png.base64EncodedString()],
            "audio": ["data:audio/wav;base64," + wav.base64EncodedString()],
        ])
        #expect(streamed.status == 200, "\(streamed.text)")
        let events = streamed.text.components(separatedBy: "\n\n").filter { $0.hasPrefix("data: {") }
            .compactMap { try? JSONSerialization.jsonObject(with: Data($0.dropFirst(6).utf8)) as? [String: Any] }
        let byStep = Dictionary(events.compactMap { event in (event["step"] as? String).map { ($0, event) } }, uniquingKeysWith: { $1 })
        #expect(Set(byStep.keys) == ["transcript", "answer", "speech"], "\(streamed.text.prefix(2000))")
        let transcript = ((byStep["transcript"]?["output"] as? [String: Any])?["result"] as? [String: Any])?["text"] as? String ?? ""
        #expect(transcript.lowercased().contains("lights"), "\(transcript)")
        let answerOutput = byStep["answer"]?["output"] as? [String: Any]
        let usage = answerOutput?["usage"] as? [String: Any]
        // The upstream saw the image: LLaVA's prompt holds the image's tokens besides the question's.
        #expect(usage?["completion_tokens"] as? Int == 4 && (usage?["prompt_tokens"] as? Int ?? 0) > 16, "\(String(describing: answerOutput))")
        #expect(answerOutput?["model"] as? String == "llava-tiny" && answerOutput?["text"] is String)
        let started = byStep["answer"]?["started_ms"] as? Double ?? -1, finished = byStep["answer"]?["finished_ms"] as? Double ?? -1
        let transcribed = byStep["transcript"]?["finished_ms"] as? Double ?? .infinity
        #expect(started >= transcribed && finished > started, "the upstream step runs after the transcript, timed: \(started) … \(finished)")
        let spoken = ((byStep["speech"]?["output"] as? [String: Any])?["events"] as? [[String: Any]])?.first?["data"] as? String
        #expect(spoken.flatMap { Data(base64Encoded: $0) }?.starts(with: Array("RIFF".utf8)) == true)
    }
}
