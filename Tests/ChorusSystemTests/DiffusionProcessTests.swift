import ChorusAPI
import ChorusTestSupport
import ChorusWire
import Foundation
import Testing

/// DiffusionService as its own process with the real terrain consistency UNet (scripts/fetch-models).
@Suite(.serialized) struct DiffusionProcessTests {
    static func start() async throws -> (ChorusProcess, DiffusionClient) {
        let models = RealModels.root
        _ = try RealModels.path("terrain/terrain_consistency_unet_difficulty100.onnx")
        let (process, address) = try await ChorusProcess.serve(["diffusion", "--port", "0", "--models", models.path])
        return (process, DiffusionClient(try WireClient(address: address)))
    }

    func events(_ stream: ResponseStream<DiffusionEvent>) async throws -> [DiffusionEvent] { try await stream.collected() }

    @Test func generatesSeededHeightfieldsAndVariesThem() async throws {
        let (process, diffusion) = try await Self.start()
        defer { (diffusion.channel as? WireClient)?.close(); process.signal(SIGKILL) }
        let request = TextToImageRequest(seed: 3, numImages: 2, difficulty: 70)
        let first = try await events(diffusion.textToImage(request))
        #expect(first.count == 2 && first[0].progress?.total == 1)
        let result = try #require(first.last?.result)
        #expect(result.images.count == 2 && result.previews.count == 2 && result.seed == 3)
        for image in result.images {
            let (w, h, depth, color) = pngHeader(image.data)
            #expect(w == 128 && h == 128 && depth == 16 && color == 0, "a 16-bit grayscale 128×128 PNG")
        }
        #expect(pngHeader(result.previews[0].data).2 == 8)
        let again = try await events(diffusion.textToImage(request))
        #expect(again.last?.result?.images.map(\.data) == result.images.map(\.data), "same seed, same terrain")

        // img2img from the first terrain: low strength stays close, and it answers a 16-bit PNG too.
        let varied = try await events(diffusion.imageToImage(ImageToImageRequest(
            params: TextToImageRequest(seed: 9, difficulty: 70), initImage: result.images[0], strength: 0.3)))
        let variant = try #require(varied.last?.result?.images.first)
        #expect(pngHeader(variant.data).2 == 16 && variant.data != result.images[0].data)
        let models = try await diffusion.listModels(ListModelsRequest()).models
        #expect(models.map(\.name) == ["terrain"] && models.first?.kind == "consistency-unet")
    }

    /// `chorus call --save` writes the heightfield PNG the service answered.
    @Test func chorusCallSavesTheImage() async throws {
        _ = try RealModels.path("terrain/terrain_consistency_unet_difficulty100.onnx")
        let (process, address) = try await ChorusProcess.serve(["diffusion", "--port", "0", "--models", RealModels.root.path])
        defer { process.signal(SIGKILL) }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("terrain-\(UUID().uuidString).png")
        defer { try? FileManager.default.removeItem(at: file) }
        let (status, output) = try await ChorusProcess.run(["call", "diffusion.TextToImage", #"{"difficulty": 60, "seed": 7}"#,
                                                            "--save", "result.images.0.data=\(file.path)", "--target", address], timeout: 60)
        #expect(status == 0, "\(output)")
        let png = try Data(contentsOf: file)
        #expect(pngHeader(png) == (128, 128, 16, 0))
    }

    @Test func badRequestsGetClearErrors() async throws {
        let (process, diffusion) = try await Self.start()
        defer { (diffusion.channel as? WireClient)?.close(); process.signal(SIGKILL) }
        let png = try #require(try await events(diffusion.textToImage(TextToImageRequest(seed: 1))).last?.result?.images.first)
        let small = Data(base64Encoded: "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVQI12NgAAAAAgAB4iG8MwAAAABJRU5ErkJggg==")!
        let cases: [(() async throws -> Void, StatusCode, String)] = [
            ({ _ = try await self.events(diffusion.textToImage(TextToImageRequest(width: 256, height: 256))) }, .invalidArgument, "128×128"),
            ({ _ = try await self.events(diffusion.textToImage(TextToImageRequest(difficulty: 101))) }, .invalidArgument, "'difficulty' is 101"),
            ({ _ = try await self.events(diffusion.textToImage(TextToImageRequest(model: "sd15"))) }, .notFound, "no diffusion model named 'sd15'"),
            ({ _ = try await self.events(diffusion.imageToImage(ImageToImageRequest(initImage: png, strength: 0))) }, .invalidArgument, "strength"),
            ({ _ = try await self.events(diffusion.imageToImage(ImageToImageRequest(initImage: EncodedImage(data: png.data.prefix(100)), strength: 0.5))) },
             .invalidArgument, "init_image: corrupt PNG"),
            ({ _ = try await self.events(diffusion.imageToImage(ImageToImageRequest(initImage: EncodedImage(data: small), strength: 0.5))) },
             .invalidArgument, "1×1"),
        ]
        for (call, code, text) in cases {
            do {
                try await call()
                Issue.record("accepted a request that should fail with \(code)")
            } catch let status as WireStatus {
                #expect(status.code == code && status.message.contains(text), "\(status)")
            }
        }
        #expect(try await diffusion.health(HealthRequest()).state == .serving)
    }
}
