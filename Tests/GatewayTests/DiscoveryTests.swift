import ChorusAPI
import ChorusTestSupport
import ChorusWire
import Foundation
@testable import Gateway
import Logging
import NIOCore
import Testing

/// Replicas that come and go while the gateway runs: a `file://` list the test rewrites (the same path a DNS
/// answer takes, without touching the machine's resolver), and `dns:///localhost:PORT` through the system resolver.
@Suite(.serialized) struct DiscoveryTests {
    static func gateway(_ sources: [String]) throws -> ChorusGateway {
        var configuration = Gateway.Configuration(services: ["speech": sources], healthInterval: .milliseconds(50))
        configuration.discoveryInterval = .milliseconds(50)
        return try ChorusGateway(configuration: configuration, logger: Logger(label: "discovery-test"))
    }

    static func write(_ replicas: [StandIn], to path: String) throws {
        try ("# speech replicas\n" + replicas.map { $0.address + "\n" }.joined()).write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// Who served each of `count` Echo calls made at once.
    static func servedBy(_ gateway: ChorusGateway, count: Int) async throws -> [String] {
        try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<count { group.addTask { try await SpeechClient(gateway.router).echo(EchoRequest()).servedBy } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
    }

    @Test func aListThatGrowsSpreadsCallsAndOneThatShrinksLetsCallsInFlightFinish() async throws {
        let (a, b, c) = (try await StandIn.start("a"), try await StandIn.start("b"), try await StandIn.start("c"))
        defer { Task { await a.stop(); await b.stop(); await c.stop() } }
        let list = NSTemporaryDirectory() + "chorus-replicas-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: list) }
        try Self.write([a], to: list)
        let gateway = try Self.gateway(["file://" + list])
        let pool = try #require(gateway.pools["speech"])
        #expect(pool.replicas.isEmpty, "discovered replicas join at the first round, not before")
        let discovery = Task { await gateway.runDiscovery() }, checks = Task { await gateway.runHealthChecks() }
        defer { discovery.cancel(); checks.cancel() }

        #expect(await eventually { pool.replicas.count == 1 && pool.healthyCount == 1 })
        #expect(Set(try await Self.servedBy(gateway, count: 6)) == ["a"])

        // One to three: the new replicas join after a healthy probe and calls spread over all three.
        try Self.write([a, b, c], to: list)
        #expect(await eventually { pool.healthyCount == 3 })
        #expect(Set(try await Self.servedBy(gateway, count: 30)) == ["a", "b", "c"])

        // Three to one with calls held open on a and b: those finish, new calls go to c, nothing fails.
        for replica in [a, b, c] { replica.mode = .hold }
        let held = (0..<6).map { _ in Task { try await SpeechClient(gateway.router).echo(EchoRequest()).servedBy } }
        #expect(await eventually { a.held + b.held + c.held == 6 })
        let onAB = a.held + b.held
        c.mode = .serve
        try Self.write([c], to: list)
        #expect(await eventually { pool.replicas.map(\.address) == [c.address] })
        #expect(Set(try await Self.servedBy(gateway, count: 10)) == ["c"])
        a.mode = .serve
        b.mode = .serve
        var finished: [String] = []
        for call in held { finished.append(try await call.value) }
        #expect(onAB >= 2 && finished.filter { $0 != "c" }.count == onAB, "\(finished)")

        // An unreadable list keeps what it gave; an empty one empties the pool, and calls say no replica is healthy.
        try FileManager.default.removeItem(atPath: list)
        let round = gateway.discoveryRounds.withLockedValue { $0 }
        #expect(await eventually { gateway.discoveryRounds.withLockedValue { $0 } >= round + 2 })
        #expect(pool.replicas.map(\.address) == [c.address])
        try "".write(toFile: list, atomically: true, encoding: .utf8)
        #expect(await eventually { pool.replicas.isEmpty })
        await #expect(throws: WireStatus.self) { try await SpeechClient(gateway.router).echo(EchoRequest()) }
    }

    @Test func aNameResolvesToItsAddressesThroughTheSystemResolver() async throws {
        let a = try await StandIn.start("a")
        defer { Task { await a.stop() } }
        let gateway = try Self.gateway(["dns:///localhost:\(a.port)"])
        let pool = try #require(gateway.pools["speech"])
        let discovery = Task { await gateway.runDiscovery() }, checks = Task { await gateway.runHealthChecks() }
        defer { discovery.cancel(); checks.cancel() }
        // localhost is 127.0.0.1 (and ::1 where the hosts file says so, where nothing listens: never healthy).
        #expect(await eventually { pool.replicas.contains { $0.address == a.address } && pool.healthyCount == 1 })
        #expect(Set(try await Self.servedBy(gateway, count: 4)) == ["a"])
    }

    @Test func sourcesAreParsedAndRefusedByName() throws {
        #expect(try ReplicaSource("dns:///chorus-speech.default.svc:7103") == .dns(host: "chorus-speech.default.svc", port: 7103))
        #expect(try ReplicaSource("file:///etc/chorus/speech.txt") == .file("/etc/chorus/speech.txt"))
        #expect(try ReplicaSource("10.0.0.7:7103") == .fixed("10.0.0.7:7103"))
        for bad in ["dns:///chorus-speech", "dns:///:7103", "dns:///name:99999", "file://relative/path", "nohost"] {
            #expect(throws: WireStatus.self, "\(bad)") { try ReplicaSource(bad) }
        }
        #expect(throws: WireStatus.self) { try Self.gateway(["dns:///no-port"]) }
    }

    @Test func aListLongerThanTheLimitIsRefusedAndTheMembersKept() async throws {
        let list = NSTemporaryDirectory() + "chorus-replicas-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: list) }
        try (0...ReplicaSource.maxAddresses).map { "127.0.0.1:\(10_000 + $0)\n" }.joined().write(toFile: list, atomically: true, encoding: .utf8)
        await #expect(throws: WireStatus.self) { try await ReplicaSource.file(list).resolve() }
        try "127.0.0.1:notaport\n".write(toFile: list, atomically: true, encoding: .utf8)
        await #expect(throws: WireStatus.self) { try await ReplicaSource.file(list).resolve() }
        try "  [::1]:7103 \n# a comment\n\n127.0.0.1:7103\n127.0.0.1:7103\n".write(toFile: list, atomically: true, encoding: .utf8)
        #expect(try await ReplicaSource.file(list).resolve() == ["127.0.0.1:7103", "::1:7103"])
    }
}
