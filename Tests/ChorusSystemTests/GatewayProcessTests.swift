import ChorusAPI
import ChorusTestSupport
import ChorusWire
import Foundation
import NIOCore
import Testing

/// The gateway and its replicas as separate processes on loopback.
@Suite(.serialized) struct GatewayProcessTests {
    @Test func killedReplicaAnswersUnavailableFastAndIsReadmittedAfterRestart() async throws {
        var (speech, speechAddress) = try await ChorusProcess.serve(["speech", "--port", "0"])
        let (gateway, gatewayAddress) = try await ChorusProcess.serve(["gateway", "--port", "0", "--speech", speechAddress, "--health-interval-ms", "200"])
        defer { gateway.signal(SIGKILL) }
        let client = SpeechClient(try WireClient(address: gatewayAddress))
        defer { (client.channel as? WireClient)?.close() }
        #expect(try await client.echo(EchoRequest()).servedBy.hasPrefix(speechAddress))

        speech.signal(SIGKILL)
        _ = await speech.waitForExit()
        let started = Date()
        do {
            _ = try await client.echo(EchoRequest())
            Issue.record("expected UNAVAILABLE")
        } catch let status as WireStatus {
            #expect(status.code == .unavailable)
            #expect(status.message.contains("speech"))
        }
        #expect(Date().timeIntervalSince(started) < 1, "UNAVAILABLE within 1 s")

        let port = speechAddress.split(separator: ":").last!
        (speech, _) = try await ChorusProcess.serve(["speech", "--port", String(port)])
        defer { speech.signal(SIGKILL) }
        // The gateway re-admits the replica at its next health probe: call until it answers.
        var answered: EchoResponse?
        _ = await eventually(pollInterval: .milliseconds(100)) {
            answered = try? await client.echo(EchoRequest())
            return answered != nil
        }
        #expect(answered?.servedBy == "\(speechAddress) \(speech.pid)", "the restarted replica serves again")
        #expect(gateway.process.isRunning, "without restarting the gateway")
        #expect(gateway.log.contains("ejected") && gateway.log.contains("re-admitted"))
    }

