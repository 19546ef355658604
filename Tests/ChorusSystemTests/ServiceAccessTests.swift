import ChorusAPI
import ChorusWire
import Foundation
import Testing

/// Who may call a service, and what a client's names may reach, over real processes.
@Suite(.serialized) struct ServiceAccessTests {
    func code(_ body: () async throws -> Void) async -> StatusCode {
        do {
            try await body()
            return .ok
        } catch {
            return WireStatus.from(error).code
        }
    }

    /// A service given --api-key checks it itself: exposed by mistake, it is not open. The gateway
    /// presents the key it is given with --service-api-key; Health stays open for probes.
    @Test func servicesCheckTheirOwnKey() async throws {
        let keyFile = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-key-\(UUID().uuidString)")
        try "s3cret-service-key\n".write(to: keyFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: keyFile) }
        let (speech, address) = try await ChorusProcess.serve(["speech", "--port", "0", "--api-key-file", keyFile.path])
        defer { speech.signal(SIGKILL) }
        let (gateway, gatewayAddress) = try await ChorusProcess.serve(["gateway", "--port", "0", "--speech", address, "--http-port=-1",
                                                                       "--service-api-key", "s3cret-service-key"])
        defer { gateway.signal(SIGKILL) }
        let (open, _) = try await ChorusProcess.serve(["gateway", "--port", "0", "--speech", address, "--http-port=-1"])
        defer { open.signal(SIGKILL) }

        let direct = SpeechClient(try WireClient(address: address))
        defer { (direct.channel as? WireClient)?.close() }
        let echo = EchoRequest(payload: Data("hi".utf8))
        #expect(await code { _ = try await direct.echo(echo) } == .unauthenticated)
        #expect(await code { _ = try await direct.status(StatusRequest()) } == .unauthenticated)
        #expect(await code { _ = try await direct.echo(echo, options: CallOptions(metadata: ["authorization": "Bearer guess"])) } == .unauthenticated)
        #expect(await code { _ = try await direct.echo(echo, options: CallOptions(metadata: ["authorization": "Bearer s3cret-service-key"])) } == .ok)
        #expect(await code { _ = try await direct.health(HealthRequest()) } == .ok)

        // Through a gateway that knows the key, and through one that does not.
        let viaGateway = SpeechClient(try WireClient(address: gatewayAddress))
        defer { (viaGateway.channel as? WireClient)?.close() }
        #expect(try await viaGateway.echo(echo).payload == Data("hi".utf8))
        let openAddress = try #require(open.listeningAddress)
        let viaOpen = SpeechClient(try WireClient(address: openAddress))
        defer { (viaOpen.channel as? WireClient)?.close() }
        #expect(await code { _ = try await viaOpen.echo(echo) } == .unauthenticated)

        // The key is never written to a log.
        for process in [speech, gateway] { #expect(!process.log.contains("s3cret"), "\(process.log)") }
    }

    /// Names from clients are keys of tables or checked file names: `../` reaches no file.
    @Test func namesFromClientsNeverReachTheFileSystem() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-names-\(UUID().uuidString)")
        let data = root.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let (vision, visionAddress) = try await ChorusProcess.serve(["vision", "--port", "0", "--data-dir", data.path])
        defer { vision.signal(SIGKILL) }
        let (diffusion, diffusionAddress) = try await ChorusProcess.serve(["diffusion", "--port", "0"])
        defer { diffusion.signal(SIGKILL) }
        let (speech, speechAddress) = try await ChorusProcess.serve(["speech", "--port", "0"])
        defer { speech.signal(SIGKILL) }
        let visionClient = VisionClient(try WireClient(address: visionAddress))
        let diffusionClient = DiffusionClient(try WireClient(address: diffusionAddress))
        let speechClient = SpeechClient(try WireClient(address: speechAddress))
        defer { (visionClient.channel as? WireClient)?.close(); (diffusionClient.channel as? WireClient)?.close(); (speechClient.channel as? WireClient)?.close() }

        // (protobuf-c strings end at a NUL byte, so "na\0me" arrives as the plain name "na".)
        let vector = Embedding(values: [1, 0, 0, 0])
        for name in ["../escaped", "..", "a/b", "/tmp/escaped", ".hidden", String(repeating: "x", count: 65), "a b", "é"] {
            #expect(await code { _ = try await visionClient.indexAdd(IndexAddRequest(index: name, ids: ["a"], vectors: [vector])) } == .invalidArgument, "\(name)")
            #expect(await code { _ = try await visionClient.indexSearch(IndexSearchRequest(index: name, vector: vector)) } == .invalidArgument, "\(name)")
            #expect(await code { _ = try await visionClient.indexDelete(IndexDeleteRequest(index: name, ids: ["a"])) } == .invalidArgument, "\(name)")
            // Every service's LoadModel refuses the name before it looks at the path.
            #expect(await code { _ = try await diffusionClient.loadModel(LoadModelRequest(name: name, path: "/nonexistent")) } == .invalidArgument, "\(name)")
            #expect(await code { _ = try await visionClient.loadModel(LoadModelRequest(name: name, path: "/nonexistent")) } == .invalidArgument, "\(name)")
            #expect(await code { _ = try await speechClient.loadModel(LoadModelRequest(name: name, path: "/nonexistent")) } == .invalidArgument, "\(name)")
            // Model names choose among loaded models, never paths.
            #expect(await code { _ = try await diffusionClient.unloadModel(UnloadModelRequest(name: name)) } == .notFound, "\(name)")
            #expect(await code { _ = try await visionClient.unloadModel(UnloadModelRequest(name: name)) } == .notFound, "\(name)")
            #expect(await code { _ = try await speechClient.unloadModel(UnloadModelRequest(name: name)) } == .notFound, "\(name)")
            #expect(await code { _ = try await speechClient.translate(TranscribeRequest(model: name)) } != .ok, "\(name)")
        }
        let siblings = try FileManager.default.contentsOfDirectory(atPath: root.path)
        #expect(siblings == ["data"], "files appeared beside the data folder: \(siblings)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: data.path).isEmpty)
    }
}
