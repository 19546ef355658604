import ChorusAPI
import ChorusWire
import Foundation
import Testing

/// ControlNet over the wire: DiffusionService with the tiny SD fixture and the tiny ControlNets
/// (scripts/fixtures/make_controlnet_cases.py) — a seeded canny-controlled run with progress and previews that
/// returns its control image, poses drawn from keypoints, two ControlNets with guess mode in img2img, LoadModel,
/// and precise codes for what cannot run.
@Suite(.serialized) struct ControlNetProcessTests {
    static let fixtures = StableDiffusionProcessTests.repository.appendingPathComponent("Tests/DiffusionServiceTests/Fixtures").path
    static let media = StableDiffusionProcessTests.repository.appendingPathComponent("Tests/ChorusMediaTests/Fixtures").path

    /// sd-tiny, ControlNets "edges" and "second" (the two fixtures) and "mismatched" (fits no UNet here).
    static func start() async throws -> (ChorusProcess, DiffusionClient) {
        let (process, address) = try await serve()
        return (process, DiffusionClient(try WireClient(address: address)))
    }

    static func serve() async throws -> (ChorusProcess, String) {
        let root = NSTemporaryDirectory() + "chorus-controlnet-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        for (name, target) in [("sd-tiny", "sd"), ("edges", "controlnet/a"), ("second", "controlnet/b"), ("mismatched", "controlnet/mismatched")] {
            try FileManager.default.createSymbolicLink(atPath: "\(root)/\(name)", withDestinationPath: "\(fixtures)/\(target)")
        }
        return try await ChorusProcess.serve(["diffusion", "--port", "0", "--models", root])
    }

    static func file(_ path: String) throws -> EncodedImage { EncodedImage(data: try Data(contentsOf: URL(fileURLWithPath: path))) }

    func events(_ stream: ResponseStream<DiffusionEvent>) async throws -> [DiffusionEvent] { try await stream.collected() }

    @Test func aCannyControlledRunIsSeededStreamsAndReturnsItsEdges() async throws {
        let (process, diffusion) = try await Self.start()
        defer { (diffusion.channel as? WireClient)?.close(); process.signal(SIGKILL) }
        let models = try await diffusion.listModels(ListModelsRequest()).models
        #expect(models.first { $0.name == "edges" }?.kind == "controlnet")
        #expect(models.first { $0.name == "edges" }?.details.contains(KeyValue(key: "cross_attention_dim", value: "32")) == true)

        let scene = try Self.file(Self.media + "/canny/scene-0.png")
        var request = TextToImageRequest(prompt: "a (photo) of a cat", steps: 3, seed: 7, width: 32, height: 32, previewEvery: 1,
                                         promptSyntax: "compel")
        request.controlnets = [ControlNetInput(model: "edges", image: scene, preprocessor: "canny")]
        let run = try await events(diffusion.textToImage(request))
        #expect(run.compactMap(\.progress).map(\.step) == [1, 2, 3])
        #expect(run.filter { $0.preview != nil }.count == 2)
        let result = try #require(run.last?.result)
        #expect(result.images.count == 1 && result.controlImages.count == 1)
        let control = try #require(result.controlImages.first)
        #expect(pngHeader(control.data) == (32, 32, 8, 2), "the edges at the output size, RGB")
        let again = try await events(diffusion.textToImage(request))
        #expect(again.last?.result?.images.map(\.data) == result.images.map(\.data), "same seed, same images")
        var uncontrolled = request
        uncontrolled.controlnets = []
        #expect(try await events(diffusion.textToImage(uncontrolled)).last?.result?.images.first?.data != result.images[0].data)
        var weaker = request
        weaker.controlnets[0].conditioningScale = 0.3
        weaker.controlnets[0].guidanceEnd = 0.5
        #expect(try await events(diffusion.textToImage(weaker)).last?.result?.images.first?.data != result.images[0].data)
    }

    @Test func posesTwoControlNetsGuessModeAndImg2img() async throws {
        let (process, diffusion) = try await Self.start()
        defer { (diffusion.channel as? WireClient)?.close(); process.signal(SIGKILL) }
        let keypoints = try String(contentsOfFile: Self.media + "/pose/pose-1.json", encoding: .utf8)
        var params = TextToImageRequest(prompt: "a dancer", steps: 4, seed: 3, width: 32, height: 32, guessMode: true)
        params.controlnets = [ControlNetInput(model: "edges", preprocessor: "pose_keypoints", keypointsJson: keypoints),
                              ControlNetInput(model: "second", image: try Self.file(Self.media + "/canny/scene-2.png"), conditioningScale: 0.7)]
        let txt = try #require(try await events(diffusion.textToImage(params)).last?.result)
        #expect(txt.controlImages.count == 2 && txt.images.count == 1)
        let img2img = try await events(diffusion.imageToImage(ImageToImageRequest(params: params, initImage: txt.images[0], strength: 0.5)))
        #expect(img2img.compactMap(\.progress).map(\.step) == [1, 2])
        #expect(img2img.last?.result?.images.count == 1)
    }

    /// Leaving the stream after the first step sends CANCEL; the controlled run stops after the step in flight.
    @Test func cancelStopsAControlledRun() async throws {
        let (process, diffusion) = try await Self.start()
        defer { (diffusion.channel as? WireClient)?.close(); process.signal(SIGKILL) }
        var request = TextToImageRequest(prompt: "a cat", steps: 150, seed: 1, width: 64, height: 64)
        request.controlnets = [ControlNetInput(model: "edges", image: try Self.file(Self.media + "/canny/scene-0.png"), preprocessor: "canny")]
        for try await event in diffusion.textToImage(request) where event.progress != nil { break }
        var idle = false
        let deadline = Date().addingTimeInterval(30)
        while !idle && Date() < deadline {
            idle = try await diffusion.status(StatusRequest()).inFlight == 1
            if !idle { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(idle, "the run stopped after CANCEL")
    }

    /// The gateway's sketch-to-image recipe: the sketch's edges and the image they steered, in one result.
    @Test func sketchToImageReturnsTheEdgeMapAndTheImage() async throws {
        let (diffusion, address) = try await Self.serve()
        defer { diffusion.signal(SIGKILL) }
        let (gateway, gatewayAddress) = try await ChorusProcess.serve(["gateway", "--port", "0", "--diffusion", address])
        defer { gateway.signal(SIGKILL) }
        let client = GatewayClient(try WireClient(address: gatewayAddress))
        defer { (client.channel as? WireClient)?.close() }
        let request = ComposeRequest(recipe: "sketch-to-image", inputs: [
            KeyValue(key: "prompt", value: "a house on a hill"), KeyValue(key: "controlnet", value: "edges"),
            KeyValue(key: "steps", value: "2"), KeyValue(key: "seed", value: "4"), KeyValue(key: "low", value: "50"),
        ], images: [try Self.file(Self.media + "/canny/scene-1.png")])
        var result: [String: Any]?
        for try await event in client.compose(request) where event.stepId == "generate" {
            #expect(event.statusCode == 0, "\(event.statusMessage)")
            result = (try? JSONSerialization.jsonObject(with: Data(event.outputJson.utf8)) as? [String: Any])?["result"] as? [String: Any]
        }
        let edges = try #require((result?["control_images"] as? [[String: Any]])?.first?["data"] as? String)
        let image = try #require((result?["images"] as? [[String: Any]])?.first?["data"] as? String)
        let (edgesPNG, imagePNG) = (try #require(Data(base64Encoded: edges)), try #require(Data(base64Encoded: image)))
        #expect(pngHeader(edgesPNG).2 == 8 && pngHeader(imagePNG).3 == 2 && edgesPNG != imagePNG)
        do {
            for try await _ in client.compose(ComposeRequest(recipe: "sketch-to-image", inputs: [KeyValue(key: "prompt", value: "x")])) {}
            Issue.record("sketch-to-image ran without a sketch")
        } catch let status as WireStatus {
            #expect(status.code == .invalidArgument && status.message.contains("needs an image"), "\(status)")
        }
    }

    @Test func whatCannotRunGetsPreciseCodes() async throws {
        let (process, diffusion) = try await Self.start()
        defer { (diffusion.channel as? WireClient)?.close(); process.signal(SIGKILL) }
        let scene = try Self.file(Self.media + "/canny/scene-0.png")
        func refused(_ control: ControlNetInput, _ code: StatusCode, _ words: String, sourceLocation: SourceLocation = #_sourceLocation) async {
            var request = TextToImageRequest(prompt: "a cat", steps: 1, seed: 1, width: 32, height: 32)
            request.controlnets = [control]
            do {
                _ = try await events(diffusion.textToImage(request))
                Issue.record("\(control.model)/\(control.preprocessor) ran", sourceLocation: sourceLocation)
            } catch let status as WireStatus {
                #expect(status.code == code && status.message.contains(words), "\(status)", sourceLocation: sourceLocation)
            } catch {
                Issue.record("\(error)", sourceLocation: sourceLocation)
            }
        }
        await refused(ControlNetInput(model: "nope", image: scene), .notFound, "no ControlNet named 'nope'; loaded: edges, mismatched, second")
        await refused(ControlNetInput(model: "mismatched", image: scene), .invalidArgument, "ControlNet 'mismatched' does not fit 'sd-tiny': block_out_channels")
        await refused(ControlNetInput(model: "edges", image: EncodedImage(data: Data("not a png".utf8))), .invalidArgument, "controlnets[0].image")
        await refused(ControlNetInput(model: "edges"), .invalidArgument, "controlnets[0] has no image")
        await refused(ControlNetInput(model: "edges", image: scene, preprocessor: "depth"), .invalidArgument, "is not one of none, canny, pose_keypoints")
        await refused(ControlNetInput(model: "edges", image: scene, guidanceStart: 0.8, guidanceEnd: 0.2), .invalidArgument, "guidance_start 0.8 must be below")
        await refused(ControlNetInput(model: "edges", image: scene, conditioningScale: .nan), .invalidArgument, "conditioning_scale")
        await refused(ControlNetInput(model: "edges", image: scene, lowThreshold: -1), .invalidArgument, "low_threshold")
        await refused(ControlNetInput(model: "edges", preprocessor: "pose_keypoints", keypointsJson: "{\"people\": 3}"), .invalidArgument, "keypoints_json")
        var many = TextToImageRequest(prompt: "a cat", steps: 1, width: 32, height: 32)
        many.controlnets = Array(repeating: ControlNetInput(model: "edges", image: scene), count: 5)
        await #expect(throws: WireStatus.self) { _ = try await self.events(diffusion.textToImage(many)) }

        // A ControlNet loaded at run time is usable at once.
        let loaded = try await diffusion.loadModel(LoadModelRequest(name: "late", path: Self.fixtures + "/controlnet/a"))
        #expect(loaded.models.first?.kind == "controlnet")
        var late = TextToImageRequest(prompt: "a cat", steps: 1, seed: 1, width: 32, height: 32)
        late.controlnets = [ControlNetInput(model: "late", image: scene, preprocessor: "canny", lowThreshold: 50, highThreshold: 150, l2Gradient: true)]
        #expect(try await events(diffusion.textToImage(late)).last?.result?.controlImages.count == 1)
    }
}
