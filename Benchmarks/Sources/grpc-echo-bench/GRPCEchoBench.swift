// grpc-swift-2 peer of `chorus bench wire`: an Echo service over HTTP/2 (plaintext) on loopback and a
// client with one connection, driven with the same call pattern as Chorus's own benchmark. Prints one
// JSON object per line on stdout; everything else goes to stderr.
//
//   grpc-echo-bench --concurrency 1,16,64 --calls 20000 --payload-bytes 16 --warmup 1000
//   grpc-echo-bench --throughput-bytes 16777216 --throughput-calls 20
//   grpc-echo-bench --server-only --port 50051
//   grpc-echo-bench --client-only --target 127.0.0.1:50051 [unary or throughput options]
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2

// MARK: - Service

/// Messages are raw bytes: no protobuf code generation, and no serialization cost beyond the copy
/// between `[UInt8]` and the transport's buffer.
struct RawBytes: MessageSerializer, MessageDeserializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes {
        Bytes(message)
    }

    func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> [UInt8] {
        serializedMessageBytes.withUnsafeBytes { Array($0) }
    }
}

enum Echo {
    static let method = MethodDescriptor(fullyQualifiedService: "bench.Echo", method: "Echo", type: .unary)

    /// Message size limit on both sides. gRPC's default is 4 MiB, too small for the 16 MiB throughput test.
    static let maxMessageBytes = 64 << 20
}

/// `bench.Echo/Echo`: returns the request bytes unchanged.
struct EchoService: RegistrableRPCService {
    func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        router.registerHandler(forMethod: Echo.method, deserializer: RawBytes(), serializer: RawBytes()) { request, _ in
            let single = try await ServerRequest(stream: request)
            return StreamingServerResponse(single: ServerResponse(message: single.message))
        }
    }
}

// MARK: - Command line

struct Options {
    var concurrency = [1, 16, 64]
    var calls = 20_000
    var payloadBytes = 16
    var warmup = 1000
    var throughputBytes: Int?  // set: throughput mode instead of unary latency
    var throughputCalls = 20
    var serverOnly = false
    var clientOnly = false
    var port = 0
    var target: (host: String, port: Int)?
    /// HTTP/2 flow-control window the server advertises. grpc-swift's server default is 65535 bytes,
    /// which throttles large uploads to one window per round trip; 8 MiB matches its client default.
    var serverWindowBytes = 8 << 20
    /// grpc-swift-nio-transport (since 2.8) delays flushes by up to 100 µs on both sides to batch
    /// writes; on by default, as in the library. `--no-flush-coalescing` turns it off on both sides.
    var flushCoalescing = true

    static let usage = """
        usage: grpc-echo-bench [--concurrency 1,16,64] [--calls N] [--payload-bytes B] [--warmup N]
               grpc-echo-bench --throughput-bytes B [--throughput-calls N]
               grpc-echo-bench --server-only [--port P]
               grpc-echo-bench --client-only --target HOST:PORT [unary or throughput options]
        tuning: [--server-window-bytes B] (server side) [--no-flush-coalescing] (the sides in this process)
        """

    static func parse(_ arguments: [String]) throws -> Options {
        var options = Options()
        var rest = arguments[...]
        func value(_ flag: String) throws -> String {
            guard let value = rest.popFirst() else { throw UsageError("\(flag) needs a value") }
            return value
        }
        func number(_ flag: String, min: Int = 0) throws -> Int {
            let text = try value(flag)
            guard let number = Int(text), number >= min else { throw UsageError("\(flag): expected an integer >= \(min), got '\(text)'") }
            return number
        }
        while let flag = rest.popFirst() {
            switch flag {
            case "--concurrency":
                let text = try value(flag)
                let levels = text.split(separator: ",").compactMap { Int($0) }
                guard !levels.isEmpty, levels.count == text.split(separator: ",").count, levels.allSatisfy({ $0 > 0 }) else {
                    throw UsageError("--concurrency takes positive integers separated by commas, got '\(text)'")
                }
                options.concurrency = levels
            case "--calls": options.calls = try number(flag, min: 1)
            case "--payload-bytes": options.payloadBytes = try number(flag)
            case "--warmup": options.warmup = try number(flag)
            case "--throughput-bytes": options.throughputBytes = try number(flag)
            case "--throughput-calls": options.throughputCalls = try number(flag, min: 1)
            case "--server-only": options.serverOnly = true
            case "--client-only": options.clientOnly = true
            case "--port": options.port = try number(flag)
            case "--server-window-bytes": options.serverWindowBytes = try number(flag, min: 1)
            case "--no-flush-coalescing": options.flushCoalescing = false
            case "--target":
                let text = try value(flag)
                guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), colon > text.startIndex else {
                    throw UsageError("--target takes HOST:PORT, got '\(text)'")
                }
                options.target = (String(text[..<colon]), port)
            case "-h", "--help":
                print(usage)
                exit(0)
            default:
                throw UsageError("unknown argument '\(flag)'")
            }
        }
        if options.serverOnly && options.clientOnly { throw UsageError("--server-only and --client-only exclude each other") }
        if options.clientOnly && options.target == nil { throw UsageError("--client-only needs --target HOST:PORT") }
        if let bytes = options.throughputBytes, bytes > Echo.maxMessageBytes {
            throw UsageError("--throughput-bytes is limited to \(Echo.maxMessageBytes) (the configured max message size)")
        }
        return options
    }
}

