import ChorusAPI
import ChorusTestSupport
import ChorusWire
import Foundation
@testable import Gateway
import Logging
import NIOConcurrencyHelpers
import Testing

/// The router without processes: stand-in Speech replicas on loopback in this process, whose
/// behaviour each test sets (serve, refuse, hold calls open, report not serving).
@Suite struct ServiceRouterTests {
    @Test func aSecondCallGoesToTheIdleReplica() async throws {
        let (a, b) = (try await StandIn.start("a"), try await StandIn.start("b"))
        defer { Task { await a.stop(); await b.stop() } }
        a.mode = .hold
        b.mode = .hold
        let router = try Self.gateway(a, b).router
        let first = Task { try await SpeechClient(router).echo(EchoRequest()) }
        #expect(await eventually { a.held + b.held == 1 })
        let busy = a.held == 1 ? a : b, idle = a.held == 1 ? b : a
        let second = Task { try await SpeechClient(router).echo(EchoRequest()) }
        #expect(await eventually { idle.held == 1 }, "the second call should go to the replica with nothing in flight")
        #expect(busy.held == 1)
        a.mode = .serve
        b.mode = .serve
        let one = try await first.value.servedBy, other = try await second.value.servedBy
        #expect(Set([one, other]) == ["a", "b"])
    }

    @Test func anUnreachableReplicaIsEjectedAndItsCallsServedByTheOther() async throws {
        let (a, b) = (try await StandIn.start("a"), try await StandIn.start("b"))
        defer { Task { await a.stop() } }
        await b.stop()
        let gateway = try Self.gateway(a, b)
        for _ in 0..<6 {
            #expect(try await SpeechClient(gateway.router).echo(EchoRequest()).servedBy == "a")
        }
        let replicaB = try #require(gateway.pools["speech"]?.replicas.first { $0.address == b.address })
        #expect(!replicaB.isHealthy)
        #expect(replicaB.lastError.contains("cannot connect"), "\(replicaB.lastError)")
    }

    /// A request too large for a frame is refused as the request's fault, and the replica stays in service: an HTTP
    /// form over 64 MiB once took the only speech replica out ("no healthy speech replica") for every user.
    @Test func aRequestOverTheFrameLimitIsRefusedWithoutEjectingTheReplica() async throws {
        let a = try await StandIn.start("a")
        defer { Task { await a.stop() } }
        let gateway = try Self.gateway(a)
        let huge = EchoRequest(payload: Data(count: WireClient.Configuration().maxFrameSize + 1))
        do {
            _ = try await SpeechClient(gateway.router).echo(huge)
            Issue.record("a request over the frame limit was sent")
        } catch let status as WireStatus {
            #expect(status.code == .resourceExhausted && status.message.contains("exceeds the limit"), "\(status)")
        }
        let replica = try #require(gateway.pools["speech"]?.replicas.first)
        #expect(replica.isHealthy, "ejected: \(replica.lastError)")
        #expect(try await SpeechClient(gateway.router).echo(EchoRequest()).servedBy == "a")
    }

    @Test func aReplicaReportingNotServingIsEjectedThenReadmitted() async throws {
        let (a, b) = (try await StandIn.start("a"), try await StandIn.start("b"))
        defer { Task { await a.stop(); await b.stop() } }
        let gateway = try Self.gateway(a, b)
        let replicaB = try #require(gateway.pools["speech"]?.replicas.first { $0.address == b.address })
        b.mode = .notServing
        await gateway.probe(replicaB)
        #expect(!replicaB.isHealthy)
        for _ in 0..<4 {
            #expect(try await SpeechClient(gateway.router).echo(EchoRequest()).servedBy == "a")
        }
        b.mode = .serve
        await gateway.probe(replicaB)
        #expect(replicaB.isHealthy)
        var servedBy = Set<String>()
        for _ in 0..<4 { servedBy.insert(try await SpeechClient(gateway.router).echo(EchoRequest()).servedBy) }
        #expect(servedBy == ["a", "b"], "the re-admitted replica takes calls again")
    }

    @Test func aCallARefusingReplicaDidNotStartGoesToTheNext() async throws {
        let (a, b) = (try await StandIn.start("a"), try await StandIn.start("b"))
        defer { Task { await a.stop(); await b.stop() } }
        a.mode = .refuse(.resourceExhausted)
        let gateway = try Self.gateway(a, b)
        for _ in 0..<6 {
            #expect(try await SpeechClient(gateway.router).echo(EchoRequest()).servedBy == "b")
        }
        let replicaA = try #require(gateway.pools["speech"]?.replicas.first { $0.address == a.address })
        #expect(replicaA.isHealthy, "a full queue is no reason to eject")
        // When every replica refuses, the caller gets the refusal as it was.
        b.mode = .refuse(.resourceExhausted)
        do {
            _ = try await SpeechClient(gateway.router).echo(EchoRequest())
            Issue.record("every replica refuses, yet the call was served")
        } catch let status as WireStatus {
            #expect(status.code == .resourceExhausted)
        }
    }

