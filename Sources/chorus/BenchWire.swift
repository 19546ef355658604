import ArgumentParser
import ChorusAPI
import ChorusServiceKit
import ChorusWire
import Foundation
import Gateway
import Logging
import NIOCore
import SpeechService

/// `chorus bench wire`: unary Echo round trips over one connection, direct and through the gateway,
/// and 16 MiB payload throughput; the same calls through grpc-swift-2 in the same run, with ratios.
struct BenchWireCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wire",
        abstract: "Wire latency and throughput against grpc-swift-2, measured in the same run.",
        discussion: """
            The grpc-swift-2 peer is a benchmark-only package under Benchmarks/ (so the main build does not
            pay for it). Build it once:
              swift build -c release --package-path Benchmarks --scratch-path Benchmarks/.build
            Run this command from a release build (swift build -c release) for meaningful numbers.
            """)

    @Option(help: "Calls per concurrency level.")
    var calls = 20_000

    @Option(help: "Concurrent callers, comma-separated; all share one connection.")
    var concurrency = "1,16,64"

    @Option(help: "Payload bytes of the small Echo.")
    var payloadBytes = 16

    @Option(help: "Payload of the throughput test, MiB.")
    var throughputMib = 16

    @Option(help: "Calls in the throughput test.")
    var throughputCalls = 20

    @Option(help: "The grpc-swift-2 peer binary.")
    var grpcPeer = "Benchmarks/.build/release/grpc-echo-bench"

    func run() async throws {
        quietBenchLogging()
        let levels = concurrency.split(separator: ",").compactMap { Int($0) }
        guard !levels.isEmpty, levels.allSatisfy({ $0 > 0 }) else { throw ValidationError("--concurrency takes positive numbers, e.g. 1,16,64") }

        // A speech service and a gateway in front of it, both in this process on loopback.
        let logger = Logger(label: "bench")
        let runtime = ServiceRuntime(options: .init(service: "speech"), logger: logger)
        let service = WireServer(configuration: .init(port: 0), routes: try SpeechServer(runtime: runtime).routes, logger: logger)
        let servicePort = try await service.start()
        let gateway = try Gateway(configuration: .init(services: ["speech": ["127.0.0.1:\(servicePort)"]]), logger: logger)
        let gatewayServer = WireServer(configuration: .init(port: 0), routes: gateway.routes, fallback: gateway.forward, logger: logger)
        let gatewayPort = try await gatewayServer.start()

        print("chorus bench wire: \(calls) unary Echo calls of \(payloadBytes) B per level, one connection; \(ProcessInfo.processInfo.activeProcessorCount) cores")
        var rows: [Row] = []
        for (target, port) in [("direct", servicePort), ("gateway", gatewayPort)] {
            let client = SpeechClient(WireClient(host: "127.0.0.1", port: port))
            for level in levels {
                let result = try await measureUnary(client, concurrency: level)
                rows.append(Row(mode: target, concurrency: level, chorus: result))
            }
            (client.channel as? WireClient)?.close()
        }
        let throughputClient = SpeechClient(WireClient(host: "127.0.0.1", port: servicePort))
        let throughput = try await measureThroughput(throughputClient)
        (throughputClient.channel as? WireClient)?.close()
        await gatewayServer.close()
        await service.close()

        let peer = try runPeer(levels: levels)
        printTable(rows, peer: peer, throughput: throughput)
    }

    struct Result {
        var p50: Double  // microseconds
        var p99: Double
        var callsPerSecond: Double
    }

    struct Row {
        var mode: String
        var concurrency: Int
        var chorus: Result
    }

    private func measureUnary(_ client: SpeechClient, concurrency: Int) async throws -> Result {
        let request = EchoRequest(payload: Data(repeating: 7, count: payloadBytes))
        _ = try await runCalls(client, request: request, total: min(1000, calls), concurrency: concurrency)  // warm-up
        let start = DispatchTime.now().uptimeNanoseconds
        var latencies = try await runCalls(client, request: request, total: calls, concurrency: concurrency)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        latencies.sort()
        return Result(p50: percentile(latencies, 0.50), p99: percentile(latencies, 0.99), callsPerSecond: Double(calls) / seconds)
    }

    /// `total` calls spread over `concurrency` tasks, each calling in a loop; returns each call's latency in ns.
    private func runCalls(_ client: SpeechClient, request: EchoRequest, total: Int, concurrency: Int) async throws -> [UInt64] {
        try await withThrowingTaskGroup(of: [UInt64].self) { group in
            for worker in 0..<concurrency {
                let count = total / concurrency + (worker < total % concurrency ? 1 : 0)
                group.addTask {
                    var latencies: [UInt64] = []
                    latencies.reserveCapacity(count)
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
    }

    private func measureThroughput(_ client: SpeechClient) async throws -> Double {
        let request = EchoRequest(payload: Data(repeating: 1, count: throughputMib << 20))
        _ = try await client.echo(request)
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<throughputCalls {
            _ = try await client.echo(request)
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return Double(2 * throughputCalls * (throughputMib << 20)) / seconds / 1e6
    }

    private func percentile(_ sorted: [UInt64], _ p: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        return Double(sorted[Int(p * Double(sorted.count - 1))]) / 1000
    }

    /// Runs the grpc-swift-2 peer; nil (with a note) when it is not built.
    private func runPeer(levels: [Int]) throws -> [String: [String: Any]]? {
        guard FileManager.default.isExecutableFile(atPath: grpcPeer) else {
            print("\n(no grpc-swift-2 peer at \(grpcPeer); build it with: swift build -c release --package-path Benchmarks --scratch-path Benchmarks/.build)")
            return nil
        }
        var results: [String: [String: Any]] = [:]
        let runs = [
            ["--concurrency", levels.map(String.init).joined(separator: ","), "--calls", "\(calls)", "--payload-bytes", "\(payloadBytes)", "--warmup", "1000"],
            ["--throughput-bytes", "\(throughputMib << 20)", "--throughput-calls", "\(throughputCalls)"],
        ]
        for arguments in runs {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: grpcPeer)
            process.arguments = arguments
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            let output = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            for line in String(decoding: output, as: UTF8.self).split(separator: "\n") {
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { continue }
                let mode = object["mode"] as? String ?? ""
                let key = mode == "throughput" ? "throughput" : "unary-\(object["concurrency"] as? Int ?? 0)"
                results[key] = object
            }
        }
        return results
    }

    private func printTable(_ rows: [Row], peer: [String: [String: Any]]?, throughput: Double) {
        func number(_ value: Any?) -> Double { (value as? Double) ?? Double(value as? Int ?? 0) }
        func cell(_ value: Double, _ width: Int = 9, _ digits: Int = 0) -> String {
            String(format: "%\(width).\(digits)f", value)
        }
        print("")
        print("path     conc |  chorus p50 µs    p99 µs    calls/s | grpc-swift-2 p50 µs  p99 µs   calls/s | calls/s ratio  p50 ratio")
        for row in rows {
            var line = "\(row.mode.padding(toLength: 8, withPad: " ", startingAt: 0)) \(String(format: "%4d", row.concurrency)) | \(cell(row.chorus.p50, 14, 1)) \(cell(row.chorus.p99, 9, 1)) \(cell(row.chorus.callsPerSecond, 10))"
            if let grpc = peer?["unary-\(row.concurrency)"] {
                let p50 = number(grpc["p50_us"]), p99 = number(grpc["p99_us"]), rate = number(grpc["calls_per_s"])
                line += " | \(cell(p50, 19, 1)) \(cell(p99, 7, 1)) \(cell(rate, 9)) | \(cell(row.chorus.callsPerSecond / rate, 12, 2))x \(cell(p50 / row.chorus.p50, 9, 2))x"
            }
            print(line)
        }
        for level in Set(rows.map(\.concurrency)).sorted() {
            if let direct = rows.first(where: { $0.mode == "direct" && $0.concurrency == level }),
               let hop = rows.first(where: { $0.mode == "gateway" && $0.concurrency == level }) {
                print("gateway hop at concurrency \(level): +\(cell(hop.chorus.p50 - direct.chorus.p50, 1, 1)) µs p50, +\(cell(hop.chorus.p99 - direct.chorus.p99, 1, 1)) µs p99")
            }
        }
        var line = "\(throughputMib) MiB Echo throughput: chorus \(cell(throughput, 1)) MB/s"
        if let grpc = peer?["throughput"] {
            let rate = number(grpc["mb_per_s"])
            line += ", grpc-swift-2 \(cell(rate, 1)) MB/s, ratio \(cell(throughput / rate, 1, 2))x"
        }
        print(line)
        print("(p50 ratio = grpc p50 / chorus p50: above 1 means chorus answers faster)")
    }
}

extension BenchWireCommand: HasExamples {
    static let examples = [
        "chorus bench wire --calls 20000",
    ]
}