struct UsageError: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

// MARK: - Measurement

typealias Client = GRPCClient<HTTP2ClientTransport.Posix>

func echo(_ client: Client, _ payload: [UInt8]) async throws {
    var options = CallOptions.defaults
    // In grpc-swift-nio-transport 2.9.2 the client's stream handler takes its single payload limit
    // (which also bounds decoded *responses*) from `maxRequestMessageBytes`; set both to be safe.
    options.maxRequestMessageBytes = Echo.maxMessageBytes
    options.maxResponseMessageBytes = Echo.maxMessageBytes
    // `waitForReady` stays off: calls made while the connection is still being set up are queued
    // anyway, and a server that is not there fails them at once instead of retrying forever.
    let count = try await client.unary(
        request: ClientRequest(message: payload), descriptor: Echo.method,
        serializer: RawBytes(), deserializer: RawBytes(), options: options
    ) { response in try response.message.count }
    guard count == payload.count else { throw EchoMismatch(sent: payload.count, received: count) }
}

struct EchoMismatch: Error {
    var sent: Int
    var received: Int
}

func nanoseconds() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

/// `total` calls spread over `concurrency` tasks, each calling sequentially in a loop; every call's
/// latency in ns (unsorted).
func runCalls(_ client: Client, payload: [UInt8], total: Int, concurrency: Int) async throws -> [UInt64] {
    try await withThrowingTaskGroup(of: [UInt64].self) { group in
        for worker in 0..<concurrency {
            let count = total / concurrency + (worker < total % concurrency ? 1 : 0)
            group.addTask {
                var latencies: [UInt64] = []
                latencies.reserveCapacity(count)
                for _ in 0..<count {
                    let start = nanoseconds()
                    try await echo(client, payload)
                    latencies.append(nanoseconds() - start)
                }
                return latencies
            }
        }
        var all: [UInt64] = []
        all.reserveCapacity(total)
        for try await latencies in group { all += latencies }
        return all
    }
}

/// Microseconds at quantile `q` of sorted ns latencies: the element at index floor(q * (n - 1)).
func percentile(_ sorted: [UInt64], _ q: Double) -> Double {
    sorted.isEmpty ? 0 : Double(sorted[Int(q * Double(sorted.count - 1))]) / 1000
}

/// One JSON object per line, keys in a fixed order; flushed at once since a parent process reads the pipe.
func emit(_ fields: KeyValuePairs<String, String>) {
    print("{" + fields.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",") + "}")
    // nil flushes every stream: the C global `stdout` is a `var`, which Swift 6 mode rejects outside
    // the main actor.
    fflush(nil)
}

func decimal(_ value: Double) -> String { value.isFinite ? String(format: "%.1f", value) : "null" }

func runUnary(_ client: Client, _ options: Options) async throws {
    let payload = [UInt8](repeating: 7, count: options.payloadBytes)
    for level in options.concurrency {
        if options.warmup > 0 {
            _ = try await runCalls(client, payload: payload, total: options.warmup, concurrency: level)
        }
        let start = nanoseconds()
        var latencies = try await runCalls(client, payload: payload, total: options.calls, concurrency: level)
        let seconds = Double(nanoseconds() - start) / 1e9
        latencies.sort()
        emit([
            "peer": "\"grpc-swift-2\"", "mode": "\"unary\"", "concurrency": "\(level)", "calls": "\(options.calls)",
            "payload_bytes": "\(options.payloadBytes)", "p50_us": decimal(percentile(latencies, 0.50)),
            "p99_us": decimal(percentile(latencies, 0.99)), "calls_per_s": decimal(Double(options.calls) / seconds),
        ])
    }
}

