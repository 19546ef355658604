import ArgumentParser
import Foundation
import Gateway
import GatewayHTTP
import Hummingbird
import Logging
import NIOCore

/// The upstream row of `chorus bench gateway`: a streamed chat relayed through the HTTP front's upstream routing
/// against the same stream fetched from the upstream directly. The upstream is a stand-in in this process that
/// answers every chat with `tokens` server-sent chunks at once, so what is measured is the relay alone.
struct UpstreamRelayBench {
    let tokens: Int
    let calls: Int
    let levels: [Int]

    func run(logger: Logger) async throws {
        // The stand-in upstream: OpenAI's chunk shape, [DONE], as vLLM and llama.cpp's server send it.
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
        let (upstreamBound, upstreamContinuation) = AsyncStream<Int>.makeStream()
        let upstreamApp = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                                      onServerRunning: { upstreamContinuation.yield($0.localAddress?.port ?? 0) }, logger: logger)
        let upstreamTask = Task { try await upstreamApp.runService() }
        defer { upstreamTask.cancel() }
        var ports = upstreamBound.makeAsyncIterator()
        guard let upstreamPort = await ports.next() else { throw ValidationError("the stand-in upstream did not start") }

        let config = UpstreamConfig(name: "bench", baseURL: "http://127.0.0.1:\(upstreamPort)/v1", apiKey: nil, timeoutSeconds: 60,
                                    maxConcurrent: 1024, breakerFailures: 1000, breakerCooldownSeconds: 1,
                                    models: [.init(alias: "relayed", model: "m", capabilities: [.chat])])
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

        print("\nupstream relay: a streamed chat of \(tokens) chunks, \(calls) calls per path and level (one connection per call)")
        print("path       conc |    p50 µs    p99 µs   chunks/s | added p50 µs  added p99 µs")
        for level in levels {
            var rows: [(String, BenchGatewayCommand.Latencies, Double)] = []
            for (name, port, model) in [("direct", upstreamPort, "m"), ("relayed", frontPort, "relayed")] {
                let body = #"{"model": "\#(model)", "stream": true, "messages": [{"role": "user", "content": "hi"}]}"#
                _ = try streams(port: port, body: body, total: min(200, calls), concurrency: level)
                let latencies = try streams(port: port, body: body, total: calls, concurrency: level)
                rows.append((name, latencies, latencies.callsPerSecond * Double(tokens)))
            }
            for (name, latencies, chunks) in rows {
                let added = name == "direct" ? "" : String(format: "%12.1f  %12.1f", latencies.p50 - rows[0].1.p50, latencies.p99 - rows[0].1.p99)
                print(String(format: "%@ %4d | %9.1f %9.1f %10.0f | ", name.padding(toLength: 10, withPad: " ", startingAt: 0), level,
                             latencies.p50, latencies.p99, chunks) + added)
            }
        }
        await upstreams.shutdown()
    }

    /// `concurrency` threads, each posting `body` on a new connection and reading the stream to its close.
    private func streams(port: Int, body: String, total: Int, concurrency: Int) throws -> BenchGatewayCommand.Latencies {
        let request = Array("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8)
        return try BenchGatewayCommand.threadedCalls(total: total, concurrency: concurrency, what: "streamed chat") { count, record in
            for _ in 0..<count {
                let t0 = DispatchTime.now().uptimeNanoseconds
                let connection = try BlockingHTTPConnection(port: port)
                let received = try connection.exchangeUntilClosed(request)
                connection.close()
                guard received.contains("data: [DONE]") else { throw ValidationError("the stream did not end with [DONE]: \(received.prefix(300))") }
                record(DispatchTime.now().uptimeNanoseconds - t0)
            }
        }
    }
}
