import ChorusAPI
import ChorusTestSupport
import ChorusWire
import Foundation
@testable import Gateway
import Logging
import Testing

/// Unary calls through the gateway's wire port relayed on the event loop their frame arrived on (relayOnLoop):
/// the same answers, choice, failover, cancellation, deadlines, keys and metrics as the async way, which
/// takes the first call on a loop (it connects the replica there) and every call the loop way declines.
@Suite struct LoopRelayTests {
    @Test func unaryCallsAfterTheFirstAreRelayedOnTheLoopByteForByte() async throws {
        let a = try await StandIn.start("a")
        let front = try await Front(a)
        defer { Task { await front.stop(); await a.stop() } }
        let sizes = [0, 1, 100, 65536, 1 << 20]
        for round in 0..<4 {
            for size in sizes {
                let payload = Data((0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ round) })
                let answer = try await front.client.echo(EchoRequest(payload: payload))
                #expect(answer.payload == payload && answer.servedBy == "a", "round \(round), \(size) B")
            }
        }
        let calls = 4 * sizes.count
        #expect(front.relayedOnLoop == calls - 1, "only the first call, which connects the replica on its loop, takes a task")
        #expect(front.echoCalls("OK") == calls, "each call counted once:\n\(front.metrics)")
        let pool = try #require(front.gateway.pools["speech"])
        #expect(pool.admittedCalls == 0 && pool.replicas[0].inFlight == 0)
    }

    @Test func aCallARefusingReplicaDidNotStartGoesToTheNextOnTheLoop() async throws {
        let (a, b) = (try await StandIn.start("a"), try await StandIn.start("b"))
        let front = try await Front(a, b)
        defer { Task { await front.stop(); await a.stop(); await b.stop() } }
        try await front.warmUp()
        a.mode = .refuse(.resourceExhausted)
        let before = front.relayedOnLoop
        for _ in 0..<8 {
            #expect(try await front.client.echo(EchoRequest()).servedBy == "b")
        }
        #expect(front.relayedOnLoop == before + 8)
        let replicaA = try #require(front.gateway.pools["speech"]?.replicas.first { $0.address == a.address })
        #expect(replicaA.isHealthy, "a full queue is no reason to eject")
        b.mode = .refuse(.unavailable)
        do {
            _ = try await front.client.echo(EchoRequest())
            Issue.record("every replica refuses, yet the call was served")
        } catch let status as WireStatus {
            #expect([.resourceExhausted, .unavailable].contains(status.code) && status.message.hasSuffix("refuses"), "\(status)")
        }
        #expect(front.relayedOnLoop == before + 9)
        let pool = try #require(front.gateway.pools["speech"])
        #expect(pool.admittedCalls == 0 && pool.replicas.allSatisfy { $0.inFlight == 0 }, "places are given back")
    }

    @Test func aCancelledCallStopsTheReplicasWorkAndGivesItsPlacesBack() async throws {
        let a = try await StandIn.start("a")
        let front = try await Front(a)
        defer { Task { await front.stop(); await a.stop() } }
        try await front.warmUp()
        let before = front.relayedOnLoop
        a.mode = .hold
        let call = Task { try await front.client.echo(EchoRequest()) }
        #expect(await eventually { a.held == 1 })
        #expect(front.relayedOnLoop == before + 1)
        call.cancel()
        #expect(await eventually { a.held == 0 }, "the replica's handler is cancelled when the caller cancels")
        let pool = try #require(front.gateway.pools["speech"])
        #expect(await eventually { pool.admittedCalls == 0 && pool.replicas[0].inFlight == 0 })
        #expect(await eventually { front.echoCalls("CANCELLED") == 1 }, "\(front.metrics)")
    }

    @Test func aPassedDeadlineEndsTheCallOnBothSides() async throws {
        let a = try await StandIn.start("a")
        let front = try await Front(a)
        defer { Task { await front.stop(); await a.stop() } }
        try await front.warmUp()
        let before = front.relayedOnLoop
        a.mode = .hold
        do {
            _ = try await front.client.echo(EchoRequest(), options: CallOptions(timeout: .milliseconds(300)))
            Issue.record("a held call answered before its deadline")
        } catch let status as WireStatus {
            #expect(status.code == .deadlineExceeded, "\(status)")
        }
        #expect(front.relayedOnLoop == before + 1)
        #expect(await eventually { a.held == 0 }, "the replica hears the deadline too")
        let pool = try #require(front.gateway.pools["speech"])
        #expect(await eventually { pool.admittedCalls == 0 && pool.replicas[0].inFlight == 0 })
        // The caller's CANCEL at its deadline and the gateway's own timer race: the call ends by whichever comes first.
        #expect(await eventually { front.echoCalls("DEADLINE_EXCEEDED") + front.echoCalls("CANCELLED") == 1 }, "\(front.metrics)")
    }

    @Test func withAKeyOnlyCallsCarryingItAreRelayed() async throws {
        let a = try await StandIn.start("a")
        let front = try await Front(a, key: APIKey("sesame"))
        defer { Task { await front.stop(); await a.stop() } }
        let keyed = SpeechClient(WireClient(host: "127.0.0.1", port: front.port, configuration: .init(metadata: APIKey("sesame")!.metadata)))
        for _ in 0..<3 {
            #expect(try await keyed.echo(EchoRequest()).servedBy == "a")
        }
        let before = front.relayedOnLoop
        #expect(before == 2)
        for metadata in [[:], APIKey("wrong")!.metadata] {
            let stranger = SpeechClient(WireClient(host: "127.0.0.1", port: front.port, configuration: .init(metadata: metadata)))
            for _ in 0..<2 {
                do {
                    _ = try await stranger.echo(EchoRequest())
                    Issue.record("a call without the key was relayed")
                } catch let status as WireStatus {
                    #expect(status.code == .unauthenticated, "\(status)")
                }
            }
        }
        #expect(front.relayedOnLoop == before)
        #expect(front.echoCalls("OK") == 3)
    }
}