func runThroughput(_ client: Client, bytes: Int, calls: Int) async throws {
    let payload = [UInt8](repeating: 1, count: bytes)
    try await echo(client, payload)  // warm-up: connection, window growth, allocator
    let start = nanoseconds()
    for _ in 0..<calls { try await echo(client, payload) }
    let seconds = Double(nanoseconds() - start) / 1e9
    emit([
        "peer": "\"grpc-swift-2\"", "mode": "\"throughput\"", "payload_bytes": "\(bytes)", "calls": "\(calls)",
        "mb_per_s": decimal(Double(2 * calls * bytes) / seconds / 1e6),  // request + response bytes
    ])
}

func runClient(host: String, port: Int, _ options: Options) async throws {
    // A literal IPv4 address needs no resolver; anything else goes through DNS.
    let isIPv4 = host.split(separator: ".").count == 4 && host.allSatisfy { $0.isNumber || $0 == "." }
    let target: any ResolvableTarget
    if isIPv4 {
        target = ResolvableTargets.IPv4(addresses: [.init(host: host, port: port)])
    } else {
        target = ResolvableTargets.DNS(host: host, port: port)
    }
    // One target address with the default pick-first policy: one subchannel, one HTTP/2 connection
    // that every concurrent call multiplexes over.
    var config = HTTP2ClientTransport.Posix.Config.defaults
    if !options.flushCoalescing { config.connection.flushCoalescing = nil }
    let transport = try HTTP2ClientTransport.Posix(target: target, transportSecurity: .plaintext, config: config)
    try await withGRPCClient(transport: transport) { client in
        if let bytes = options.throughputBytes {
            try await runThroughput(client, bytes: bytes, calls: options.throughputCalls)
        } else {
            try await runUnary(client, options)
        }
    }
}

func makeServer(port: Int, _ options: Options) -> GRPCServer<HTTP2ServerTransport.Posix> {
    var config = HTTP2ServerTransport.Posix.Config.defaults
    config.rpc.maxRequestPayloadSize = Echo.maxMessageBytes
    config.http2.targetWindowSize = options.serverWindowBytes
    if !options.flushCoalescing { config.connection.flushCoalescing = nil }
    let transport = HTTP2ServerTransport.Posix(
        address: .ipv4(host: "127.0.0.1", port: port), transportSecurity: .plaintext, config: config)
    return GRPCServer(transport: transport, services: [EchoService()])
}

// MARK: - Entry point

@main
struct GRPCEchoBench {
    static func main() async {
        let options: Options
        do {
            options = try Options.parse(Array(CommandLine.arguments.dropFirst()))
        } catch {
            let message = (error as? UsageError)?.message ?? "\(error)"
            FileHandle.standardError.write(Data("grpc-echo-bench: \(message)\n\(Options.usage)\n".utf8))
            exit(2)
        }
        do {
            if let target = options.target, options.clientOnly {
                try await runClient(host: target.host, port: target.port, options)
            } else {
                try await serveAndMaybeRunClient(options)
            }
        } catch {
            FileHandle.standardError.write(Data("grpc-echo-bench: \(error)\n".utf8))
            exit(1)
        }
    }

    /// `--server-only`: serve until killed. Otherwise: serve on a free port, run the client against it, stop.
    static func serveAndMaybeRunClient(_ options: Options) async throws {
        let server = makeServer(port: options.serverOnly ? options.port : 0, options)
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await server.serve() }
            // Resolves once the socket is bound; throws if binding failed.
            guard let port = try await server.listeningAddress?.ipv4?.port else {
                throw UsageError("server is not listening on an IPv4 address")
            }
            if options.serverOnly {
                print("listening on \(port)")
                fflush(nil)
                return  // the group keeps waiting on serve()
            }
            try await runClient(host: "127.0.0.1", port: port, options)
            server.beginGracefulShutdown()
        }
    }
}