    @Test func replicasFromAListJoinAndLeaveWithoutARestart() async throws {
        let (a, addressA) = try await ChorusProcess.serve(["speech", "--port", "0"])
        let (b, addressB) = try await ChorusProcess.serve(["speech", "--port", "0"])
        let list = NSTemporaryDirectory() + "chorus-speech-replicas-\(UUID().uuidString)"
        try "\(addressA)\n".write(toFile: list, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: list) }
        let (gateway, gatewayAddress) = try await ChorusProcess.serve(["gateway", "--port", "0", "--speech", "file://" + list,
                                                                      "--discovery-interval-ms", "100", "--health-interval-ms", "100"])
        defer { [a, b, gateway].forEach { $0.signal(SIGKILL) } }
        let client = SpeechClient(try WireClient(address: gatewayAddress))
        defer { (client.channel as? WireClient)?.close() }
        func servedBy(_ count: Int) async throws -> Set<String> {
            Set(try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<count { group.addTask { try await client.echo(EchoRequest(delayMs: 20)).servedBy } }
                return try await group.reduce(into: [String]()) { $0.append(String($1.split(separator: " ")[0])) }
            })
        }
        #expect(await eventually { (try? await servedBy(4)) == [addressA] })
        try "\(addressA)\n\(addressB)\n".write(toFile: list, atomically: true, encoding: .utf8)
        #expect(await eventually { (try? await servedBy(8)) == [addressA, addressB] })
        try "\(addressB)\n".write(toFile: list, atomically: true, encoding: .utf8)
        #expect(await eventually { (try? await servedBy(8)) == [addressB] })
        #expect(gateway.log.contains("speech replica \(addressB) joined (file://\(list))") && gateway.log.contains("speech replica \(addressA) left"),
                "\(gateway.log)")
    }

    @Test func twoReplicasShareTheLoad() async throws {
        let (a, addressA) = try await ChorusProcess.serve(["speech", "--port", "0", "--max-concurrency", "16"])
        let (b, addressB) = try await ChorusProcess.serve(["speech", "--port", "0", "--max-concurrency", "16"])
        let (gateway, gatewayAddress) = try await ChorusProcess.serve(["gateway", "--port", "0", "--speech", "\(addressA),\(addressB)"])
        defer { [a, b, gateway].forEach { $0.signal(SIGKILL) } }
        let client = SpeechClient(try WireClient(address: gatewayAddress))
        defer { (client.channel as? WireClient)?.close() }
        let servedBy = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<20 {
                group.addTask { try await client.echo(EchoRequest(delayMs: 100)).servedBy }
            }
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        let countA = servedBy.filter { $0.hasPrefix(addressA) }.count
        let countB = servedBy.filter { $0.hasPrefix(addressB) }.count
        #expect(countA + countB == 20)
        #expect(countA >= 5 && countB >= 5, "A served \(countA), B served \(countB)")
    }

    @Test func deadlineAndCancellationReachTheService() async throws {
        let (speech, speechAddress) = try await ChorusProcess.serve(["speech", "--port", "0"])
        let (gateway, gatewayAddress) = try await ChorusProcess.serve(["gateway", "--port", "0", "--speech", speechAddress])
        defer { [speech, gateway].forEach { $0.signal(SIGKILL) } }
        let viaGateway = SpeechClient(try WireClient(address: gatewayAddress))
        let direct = SpeechClient(try WireClient(address: speechAddress))
        defer { (viaGateway.channel as? WireClient)?.close(); (direct.channel as? WireClient)?.close() }

        do {
            _ = try await viaGateway.echo(EchoRequest(delayMs: 5000), options: CallOptions(timeout: .milliseconds(200)))
            Issue.record("expected DEADLINE_EXCEEDED")
        } catch let status as WireStatus {
            #expect(status.code == .deadlineExceeded)
        }
        #expect(try await eventuallyIdle(direct), "the service stopped the work when the deadline passed")

        var received = 0
        for try await _ in viaGateway.echoStream(EchoRequest(delayMs: 20, count: 500)) {
            received += 1
            if received == 3 { break }
        }
        #expect(try await eventuallyIdle(direct), "CANCEL travelled through the gateway to the service")
    }

    @Test func gatewayAggregatesHealthAndStatus() async throws {
        let (speech, speechAddress) = try await ChorusProcess.serve(["speech", "--port", "0"])
        let (vision, visionAddress) = try await ChorusProcess.serve(["vision", "--port", "0"])
        let (gateway, gatewayAddress) = try await ChorusProcess.serve(["gateway", "--port", "0", "--speech", speechAddress, "--vision", visionAddress, "--health-interval-ms", "100"])
        defer { [speech, vision, gateway].forEach { $0.signal(SIGKILL) } }
        let client = GatewayClient(try WireClient(address: gatewayAddress))
        defer { (client.channel as? WireClient)?.close() }
        let health = try await client.health(HealthRequest())
        #expect(health.state == .serving)
        #expect(health.services.map(\.service) == ["speech", "vision"])
        let status = try await client.status(StatusRequest())
        #expect(Set(status.replicas.map(\.address)) == [speechAddress, visionAddress])
        #expect(status.replicas.allSatisfy { $0.healthy && ($0.status?.residentBytes ?? 0) > 0 })

        vision.signal(SIGKILL)
        _ = await vision.waitForExit()
        // The gateway probes every 100 ms: ask until its health shows the dead replica.
        var degraded = try await client.health(HealthRequest())
        let noticed = try await eventually {
            degraded = try await client.health(HealthRequest())
            return degraded.services.first { $0.service == "vision" }?.healthyReplicas == 0
        }
        #expect(noticed, "the gateway noticed the killed vision replica")
        #expect(degraded.state == .notServing)
        #expect(degraded.services.first { $0.service == "vision" }?.healthyReplicas == 0)
        #expect(degraded.services.first { $0.service == "speech" }?.state == .serving)
    }

    /// Polls the service's own Status until only the Status call itself is in flight.
    private func eventuallyIdle(_ client: SpeechClient) async throws -> Bool {
        try await eventually(pollInterval: .milliseconds(20)) { try await client.status(StatusRequest()).inFlight == 1 }
    }
}