/// A gateway's wire port in this process in front of stand-in replicas, and a client of it (one connection).
private struct Front {
    let gateway: ChorusGateway
    let server: WireServer
    let port: Int
    let client: SpeechClient

    init(_ replicas: StandIn..., key: APIKey? = nil) async throws {
        let gateway = try ChorusGateway(configuration: .init(services: ["speech": replicas.map(\.address)]), logger: ServiceRouterTests.logger)
        self.gateway = gateway
        let (routes, fallback, loopRelay) = key.map { gateway.requiringKey($0) } ?? (gateway.routes, gateway.forward, gateway.relayOnLoop)
        server = WireServer(configuration: .init(port: 0), routes: routes, fallback: fallback, loopRelay: loopRelay,
                            logger: ServiceRouterTests.logger)
        port = try await server.start()
        client = SpeechClient(WireClient(host: "127.0.0.1", port: port))
    }

    var relayedOnLoop: Int { gateway.router.relayedOnLoop.load(ordering: .relaxed) }
    var metrics: String { gateway.metrics.render(pools: gateway.pools) }

    /// Echo calls the metrics counted with `code`.
    func echoCalls(_ code: String) -> Int {
        let prefix = "chorus_gateway_calls_total{method=\"\(Speech.Method.echo.path)\",code=\"\(code)\"} "
        return metrics.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Int($0.dropFirst(prefix.count)) } ?? 0
    }

    /// Calls until four in a row were relayed on the loop: by then every replica has a connection on the loop of
    /// the client's connection (the choice rotates among idle replicas).
    func warmUp() async throws {
        var inARow = 0
        for _ in 0..<40 where inARow < 4 {
            let before = relayedOnLoop
            _ = try await client.echo(EchoRequest())
            inARow = relayedOnLoop == before + 1 ? inARow + 1 : 0
        }
        try #require(inARow == 4, "calls kept taking the async way")
    }

    func stop() async {
        await server.close()
    }
}
