import ArgumentParser
import ChorusAPI
import ChorusServiceKit
import ChorusWire
import Foundation
import Gateway
import GatewayHTTP
import Logging
import SpeechService
import Synchronization

/// `chorus bench gateway`: what the gateway adds to a small call — the native hop and the HTTP front —
/// over calling the service directly, at p50 and p99, all measured in one run on loopback.
struct BenchGatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "Latency the gateway adds (native hop, HTTP front) over a direct service call.",
        discussion: """
            A SpeechService (no models), a gateway and its HTTP front run in this process on loopback. The small
            request is Echo with a 16-byte payload: directly to the service, through the gateway's wire port, and
            as POST /v1/echo through the HTTP front (keep-alive connections, one per caller, from plain blocking
            sockets so the client adds little of its own). Run it from a release build.

            The upstream row: a stand-in OpenAI-compatible server in this process streams every chat as
            --upstream-tokens chunks at once; the same streamed chat is fetched from it directly and through the HTTP
            front's upstream routing (an alias mapped to it), one connection per call, read to [DONE], in
            alternating rounds. With --upstream-url the upstream is a real server on loopback (`chorus up`'s gateway
            serving SmolLM2, or llama.cpp's server) generating up to --upstream-tokens tokens of --upstream-model:
            tokens/s through the relay against direct, with the model's own work beside the relay's on the same cores.
            Only the upstream row: --calls 0.
            """)

    @Option(help: "Calls per path and concurrency level.")
    var calls = 20_000

    @Option(help: "Concurrent callers, comma-separated.")
    var concurrency = "1,64"

    @Option(help: "The upstream row: streamed chats per path and level (0 skips the row).")
    var upstreamCalls = 2000

    @Option(help: "The upstream row: chunks in each streamed chat.")
    var upstreamTokens = 64

    @Option(help: "The upstream row: concurrent callers, comma-separated.")
    var upstreamConcurrency = "1,32"

    @Option(help: "The upstream row: alternating rounds of direct and relayed calls.")
    var upstreamRounds = 3

    @Option(help: "The upstream row: a real OpenAI-compatible server on loopback instead of the stand-in (http://127.0.0.1:7180/v1).")
    var upstreamURL: String?

    @Option(help: "The upstream row: the model --upstream-url streams (with up to --upstream-tokens tokens).")
    var upstreamModel = "smollm2-135m-instruct"

    func run() async throws {
        quietBenchLogging()
        let levels = concurrency.split(separator: ",").compactMap { Int($0) }
        // The servers here stop by cancellation at the end, which Hummingbird reports as an error.
        var logger = Logger(label: "bench")
        logger.logLevel = .critical
        let runtime = ServiceRuntime(options: .init(service: "speech"), logger: logger)
        let service = WireServer(configuration: .init(port: 0), routes: try SpeechServer(runtime: runtime).routes, logger: logger)
        let servicePort = try await service.start()
        let gateway = try Gateway(configuration: .init(services: ["speech": ["127.0.0.1:\(servicePort)"]]), logger: logger)
        let gatewayServer = WireServer(configuration: .init(port: 0), routes: gateway.routes, fallback: gateway.forward, loopRelay: gateway.relayOnLoop, logger: logger)
        let gatewayPort = try await gatewayServer.start()
        let front = OpenAIFront(settings: .init(port: 0), gateway: gateway, logger: logger)
        let (bound, boundContinuation) = AsyncStream<String>.makeStream()
        let http = Task { try await front.run { address in boundContinuation.yield(address) } }
        defer { http.cancel() }
        var addresses = bound.makeAsyncIterator()
        guard let httpAddress = await addresses.next(), let httpPort = Int(httpAddress.split(separator: ":").last ?? "") else {
            throw ValidationError("the HTTP front did not start")
        }

        print("chorus bench gateway: \(calls) Echo calls of 16 B per path and level; \(cpuName())")
        if calls > 0 { print("path       conc |    p50 µs    p99 µs    calls/s | added p50 µs  added p99 µs") }
        let payload = Data(repeating: 7, count: 16)
        for level in levels where calls > 0 {
            var results: [(String, Latencies)] = []
            for (name, port) in [("direct", servicePort), ("gateway", gatewayPort)] {
                let client = SpeechClient(WireClient(host: "127.0.0.1", port: port))
                _ = try await nativeCalls(client, payload: payload, total: min(2000, calls), concurrency: level)
                results.append((name, try await nativeCalls(client, payload: payload, total: calls, concurrency: level)))
                (client.channel as? WireClient)?.close()
            }
            let body = #"{"service": "speech", "payload": "\#(payload.base64EncodedString())"}"#
            _ = try httpCalls(port: httpPort, body: body, total: min(2000, calls), concurrency: level)
            results.append(("http", try httpCalls(port: httpPort, body: body, total: calls, concurrency: level)))
            let direct = results[0].1
            for (name, latencies) in results {
                let added = name == "direct" ? "" : String(format: "%12.1f  %12.1f", latencies.p50 - direct.p50, latencies.p99 - direct.p99)
                print(String(format: "%@ %4d | %9.1f %9.1f %10.0f | ", name.padding(toLength: 10, withPad: " ", startingAt: 0), level,
                             latencies.p50, latencies.p99, latencies.callsPerSecond) + added)
            }
        }
        await gatewayServer.close()
        await service.close()
        if upstreamCalls > 0 {
            var bench = UpstreamRelayBench(tokens: upstreamTokens, calls: upstreamCalls,
                                           levels: upstreamConcurrency.split(separator: ",").compactMap { Int($0) }, rounds: upstreamRounds)
            if let upstreamURL { bench.target = (upstreamURL, upstreamModel) }
            try await bench.run(logger: logger)
        }
    }

    struct Latencies {
        var p50: Double  // µs
        var p99: Double
        var callsPerSecond: Double

        /// Every call's nanoseconds, in order.
        var nanoseconds: [UInt64]

        init(_ nanoseconds: [UInt64], seconds: Double) {
            let sorted = nanoseconds.sorted()
            self.nanoseconds = sorted
            p50 = Double(sorted[sorted.count / 2]) / 1000
            p99 = Double(sorted[Int(0.99 * Double(sorted.count - 1))]) / 1000
            callsPerSecond = Double(sorted.count) / seconds
        }
    }

    private func nativeCalls(_ client: SpeechClient, payload: Data, total: Int, concurrency: Int) async throws -> Latencies {
        let request = EchoRequest(payload: payload)
        let start = DispatchTime.now().uptimeNanoseconds
        let latencies = try await withThrowingTaskGroup(of: [UInt64].self) { group in
            for worker in 0..<concurrency {
                let count = total / concurrency + (worker < total % concurrency ? 1 : 0)
                group.addTask {
                    var latencies: [UInt64] = []
                    for _ in 0..<count {
                        let t0 = DispatchTime.now().uptimeNanoseconds
                        _ = try await client.echo(request)
                        latencies.append(DispatchTime.now().uptimeNanoseconds - t0)
                    }
                    return latencies
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        return Latencies(latencies, seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }

    /// `concurrency` threads, each with one keep-alive connection, posting `body` in a loop.
    private func httpCalls(port: Int, body: String, total: Int, concurrency: Int) throws -> Latencies {
        let request = Array("POST /v1/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8)
        return try Self.threadedCalls(total: total, concurrency: concurrency, what: "HTTP echo") { count, record in
            let connection = try BlockingHTTPConnection(port: port)
            defer { connection.close() }
            for _ in 0..<count {
                let t0 = DispatchTime.now().uptimeNanoseconds
                let status = try connection.exchange(request)
                guard status == 200 else { throw ValidationError("HTTP \(status)") }
                record(DispatchTime.now().uptimeNanoseconds - t0)
            }
        }
    }

    /// `total` calls shared by `concurrency` threads: each runs `body` with its share and a function that records
    /// one call's nanoseconds.
    static func threadedCalls(total: Int, concurrency: Int, what: String,
                              _ body: @escaping @Sendable (_ count: Int, _ record: (UInt64) -> Void) throws -> Void) throws -> Latencies {
        let results = Mutex<[UInt64]>([])
        let failures = Mutex<[String]>([])
        let group = DispatchGroup()
        let start = DispatchTime.now().uptimeNanoseconds
        for worker in 0..<concurrency {
            let count = total / concurrency + (worker < total % concurrency ? 1 : 0)
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                var latencies: [UInt64] = []
                do {
                    try body(count) { latencies.append($0) }
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
                results.withLock { $0 += latencies }
            }
        }
        group.wait()
        if let failure = failures.withLock({ $0.first }) { throw ValidationError("\(what) failed: \(failure)") }
        return Latencies(results.withLock { $0 }, seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }
}

/// A keep-alive HTTP/1.1 connection on a blocking socket: write a request, read one response.
final class BlockingHTTPConnection {
    private let socket: Int32
    private var buffer: [UInt8] = []

    init(port: Int) throws {
        socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw ValidationError("cannot connect to 127.0.0.1:\(port)") }
        var one: Int32 = 1
        setsockopt(socket, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Sends `request` and reads the response through its Content-Length; returns the status code.
    private func send(_ request: [UInt8]) throws {
        var sent = 0
        while sent < request.count {
            let n = request[sent...].withUnsafeBytes { Glibc.send(socket, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { throw ValidationError("send failed") }
            sent += n
        }
    }

    /// Sends `request` and reads until the server closes the connection (a `Connection: close` stream).
    func exchangeUntilClosed(_ request: [UInt8]) throws -> String {
        try send(request)
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            buffer += chunk[..<n]
        }
        defer { buffer.removeAll() }
        return String(decoding: buffer, as: UTF8.self)
    }

    func exchange(_ request: [UInt8]) throws -> Int {
        try send(request)
        let separator: [UInt8] = [13, 10, 13, 10]
        var headerEnd: Int?
        while headerEnd == nil {
            headerEnd = buffer.indices.dropLast(3).first { buffer[$0..<($0 + 4)].elementsEqual(separator) }
            if headerEnd == nil { try fill() }
        }
        let head = String(decoding: buffer[..<headerEnd!], as: UTF8.self)
        let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
        let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
            .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
        while buffer.count < headerEnd! + 4 + length { try fill() }
        buffer.removeFirst(headerEnd! + 4 + length)
        return status
    }

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 16_384)
        let n = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { throw ValidationError("the connection closed") }
        buffer += chunk[..<n]
    }

    func close() { _ = Glibc.close(socket) }
}

extension BenchGatewayCommand: HasExamples {
    static let examples = [
        "chorus bench gateway",
        "chorus bench gateway --upstream-url http://127.0.0.1:8000/v1 --upstream-model llama",
    ]
}
