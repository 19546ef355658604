import ChorusAPI
import ChorusTestSupport
import ChorusWire
import Foundation
import NIOCore
import Testing

/// Faults injected into real processes under load: a replica killed or hung, the gateway restarted,
/// the disk of an index full.
@Suite(.serialized) struct FaultInjectionTests {
    enum Outcome: Sendable {
        case served(String)
        case failed(StatusCode)
    }

    /// `workers` tasks calling Echo one after another until `stop` says so (bounded by `maxCalls` each).
    static func load(_ client: SpeechClient, workers: Int, maxCalls: Int, delayMs: UInt32, options: CallOptions = .init(),
                     stop: @escaping @Sendable () -> Bool) async -> [Outcome] {
        await withTaskGroup(of: [Outcome].self) { group in
            for _ in 0..<workers {
                group.addTask {
                    var outcomes: [Outcome] = []
                    for _ in 0..<maxCalls where !stop() {
                        do {
                            outcomes.append(.served(try await client.echo(EchoRequest(delayMs: delayMs), options: options).servedBy))
                        } catch {
                            outcomes.append(.failed(WireStatus.from(error).code))
                        }
                    }
                    return outcomes
                }
            }
            return await group.reduce(into: []) { $0 += $1 }
        }
    }

    final class Flag: @unchecked Sendable {
        private let lock = NSLock()
        private var value = false
        var isSet: Bool { lock.withLock { value } }
        func set() { lock.withLock { value = true } }
    }

    /// kill -9 of one replica while four clients call through the gateway: the calls in flight on it
    /// fail UNAVAILABLE (at most one per client), nothing the other replica accepted is lost, and every
    /// call after the gateway ejected it is served.
    @Test func aKilledReplicaLosesOnlyItsOwnCalls() async throws {
        let (a, addressA) = try await ChorusProcess.serve(["speech", "--port", "0", "--max-concurrency", "16"])
        let (b, addressB) = try await ChorusProcess.serve(["speech", "--port", "0", "--max-concurrency", "16"])
        let (gateway, gatewayAddress) = try await ChorusProcess.serve(["gateway", "--port", "0", "--speech", "\(addressA),\(addressB)",
                                                                       "--health-interval-ms", "100"])
        defer { [a, b, gateway].forEach { $0.signal(SIGKILL) } }
        let client = SpeechClient(try WireClient(address: gatewayAddress))
        defer { (client.channel as? WireClient)?.close() }
        let done = Flag()
        async let outcomes = Self.load(client, workers: 4, maxCalls: 400, delayMs: 50, stop: { done.isSet })
        // Kill A once it has served some calls, then call on until the gateway has ejected it: every
        // one of 40 calls after that is served by B.
        let direct = SpeechClient(try WireClient(address: addressA))
        defer { (direct.channel as? WireClient)?.close() }
        var servedByA: UInt64 = 0
        let giveUp = Date().addingTimeInterval(30)
        while servedByA < 10 && Date() < giveUp {
            servedByA = (try? await direct.status(StatusRequest()).callsTotal) ?? 0
            if servedByA < 10 { try await Task.sleep(for: .milliseconds(50)) }
        }
        a.signal(SIGKILL)
        _ = try await gateway.waitForLine(containing: "replica \(addressA) ejected", timeout: 10)
        var afterEjection: [String] = []
        for _ in 0..<40 { afterEjection.append((try? await client.echo(EchoRequest()).servedBy) ?? "failed") }
        done.set()
        let all = await outcomes
        let failures = all.compactMap { if case .failed(let code) = $0 { code } else { nil } }
        let served = all.compactMap { if case .served(let by) = $0 { by } else { nil } }
        #expect(served.contains { $0.hasPrefix(addressA) } && served.contains { $0.hasPrefix(addressB) }, "both replicas served before the kill")
        #expect(failures.allSatisfy { $0 == .unavailable }, "\(failures)")
        #expect(failures.count <= 4, "\(failures.count) calls failed; at most the four in flight on the killed replica may")
        #expect(afterEjection.allSatisfy { $0.hasPrefix(addressB) }, "calls after the ejection: \(afterEjection)")
        #expect(gateway.process.isRunning && b.process.isRunning)
    }

