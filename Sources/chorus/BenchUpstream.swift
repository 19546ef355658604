import ArgumentParser
import Foundation
import Gateway
import GatewayHTTP
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// The upstream row of `chorus bench gateway`: a streamed chat relayed through the HTTP front's upstream routing
/// against the same stream fetched from the upstream directly, in alternating rounds. The upstream is a stand-in in
/// this process that answers every chat with `tokens` server-sent chunks at once, so what is measured is the relay
/// alone; or, with `target`, a real OpenAI-compatible server on loopback (a Chorus gateway serving SmolLM2, llama.cpp's
/// server) generating up to `tokens` tokens, so what is measured is the relay beside a model's own work.
struct UpstreamRelayBench {
    let tokens: Int
    let calls: Int
    let levels: [Int]
    let rounds: Int
    /// A real upstream: its base URL (loopback, through the version path) and the model to stream.
    var target: (url: String, model: String)?

    func run(logger: Logger) async throws {
        var standIn: Task<Void, Error>?
        defer { standIn?.cancel() }
        let upstreamPort: Int, upstreamBase: String, upstreamModel: String
        if let target {
            guard let url = URLComponents(string: target.url), ["127.0.0.1", "localhost"].contains(url.host ?? ""), let port = url.port else {
                throw ValidationError("--upstream-url must be a loopback URL with a port, such as http://127.0.0.1:7180/v1 (got \(target.url))")
            }
            (upstreamPort, upstreamBase, upstreamModel) = (port, url.path, target.model)
        } else {
            let (task, port) = try await Self.startStandIn(tokens: tokens, logger: logger)
            (standIn, upstreamPort, upstreamBase, upstreamModel) = (task, port, "/v1", "m")
        }

        var config = UpstreamConfig(name: "bench", baseURL: "http://127.0.0.1:\(upstreamPort)\(upstreamBase)", apiKey: nil, timeoutSeconds: 600,
                                    maxConcurrent: 1024, breakerFailures: 1000, breakerCooldownSeconds: 1,
                                    models: [.init(alias: "relayed", model: upstreamModel, capabilities: [.chat])])
        config.requestIDHeader = nil  // llama-cpp-python's server refuses ids that are not UUIDs
        let gateway = try Gateway(configuration: .init(services: [:]), logger: logger)
        var settings = OpenAIFront.Settings(port: 0)
        let upstreams = Upstreams([config], logger: logger)
        settings.upstreams = upstreams
        let front = OpenAIFront(settings: settings, gateway: gateway, logger: logger)
        let (bound, boundContinuation) = AsyncStream<String>.makeStream()
        let http = Task { try await front.run { boundContinuation.yield($0) } }
        defer { http.cancel() }
        var addresses = bound.makeAsyncIterator()
        guard let address = await addresses.next(), let frontPort = Int(address.split(separator: ":").last ?? "") else {
            throw ValidationError("the HTTP front did not start")
        }

        let what = target.map { "model \($0.model) at \($0.url), up to \(tokens) tokens" } ?? "the stand-in, \(tokens) chunks"
        print("\nupstream relay: a streamed chat (\(what)); \(calls) calls per path and level in \(rounds) alternating rounds, one connection per call")
        print("path       conc |    p50 µs    p99 µs   tokens/s | added p50 µs  added p99 µs  relayed/direct tokens/s")
        let maxTokens = target == nil ? "" : #", "max_tokens": \#(tokens), "temperature": 0"#
        let paths = [("direct", upstreamPort, upstreamBase, upstreamModel), ("relayed", frontPort, "/v1", "relayed")]
        func body(_ model: String) -> String {
            #"{"model": "\#(model)", "stream": true\#(maxTokens), "messages": [{"role": "user", "content": "Tell me about the sea."}]}"#
        }
        for level in levels {
            var results = paths.map { _ in Streams() }
            for path in paths {
                _ = try streams(port: path.1, route: path.2, body: body(path.3), total: target == nil ? min(200, calls) : level, concurrency: level)
            }
            for _ in 0..<rounds {
                for (i, path) in paths.enumerated() {
                    results[i].add(try streams(port: path.1, route: path.2, body: body(path.3), total: max(level, calls / rounds), concurrency: level))
                }
            }
            let direct = results[0]
            for (path, result) in zip(paths, results) {
                let added = path.0 == "direct" ? "" : String(format: "%12.1f  %12.1f  %22.3f", result.p50 - direct.p50, result.p99 - direct.p99,
                                                               result.tokensPerSecond / direct.tokensPerSecond)
                print(String(format: "%@ %4d | %9.1f %9.1f %10.1f | ", path.0.padding(toLength: 10, withPad: " ", startingAt: 0), level,
                             result.p50, result.p99, result.tokensPerSecond) + added)
            }
        }
        await upstreams.shutdown()
    }

