import ArgumentParser
import ChorusAPI
import ChorusServiceKit
import ChorusWire
import Foundation
import Gateway
import Logging
import NIOCore
import NIOPosix
import SpeechService

/// `chorus bench wire`: unary Echo round trips over one connection, direct and through the gateway, and
/// 1 MiB / 16 MiB Echo throughput on both paths; the same calls through grpc-swift-2 and the same bytes over
/// a raw loopback TCP socket, in alternating rounds of one run, with ratios of the medians. The gateway hop is
/// set beside two floors measured in the same rounds: a NIO byte relay and a raw blocking-socket relay.
struct BenchWireCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wire",
        abstract: "Wire latency and throughput against grpc-swift-2 and raw loopback TCP, measured in the same run.",
        discussion: """
            Each round runs Chorus (direct, then through a gateway in this process), the raw TCP echo and the
            grpc-swift-2 peer in turn; the table gives each figure's median over the rounds. The grpc-swift-2
            peer is a benchmark-only package under Benchmarks/ (so the main build does not pay for it). Build
            it once:
              swift build -c release --package-path Benchmarks --scratch-path Benchmarks/.build
            Run this command from a release build (swift build -c release) for meaningful numbers.
            """)

    @Option(help: "Calls per concurrency level and round.")
    var calls = 20_000

    @Option(help: "Concurrent callers, comma-separated; all share one connection.")
    var concurrency = "1,16,64"

    @Option(help: "Payload bytes of the small Echo.")
    var payloadBytes = 16

    @Option(help: "Payloads of the throughput rows, MiB, comma-separated.")
    var throughputMib = "1,16"

    @Option(help: "Calls per throughput row and round.")
    var throughputCalls = 20

    @Option(help: "Rounds; Chorus, raw TCP and grpc-swift-2 take turns in each.")
    var rounds = 3

    @Option(help: "Event loops of this process, which the client, the gateway and the service share (default: one per core). 1 runs every hop on one thread: what the gateway costs without thread hand-offs.")
    var eventLoops: Int?

    @Option(help: "The grpc-swift-2 peer binary.")
    var grpcPeer = "Benchmarks/.build/release/grpc-echo-bench"

    func run() async throws {
        quietBenchLogging()
        if let eventLoops {
            guard (1...64).contains(eventLoops) else { throw ValidationError("--event-loops takes 1 ... 64") }
            NIOSingletons.groupLoopCountSuggestion = eventLoops
        }
        let levels = concurrency.split(separator: ",").compactMap { Int($0) }
        guard !levels.isEmpty, levels.allSatisfy({ $0 > 0 && $0 <= 4096 }) else { throw ValidationError("--concurrency takes numbers from 1 to 4096, e.g. 1,16,64") }
        let sizes = throughputMib.split(separator: ",").compactMap { Int($0) }
        guard sizes.allSatisfy({ $0 > 0 && $0 < 64 }) else { throw ValidationError("--throughput-mib takes sizes from 1 to 63 (MiB), under the 64 MiB frame limit") }
        guard (1...100).contains(rounds), calls > 0, throughputCalls > 0 else { throw ValidationError("--rounds takes 1 ... 100; --calls and --throughput-calls take positive numbers") }

        // A speech service and a gateway in front of it, both in this process on loopback.
        let logger = Logger(label: "bench")
        let runtime = ServiceRuntime(options: .init(service: "speech"), logger: logger)
        let service = WireServer(configuration: .init(port: 0), routes: try SpeechServer(runtime: runtime).routes, logger: logger)
        let servicePort = try await service.start()
        let gateway = try Gateway(configuration: .init(services: ["speech": ["127.0.0.1:\(servicePort)"]]), logger: logger)
        let gatewayServer = WireServer(configuration: .init(port: 0), routes: gateway.routes, fallback: gateway.forward, loopRelay: gateway.relayOnLoop, logger: logger)
        let gatewayPort = try await gatewayServer.start()
        let byteRelay = try await NIOByteRelay.start(upstreamPort: servicePort)
        let hasPeer = FileManager.default.isExecutableFile(atPath: grpcPeer)

        print("chorus bench wire: \(cpuName()); \(NIOSingletons.groupLoopCountSuggestion) event loops")
        print("\(rounds) rounds, each: Chorus direct and through the gateway, raw loopback TCP, grpc-swift-2; medians of the rounds")
        var samples = Samples()
        for round in 1...rounds {
            print("round \(round)/\(rounds) ...")
            for (target, port) in [("direct", servicePort), ("gateway", gatewayPort)] {
                let client = SpeechClient(WireClient(host: "127.0.0.1", port: port))
                for level in levels {
                    samples.unary["\(target) \(level)", default: []].append(try await measureUnary(client, concurrency: level))
                }
                for mib in sizes {
                    samples.throughput["\(target) \(mib)", default: []].append(try await measureThroughput(client, mib: mib))
                }
                (client.channel as? WireClient)?.close()
            }
            if levels.contains(1) {
                // The hop's two floors: a NIO byte relay and a raw blocking-socket relay.
                let client = SpeechClient(WireClient(host: "127.0.0.1", port: byteRelay.port))
                samples.unary["relay 1", default: []].append(try await measureUnary(client, concurrency: 1))
                (client.channel as? WireClient)?.close()
                samples.rawHop.append(try RawLoopbackEcho.relayHop(bytes: max(payloadBytes, 1), calls: calls))
            }
            for mib in sizes {
                samples.throughput["raw \(mib)", default: []].append(try RawLoopbackEcho.measure(bytes: mib << 20, calls: throughputCalls))
            }
            if hasPeer { try runPeer(levels: levels, sizes: sizes, into: &samples) }
        }
        try? await byteRelay.channel.close()
        await gatewayServer.close()
        await service.close()
        if !hasPeer {
            print("(no grpc-swift-2 peer at \(grpcPeer); build it with: swift build -c release --package-path Benchmarks --scratch-path Benchmarks/.build)")
        }
        printTables(samples, levels: levels, sizes: sizes)
    }

    struct Result {
        var p50: Double  // microseconds
        var p99: Double
        var callsPerSecond: Double
        /// Heap allocations per call in this process (client, gateway and service), when counted.
        var allocations: Double?
    }

    /// `chorus_malloc_count` of scripts/bench/harness/malloc_count.c, when that library is preloaded.
    static let mallocCount: (@convention(c) () -> UInt)? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "chorus_malloc_count")
        .map { unsafeBitCast($0, to: (@convention(c) () -> UInt).self) }

    /// Every round's figures, by row: "direct 16" (path and concurrency or MiB), "grpc 16", "raw 16".
    struct Samples {
        var unary: [String: [Result]] = [:]
        var throughput: [String: [Double]] = [:]
        /// p50 µs of a raw loopback echo, direct and through a raw relay thread (the hop's floor).
        var rawHop: [(direct: Double, relayed: Double)] = []
    }

    private func measureUnary(_ client: SpeechClient, concurrency: Int) async throws -> Result {
        let request = EchoRequest(payload: Data(repeating: 7, count: payloadBytes))
        _ = try await runCalls(client, request: request, total: min(1000, calls), concurrency: concurrency)  // warm-up
        let allocationsBefore = Self.mallocCount?()
        let start = DispatchTime.now().uptimeNanoseconds
        var latencies = try await runCalls(client, request: request, total: calls, concurrency: concurrency)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let allocations = allocationsBefore.map { Double(Self.mallocCount!() - $0) / Double(calls) }
        latencies.sort()
        return Result(p50: percentile(latencies, 0.50), p99: percentile(latencies, 0.99), callsPerSecond: Double(calls) / seconds,
                      allocations: allocations)
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

    /// MB/s of `throughputCalls` Echo calls of `mib` MiB, counting the bytes both ways.
    private func measureThroughput(_ client: SpeechClient, mib: Int) async throws -> Double {
        let request = EchoRequest(payload: Data(repeating: 1, count: mib << 20))
        _ = try await client.echo(request)
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<throughputCalls {
            let answer = try await client.echo(request)
            guard answer.payload.count == request.payload.count else { throw ValidationError("Echo answered \(answer.payload.count) of \(request.payload.count) bytes") }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return Double(2 * throughputCalls * (mib << 20)) / seconds / 1e6
    }

    private func percentile(_ sorted: [UInt64], _ p: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        return Double(sorted[Int(p * Double(sorted.count - 1))]) / 1000
    }

    /// One round of the grpc-swift-2 peer: the unary levels, then each throughput size.
    private func runPeer(levels: [Int], sizes: [Int], into samples: inout Samples) throws {
        var runs = [["--concurrency", levels.map(String.init).joined(separator: ","), "--calls", "\(calls)", "--payload-bytes", "\(payloadBytes)", "--warmup", "1000"]]
        runs += sizes.map { ["--throughput-bytes", "\($0 << 20)", "--throughput-calls", "\(throughputCalls)"] }
        func number(_ value: Any?) -> Double { (value as? Double) ?? Double(value as? Int ?? 0) }
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
                if object["mode"] as? String == "throughput" {
                    let mib = Int(number(object["payload_bytes"])) >> 20
                    samples.throughput["grpc \(mib)", default: []].append(number(object["mb_per_s"]))
                } else {
                    let level = object["concurrency"] as? Int ?? 0
                    samples.unary["grpc \(level)", default: []].append(
                        Result(p50: number(object["p50_us"]), p99: number(object["p99_us"]), callsPerSecond: number(object["calls_per_s"])))
                }
            }
        }
    }

    private func printTables(_ samples: Samples, levels: [Int], sizes: [Int]) {
        func median(_ values: [Double]) -> Double? {
            guard !values.isEmpty else { return nil }
            let sorted = values.sorted()
            return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        }
        func unary(_ key: String) -> Result? {
            guard let results = samples.unary[key], let p50 = median(results.map(\.p50)), let p99 = median(results.map(\.p99)),
                  let rate = median(results.map(\.callsPerSecond)) else { return nil }
            return Result(p50: p50, p99: p99, callsPerSecond: rate, allocations: median(results.compactMap(\.allocations)))
        }
        func cell(_ value: Double?, _ width: Int = 9, _ digits: Int = 0) -> String {
            guard let value else { return String(repeating: " ", count: max(0, width - 1)) + "-" }
            return String(format: "%\(width).\(digits)f", value)
        }
        print("")
        print("unary Echo of \(payloadBytes) B, \(calls) calls per level and round, one connection")
        print("path     conc |  chorus p50 µs    p99 µs    calls/s | grpc-swift-2 p50 µs  p99 µs   calls/s | calls/s ratio  p50 ratio")
        for path in ["direct", "gateway"] {
            for level in levels {
                guard let chorus = unary("\(path) \(level)") else { continue }
                let grpc = unary("grpc \(level)")
                var line = "\(path.padding(toLength: 8, withPad: " ", startingAt: 0)) \(String(format: "%4d", level)) | \(cell(chorus.p50, 14, 1)) \(cell(chorus.p99, 9, 1)) \(cell(chorus.callsPerSecond, 10))"
                line += " | \(cell(grpc?.p50, 19, 1)) \(cell(grpc?.p99, 7, 1)) \(cell(grpc?.callsPerSecond, 9)) | \(cell(grpc.map { chorus.callsPerSecond / $0.callsPerSecond }, 12, 2))x \(cell(grpc.map { $0.p50 / chorus.p50 }, 9, 2))x"
                print(line)
            }
        }
        for level in levels {
            if let direct = unary("direct \(level)"), let hop = unary("gateway \(level)") {
                var line = "gateway hop at concurrency \(level): +\(cell(hop.p50 - direct.p50, 1, 1)) µs p50, +\(cell(hop.p99 - direct.p99, 1, 1)) µs p99"
                if let through = hop.allocations, let alone = direct.allocations {
                    line += "; allocations per call (whole process): \(cell(alone, 1, 1)) direct, \(cell(through, 1, 1)) through the gateway (+\(cell(through - alone, 1, 1)))"
                }
                print(line)
            }
        }
        if let direct = unary("direct 1"), let relayed = unary("relay 1") {
            print("NIO byte relay (channel handlers on one event loop, no frames, no tasks): +\(cell(relayed.p50 - direct.p50, 1, 1)) µs p50 at concurrency 1")
        }
        if let direct = median(samples.rawHop.map(\.direct)), let relayed = median(samples.rawHop.map(\.relayed)) {
            print("raw TCP relay (blocking sockets, no framing; the hop's floor here): +\(cell(relayed - direct, 1, 1)) µs p50 (\(cell(direct, 1, 1)) µs direct, \(cell(relayed, 1, 1)) µs relayed)")
        }
        print("")
        print("Echo throughput, MB/s counting both directions, \(throughputCalls) calls per row and round")
        print("size    path    |  chorus MB/s | grpc-swift-2 direct MB/s | raw TCP MB/s | vs grpc-swift-2 | vs raw TCP")
        for mib in sizes {
            let grpc = median(samples.throughput["grpc \(mib)"] ?? []), raw = median(samples.throughput["raw \(mib)"] ?? [])
            for path in ["direct", "gateway"] {
                guard let chorus = median(samples.throughput["\(path) \(mib)"] ?? []) else { continue }
                print("\(String(format: "%2d", mib)) MiB  \(path.padding(toLength: 7, withPad: " ", startingAt: 0)) | \(cell(chorus, 12)) | \(cell(grpc, 24)) | \(cell(raw, 12)) | \(cell(grpc.map { chorus / $0 }, 14, 2))x | \(cell(raw.map { chorus / $0 }, 9, 2))x")
            }
        }
        print("(p50 ratio = grpc p50 / chorus p50: above 1 means chorus answers faster)")
    }
}

extension BenchWireCommand: HasExamples {
    static let examples = [
        "chorus bench wire --calls 20000",
        "chorus bench wire --rounds 5 --throughput-mib 1,16,48 --concurrency 1",
    ]
}