    /// SIGSTOP: a replica that is hung, not dead, keeps its connections open. The gateway's health
    /// probe ejects it within a bounded time, deadlines fire for the calls stuck on it, and it is
    /// re-admitted after SIGCONT.
    /// kill -9 of one of two replicas while pipelines run through the gateway: pipeline steps go through
    /// the same router as plain calls, so after the kill every pipeline is served by the other replica
    /// (one whose step was running on the killed one at that moment may fail UNAVAILABLE, nothing else).
    @Test func aPipelineStepSurvivesAKilledReplica() async throws {
        let (a, addressA) = try await ChorusProcess.serve(["speech", "--port", "0"])
        let (b, addressB) = try await ChorusProcess.serve(["speech", "--port", "0"])
        let (gateway, gatewayAddress) = try await ChorusProcess.serve(["gateway", "--port", "0", "--speech", "\(addressA),\(addressB)",
                                                                       "--health-interval-ms", "100"])
        defer { [a, b, gateway].forEach { $0.signal(SIGKILL) } }
        let connection = try WireClient(address: gatewayAddress)
        defer { connection.close() }
        let pipelines = GatewayClient(connection)
        // Two independent steps, so each pipeline makes two calls at once and both replicas serve steps.
        let compose = ComposeRequest(steps: ["one", "two"].map { PipelineStep(id: $0, method: "speech.Echo", inputs: [StepInput(field: "delay_ms", value: "20")]) })
        func run() async -> (servedBy: [String], failure: StatusCode?) {
            do {
                var servedBy: [String] = []
                for try await event in pipelines.compose(compose) where !event.stepId.isEmpty {
                    if event.statusCode != 0 { return (servedBy, StatusCode(rawValue: event.statusCode)) }
                    let output = try JSONSerialization.jsonObject(with: Data(event.outputJson.utf8)) as? [String: Any]
                    servedBy.append((output?["served_by"] ?? output?["servedBy"]) as? String ?? "?")
                }
                return (servedBy, nil)
            } catch {
                return ([], WireStatus.from(error).code)
            }
        }
        let before = await run()
        #expect(before.failure == nil && before.servedBy.count == 2, "\(before)")
        a.signal(SIGKILL)
        var failures: [StatusCode] = [], servers = Set<String>()
        for _ in 0..<10 {
            let result = await run()
            if let failure = result.failure { failures.append(failure) } else { servers.formUnion(result.servedBy) }
        }
        #expect(failures.count <= 1 && failures.allSatisfy { $0 == .unavailable }, "\(failures)")
        #expect(servers.count == 1 && servers.first?.hasPrefix(addressB) == true, "steps after the kill were served by \(servers), not only \(addressB)")
    }