    /// The stand-in upstream: OpenAI's chunk shape, [DONE], as vLLM and llama.cpp's server send it.
    static func startStandIn(tokens: Int, logger: Logger) async throws -> (Task<Void, Error>, Int) {
        let router = Router()
        let chunks = (0..<tokens).map { i in
            ByteBuffer(string: "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"t\(i) \"},\"finish_reason\":null}]}\n\n")
        }
        router.post("/v1/chat/completions") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/event-stream"], body: ResponseBody { writer in
                for chunk in chunks { try await writer.write(chunk) }
                try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                try await writer.finish(nil)
            })
        }
        let (bound, continuation) = AsyncStream<Int>.makeStream()
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { continuation.yield($0.localAddress?.port ?? 0) }, logger: logger)
        let task = Task { try await app.runService() }
        var ports = bound.makeAsyncIterator()
        guard let port = await ports.next() else { throw ValidationError("the stand-in upstream did not start") }
        return (task, port)
    }

    /// Latencies and token chunks of several rounds on one path.
    struct Streams {
        var nanoseconds: [UInt64] = []
        var tokens = 0
        var seconds = 0.0

        mutating func add(_ round: (latencies: [UInt64], tokens: Int, seconds: Double)) {
            nanoseconds += round.latencies
            tokens += round.tokens
            seconds += round.seconds
        }

        var p50: Double { BenchGatewayCommand.Latencies(nanoseconds, seconds: seconds).p50 }
        var p99: Double { BenchGatewayCommand.Latencies(nanoseconds, seconds: seconds).p99 }
        var tokensPerSecond: Double { Double(tokens) / seconds }
    }

    /// `concurrency` threads, each posting `body` on a new connection and reading the stream to its close; the
    /// streams' latencies, the token chunks they carried (events with non-empty content) and the wall time.
    private func streams(port: Int, route: String, body: String, total: Int, concurrency: Int) throws -> (latencies: [UInt64], tokens: Int, seconds: Double) {
        let request = Array("POST \(route)/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8)
        let tokens = Mutex(0)
        let start = DispatchTime.now().uptimeNanoseconds
        let latencies = try BenchGatewayCommand.threadedCalls(total: total, concurrency: concurrency, what: "streamed chat") { count, record in
            for _ in 0..<count {
                let t0 = DispatchTime.now().uptimeNanoseconds
                let connection = try BlockingHTTPConnection(port: port)
                let received = try connection.exchangeUntilClosed(request)
                connection.close()
                let events = Self.events(received)
                guard events.last == "[DONE]" else { throw ValidationError("the stream did not end with [DONE]: \(received.prefix(300))") }
                record(DispatchTime.now().uptimeNanoseconds - t0)
                let carried = events.filter(Self.carriesText).count
                tokens.withLock { $0 += carried }
            }
        }
        return (latencies.nanoseconds, tokens.withLock { $0 }, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }

    /// The `data:` payloads of a whole HTTP/1.1 response, its chunked transfer coding undone.
    static func events(_ response: String) -> [String] {
        guard let split = response.range(of: "\r\n\r\n") else { return [] }
        let head = response[..<split.lowerBound].lowercased()
        var body = Substring(response[split.upperBound...])
        if head.contains("transfer-encoding: chunked") {
            var joined = ""
            while let line = body.range(of: "\r\n"), let size = Int(body[..<line.lowerBound].split(separator: ";").first ?? "", radix: 16), size > 0 {
                let data = body[line.upperBound...].utf8
                guard data.count >= size else { break }
                let end = data.index(data.startIndex, offsetBy: size)
                joined += String(Substring(data[..<end]))
                body = Substring(data[end...].dropFirst(2))  // the CR LF after the data (one Character, so counted in bytes)
            }
            body = Substring(joined)
        }
        // Servers end event lines with LF or CR LF (sse-starlette, under llama-cpp-python's server).
        return body.replacingOccurrences(of: "\r\n", with: "\n").components(separatedBy: "\n\n").compactMap { event in
            event.hasPrefix("data: ") ? String(event.dropFirst(6)) : nil
        }
    }

    /// Whether a chunk carries generated text: a non-empty `delta.content` (read without a JSON parser, which would
    /// cost the client more than the relay costs the gateway).
    static func carriesText(_ event: String) -> Bool {
        guard let key = event.range(of: "\"content\"") else { return false }
        let rest = event[key.upperBound...].drop { $0 == ":" || $0 == " " }
        return rest.hasPrefix("\"") && !rest.hasPrefix("\"\"")
    }
}