    @Test func aPipelineStepSurvivesAnUnreachableReplica() async throws {
        let (a, b) = (try await StandIn.start("a"), try await StandIn.start("b"))
        defer { Task { await a.stop() } }
        await b.stop()
        let gateway = try Self.gateway(a, b)
        // Rotation alternates the first candidate, so some of these start on the dead replica.
        for round in 0..<4 {
            let compose = ComposeRequest(steps: [PipelineStep(id: "hello", method: "speech.Echo", inputs: [])])
            let outputs = NIOLockedValueBox<[String]>([])
            try await gateway.compose(compose, deadline: nil) { step in
                #expect(step.status == nil, "round \(round): \(String(describing: step.status))")
                outputs.withLockedValue { $0.append(step.outputJSON) }
            }
            let output = try #require(outputs.withLockedValue { $0.first })
            #expect(output.contains("\"a\""), "round \(round): \(output)")
        }
    }

    @Test func theServiceLimitCoversPipelineStepsAndRoutedCalls() async throws {
        let a = try await StandIn.start("a")
        defer { Task { await a.stop() } }
        a.mode = .hold
        let gateway = try ChorusGateway(configuration: .init(services: ["speech": [a.address]], maxInFlightPerService: 1), logger: Self.logger)
        let held = Task { try await SpeechClient(gateway.router).echo(EchoRequest()) }
        #expect(await eventually { a.held == 1 })
        do {
            _ = try await SpeechClient(gateway.router).echo(EchoRequest())
            Issue.record("a call past the limit was relayed")
        } catch let status as WireStatus {
            #expect(status.code == .resourceExhausted && status.message.contains("--max-in-flight-per-service"), "\(status)")
        }
        let compose = ComposeRequest(steps: [PipelineStep(id: "hello", method: "speech.Echo", inputs: [])])
        do {
            try await gateway.compose(compose, deadline: nil) { _ in }
            Issue.record("a pipeline step past the limit was relayed")
        } catch let status as WireStatus {
            #expect(status.code == .resourceExhausted, "\(status)")
        }
        a.mode = .serve
        #expect(try await held.value.servedBy == "a")
        let pool = try #require(gateway.pools["speech"])
        #expect(await eventually { pool.admittedCalls == 0 && pool.replicas[0].inFlight == 0 }, "places are given back when calls end")
    }

    // MARK: helpers

    static let logger = Logger(label: "router-test")

    static func gateway(_ replicas: StandIn...) throws -> ChorusGateway {
        try ChorusGateway(configuration: .init(services: ["speech": replicas.map(\.address)]), logger: logger)
    }
}

/// A Speech replica in this process answering Echo (with its name) and Health as its mode says.
final class StandIn: Sendable {
    enum Mode: Sendable {
        case serve, hold, notServing
        case refuse(StatusCode)
    }

    let name: String
    let server: WireServer
    let port: Int
    private let state = NIOLockedValueBox<(mode: Mode, held: Int)>((.serve, 0))

    var address: String { "127.0.0.1:\(port)" }
    var mode: Mode {
        get { state.withLockedValue { $0.mode } }
        set { state.withLockedValue { $0.mode = newValue } }
    }
    /// Calls being held open now.
    var held: Int { state.withLockedValue { $0.held } }

    private init(name: String, server: WireServer, port: Int) {
        self.name = name
        self.server = server
        self.port = port
    }

    static func start(_ name: String) async throws -> StandIn {
        let box = NIOLockedValueBox<StandIn?>(nil)
        let routes: [ServerRoute] = [
            .unary(Speech.Method.echo) { (request: EchoRequest, _) in
                try await box.withLockedValue { $0 }!.echo(request)
            },
            .unary(Speech.Method.health) { (_: HealthRequest, _) in
                let mode = box.withLockedValue { $0 }!.mode
                if case .notServing = mode { return HealthResponse(state: .notServing, service: "speech") }
                return HealthResponse(state: .serving, service: "speech")
            },
        ]
        let server = WireServer(configuration: .init(port: 0), routes: routes, logger: Logger(label: "stand-in"))
        let standIn = StandIn(name: name, server: server, port: try await server.start())
        box.withLockedValue { $0 = standIn }
        return standIn
    }

    func echo(_ request: EchoRequest) async throws -> EchoResponse {
        if case .refuse(let code) = mode { throw WireStatus(code, "\(name) refuses") }
        if case .hold = mode {
            state.withLockedValue { $0.held += 1 }
            defer { state.withLockedValue { $0.held -= 1 } }
            while case .hold = mode { try await Task.sleep(for: .milliseconds(5)) }
        }
        return EchoResponse(payload: request.payload, servedBy: name)
    }

    func stop() async {
        await server.close()
    }
}