    /// A service past its memory budget refuses model calls with RESOURCE_EXHAUSTED before starting them,
    /// naming the budget, and keeps serving everything else; within the budget the same call is served.
    @Test func aServiceOutOfMemoryBudgetRefusesAndStaysUp() async throws {
        let models = NSTemporaryDirectory() + "chorus-budget-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: models, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: models + "/whisper-tiny.en", withDestinationPath: try RealModels.path("whisper-tiny.en"))
        let audio = Audio(wav: SpeechProcessTests.fixture("espeak_lights.wav"))
        // Whisper tiny.en alone holds more than 64 MiB.
        let (tight, tightAddress) = try await ChorusProcess.serve(["speech", "--port", "0", "--models", models, "--memory-budget-mib", "64"])
        defer { tight.signal(SIGKILL) }
        let connection = try WireClient(address: tightAddress)
        defer { connection.close() }
        let speech = SpeechClient(connection)
        do {
            for try await _ in speech.transcribe(TranscribeRequest(audio: audio)) {}
            Issue.record("a call past the budget was served")
        } catch let status as WireStatus {
            #expect(status.code == .resourceExhausted && status.message.contains("--memory-budget-mib"), "\(status)")
        }
        #expect(try await speech.health(HealthRequest()).state == .serving)
        #expect(try await speech.echo(EchoRequest(payload: Data("still here".utf8))).payload == Data("still here".utf8))

        let (roomy, roomyAddress) = try await ChorusProcess.serve(["speech", "--port", "0", "--models", models, "--memory-budget-mib", "8192"])
        defer { roomy.signal(SIGKILL) }
        let roomyConnection = try WireClient(address: roomyAddress)
        defer { roomyConnection.close() }
        var text = ""
        for try await event in SpeechClient(roomyConnection).transcribe(TranscribeRequest(audio: audio)) {
            if let result = event.result { text = result.text }
        }
        #expect(text.contains("lights"), "\(text)")

        // Vision: the CLIP fixture within a tight budget refuses images, not the service's other methods.
        let (vision, visionAddress) = try await ChorusProcess.serve(["vision", "--port", "0", "--models", VisionProcessTests.clipFolder.path,
                                                                     "--memory-budget-mib", "16"])
        defer { vision.signal(SIGKILL) }
        let visionConnection = try WireClient(address: visionAddress)
        defer { visionConnection.close() }
        do {
            _ = try await VisionClient(visionConnection).embedImages(EmbedImagesRequest(images: [EncodedImage(data: VisionProcessTests.png)]))
            Issue.record("an image call past the budget was served")
        } catch let status as WireStatus {
            #expect(status.code == .resourceExhausted && status.message.contains("--memory-budget-mib"), "\(status)")
        }
        #expect(try await VisionClient(visionConnection).health(HealthRequest()).state == .serving)
    }

    @Test func aHungReplicaIsEjectedAndDeadlinesFire() async throws {
        let (a, addressA) = try await ChorusProcess.serve(["speech", "--port", "0"])
        let (b, addressB) = try await ChorusProcess.serve(["speech", "--port", "0"])
        let (gateway, gatewayAddress) = try await ChorusProcess.serve(["gateway", "--port", "0", "--speech", "\(addressA),\(addressB)",
                                                                       "--health-interval-ms", "100"])
        defer { a.signal(SIGCONT); [a, b, gateway].forEach { $0.signal(SIGKILL) } }
        let client = SpeechClient(try WireClient(address: gatewayAddress))
        let direct = SpeechClient(try WireClient(address: addressA))
        defer { (client.channel as? WireClient)?.close(); (direct.channel as? WireClient)?.close() }
        #expect(try await direct.echo(EchoRequest()).servedBy.hasPrefix(addressA))

        a.signal(SIGSTOP)
        let stopped = Date()
        // A call straight to the hung replica ends with its deadline, not never.
        await #expect(throws: WireStatus.self) { _ = try await direct.echo(EchoRequest(), options: CallOptions(timeout: .milliseconds(500))) }
        let line = try await gateway.waitForLine(containing: "replica \(addressA) ejected", timeout: 10)
        #expect(Date().timeIntervalSince(stopped) < 10, "\(line)")
        // Every call after the ejection goes to B and is answered.
        for _ in 0..<10 {
            #expect(try await client.echo(EchoRequest(), options: CallOptions(timeout: .seconds(5))).servedBy.hasPrefix(addressB))
        }
        a.signal(SIGCONT)
        _ = try await gateway.waitForLine(containing: "replica \(addressA) re-admitted", timeout: 10)
    }

