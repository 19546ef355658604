// grpc-swift-2 peer of `chorus bench wire`: an Echo service over HTTP/2 on loopback, a client with one
// connection, the same call pattern as Chorus's benchmark. Prints one JSON object per line.
//
//   grpc-echo-bench --concurrency 1,16,64 --calls 20000 --payload-bytes 16 --warmup 1000
//   grpc-echo-bench --throughput-bytes 16777216 --throughput-calls 20
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2

/// Messages are raw bytes: no protobuf code generation, and no serialization cost on either side
/// beyond what the transport itself does.
struct RawBytes: MessageSerializer, MessageDeserializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
    func deserialize<Bytes: GRPCContiguousBytes>(_ bytes: Bytes) throws -> [UInt8] {
        bytes.withUnsafeBytes { Array($0) }
    }
}

let echoMethod = MethodDescriptor(fullyQualifiedService: "bench.Echo", method: "Echo")
let maxMessage = 64 << 20

struct EchoService: RegistrableRPCService {
    func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        router.registerHandler(forMethod: echoMethod, deserializer: RawBytes(), serializer: RawBytes()) { request, _ in
            let single = try await ServerRequest(stream: request)
            return StreamingServerResponse(single: ServerResponse(message: single.message))
        }
    }
}

func option(_ name: String) -> String? {
    let args = CommandLine.arguments
    guard let index = args.firstIndex(of: name), index + 1 < args.count else { return nil }
    return args[index + 1]
}

func percentile(_ sorted: [UInt64], _ p: Double) -> Double {
    sorted.isEmpty ? 0 : Double(sorted[Int(p * Double(sorted.count - 1))]) / 1000
}

func printJSON(_ object: [String: Any]) {
    let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    FileHandle.standardOutput.write(data + Data("\n".utf8))  // unbuffered: the parent reads lines as they come
}

func echo(_ client: GRPCClient<HTTP2ClientTransport.Posix>, _ payload: [UInt8]) async throws -> [UInt8] {
    var options = CallOptions.defaults
    options.maxRequestMessageBytes = maxMessage
    options.maxResponseMessageBytes = maxMessage
    return try await client.unary(request: ClientRequest(message: payload), descriptor: echoMethod,
                                  serializer: RawBytes(), deserializer: RawBytes(), options: options) { try $0.message }
}

/// `total` calls over `concurrency` tasks, each calling in a loop; latencies in ns.
func runCalls(_ client: GRPCClient<HTTP2ClientTransport.Posix>, payload: [UInt8], total: Int, concurrency: Int) async throws -> [UInt64] {
    try await withThrowingTaskGroup(of: [UInt64].self) { group in
        for worker in 0..<concurrency {
            let count = total / concurrency + (worker < total % concurrency ? 1 : 0)
            group.addTask {
                var latencies: [UInt64] = []
                latencies.reserveCapacity(count)
                for _ in 0..<count {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    _ = try await echo(client, payload)
                    latencies.append(DispatchTime.now().uptimeNanoseconds - t0)
                }
                return latencies
            }
        }
        return try await group.reduce(into: []) { $0 += $1 }
    }
}

func benchmark(_ client: GRPCClient<HTTP2ClientTransport.Posix>) async throws {
    if let bytes = option("--throughput-bytes").flatMap(Int.init) {
        let calls = option("--throughput-calls").flatMap(Int.init) ?? 20
        let payload = [UInt8](repeating: 1, count: bytes)
        _ = try await echo(client, payload)
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<calls { _ = try await echo(client, payload) }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        printJSON(["peer": "grpc-swift-2", "mode": "throughput", "payload_bytes": bytes, "calls": calls,
                   "mb_per_s": Double(2 * calls * bytes) / seconds / 1e6])
        return
    }
    let levels = (option("--concurrency") ?? "1,16,64").split(separator: ",").compactMap { Int($0) }
    let calls = option("--calls").flatMap(Int.init) ?? 20_000
    let warmup = option("--warmup").flatMap(Int.init) ?? 1000
    let payload = [UInt8](repeating: 7, count: option("--payload-bytes").flatMap(Int.init) ?? 16)
    for level in levels {
        _ = try await runCalls(client, payload: payload, total: warmup, concurrency: level)
        let start = DispatchTime.now().uptimeNanoseconds
        var latencies = try await runCalls(client, payload: payload, total: calls, concurrency: level)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        latencies.sort()
        printJSON(["peer": "grpc-swift-2", "mode": "unary", "concurrency": level, "calls": calls, "payload_bytes": payload.count,
                   "p50_us": percentile(latencies, 0.5), "p99_us": percentile(latencies, 0.99), "calls_per_s": Double(calls) / seconds])
    }
}

var serverConfig = HTTP2ServerTransport.Posix.Config.defaults
serverConfig.rpc.maxRequestPayloadSize = maxMessage
let server = GRPCServer(
    transport: .http2NIOPosix(address: .ipv4(host: "127.0.0.1", port: 0), transportSecurity: .plaintext, config: serverConfig),
    services: [EchoService()])

try await withThrowingDiscardingTaskGroup { group in
    group.addTask { try await server.serve() }
    guard let address = try await server.listeningAddress?.ipv4 else { fatalError("server did not start") }
    try await withGRPCClient(transport: .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: address.port), transportSecurity: .plaintext)) { client in
        try await benchmark(client)
    }
    server.beginGracefulShutdown()
}