    /// The gateway killed and restarted under load: the services keep running (same processes, nothing
    /// dropped on their side), and the clients' next calls reach the new gateway.
    @Test func aRestartedGatewayLeavesTheServicesAlone() async throws {
        let (speech, speechAddress) = try await ChorusProcess.serve(["speech", "--port", "0", "--max-concurrency", "8"])
        defer { speech.signal(SIGKILL) }
        var (gateway, gatewayAddress) = try await ChorusProcess.serve(["gateway", "--port", "0", "--speech", speechAddress])
        let client = SpeechClient(try WireClient(address: gatewayAddress))
        let service = SpeechClient(try WireClient(address: speechAddress))
        defer { (client.channel as? WireClient)?.close(); (service.channel as? WireClient)?.close() }
        let pid = try await service.status(StatusRequest()).pid
        let done = Flag()
        async let outcomes = Self.load(client, workers: 3, maxCalls: 200, delayMs: 20, stop: { done.isSet })
        try await Task.sleep(for: .milliseconds(300))  // the pace of the load, not a wait for a result
        gateway.signal(SIGKILL)
        _ = await gateway.waitForExit()
        let port = gatewayAddress.split(separator: ":").last!
        (gateway, _) = try await ChorusProcess.serve(["gateway", "--port", String(port), "--speech", speechAddress])
        defer { gateway.signal(SIGKILL) }
        var reached = false
        let giveUp = Date().addingTimeInterval(15)
        while !reached && Date() < giveUp {
            reached = (try? await client.echo(EchoRequest(), options: CallOptions(timeout: .seconds(2)))) != nil
            if !reached { try await Task.sleep(for: .milliseconds(100)) }
        }
        done.set()
        let all = await outcomes
        #expect(reached, "the client reached the restarted gateway")
        let failures = all.compactMap { if case .failed(let code) = $0 { code } else { nil } }
        #expect(failures.allSatisfy { $0 == .unavailable }, "\(failures)")
        #expect(try await service.status(StatusRequest()).pid == pid, "the service was not restarted")
        #expect(speech.process.isRunning)
    }

    /// A full disk while an index is saved (a file-size limit makes the write fail as ENOSPC would):
    /// the call fails with RESOURCE_EXHAUSTED, and the index in memory and on disk is the old one.
    @Test func aFullDiskLeavesTheOldIndexIntact() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-full-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: data) }
        // ulimit -f counts 1024-byte blocks: 64 KB of file at most.
        let shell = ChorusProcess.binary.path + " vision --port 0 --data-dir " + data.path
        let vision = try ChorusProcess.shell("ulimit -f 64; exec \(shell)")
        defer { vision.signal(SIGKILL) }
        let line = try await vision.waitForLine(containing: " listening on ", timeout: 60)
        let address = String(line[line.range(of: " listening on ")!.upperBound...].split(separator: " ").first!)
        let client = VisionClient(try WireClient(address: address))
        defer { (client.channel as? WireClient)?.close() }

        func vectors(_ count: Int, offset: Int) -> [Embedding] {
            (0..<count).map { i in Embedding(values: (0..<64).map { Float(($0 + i + offset) % 7) }) }
        }
        let small = try await client.indexAdd(IndexAddRequest(index: "photos", ids: (0..<10).map { "a\($0)" }, vectors: vectors(10, offset: 0)))
        #expect(small.size == 10)
        let file = data.appendingPathComponent("photos.chidx")
        let before = try Data(contentsOf: file)

        do {
            _ = try await client.indexAdd(IndexAddRequest(index: "photos", ids: (0..<400).map { "b\($0)" }, vectors: vectors(400, offset: 3)))
            Issue.record("400 vectors (100 KB) were saved past a 64 KB limit")
        } catch let status as WireStatus {
            #expect(status.code == .resourceExhausted && status.message.contains("nothing was changed"), "\(status)")
        }
        #expect(try Data(contentsOf: file) == before, "the file on disk changed")
        let hits = try await client.indexSearch(IndexSearchRequest(index: "photos", vector: vectors(1, offset: 0)[0], topK: 100))
        #expect(hits.hits.count == 10 && hits.hits.allSatisfy { $0.id.hasPrefix("a") }, "the index in memory changed")
        #expect(try FileManager.default.contentsOfDirectory(atPath: data.path) == ["photos.chidx"], "a temporary file was left")
        #expect(vision.process.isRunning)
    }
}
