import ChorusAPI
import ChorusWire
import Foundation
import Testing

/// DiffusionService as its own process with the tiny Stable Diffusion fixture (diffusers layout), over
/// the wire: seeded text-to-image with progress and previews, every scheduler, img2img, LoadModel,
/// cancellation within a step, and clear errors.
@Suite(.serialized) struct StableDiffusionProcessTests {
    static let repository: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url
    }()
    static let sdFolder = repository.appendingPathComponent("Tests/DiffusionServiceTests/Fixtures/sd").path

    /// A --models folder holding the fixture as "sd-tiny".
    static func models() throws -> String {
        let root = NSTemporaryDirectory() + "chorus-sd-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: root + "/sd-tiny", withDestinationPath: sdFolder)
        return root
    }

    static func start(_ extra: [String] = []) async throws -> (ChorusProcess, DiffusionClient) {
        let (process, address) = try await ChorusProcess.serve(["diffusion", "--port", "0", "--models", try models()] + extra)
        return (process, DiffusionClient(try WireClient(address: address)))
    }

    func events(_ stream: ResponseStream<DiffusionEvent>) async throws -> [DiffusionEvent] { try await stream.collected() }

    @Test func textToImageStreamsProgressAndPreviewsAndIsSeeded() async throws {
        let (process, diffusion) = try await Self.start()
        defer { (diffusion.channel as? WireClient)?.close(); process.signal(SIGKILL) }
        let request = TextToImageRequest(prompt: "a photo of a cat", negativePrompt: "blurry", steps: 4, seed: 5, width: 32, height: 32,
                                         numImages: 2, previewEvery: 2)
        let first = try await events(diffusion.textToImage(request))
        #expect(first.compactMap(\.progress).map(\.step) == [1, 2, 3, 4] && first.compactMap(\.progress).allSatisfy { $0.total == 4 })
        #expect(first.filter { $0.preview != nil }.count == 1, "a preview after step 2 (none after the last)")
        if let preview = first.compactMap(\.preview).first { #expect(pngHeader(preview.data) == (16, 16, 8, 2), "latent-size RGB (the tiny VAE halves)") }
        let result = try #require(first.last?.result)
        #expect(result.images.count == 2 && result.seed == 5 && result.images[0].data != result.images[1].data)
        #expect(result.promptTokens > 0 && result.truncatedTokens == 0, "a1111 prompts count their tokens and lose none")
        for image in result.images { #expect(pngHeader(image.data) == (32, 32, 8, 2), "32×32 8-bit RGB PNG") }
        let again = try await events(diffusion.textToImage(request))
        #expect(again.last?.result?.images.map(\.data) == result.images.map(\.data), "same seed, same images")
        var other = request
        other.seed = 6
        #expect(try await events(diffusion.textToImage(other)).last?.result?.images.first?.data != result.images[0].data)
        let models = try await diffusion.listModels(ListModelsRequest()).models
        #expect(models.map(\.name) == ["sd-tiny"] && models.first?.kind == "stable-diffusion")
        #expect(models.first?.details.contains(KeyValue(key: "scheduler", value: "ddim")) == true)
    }

    @Test func everySchedulerRunsAndImg2imgRerunsPartOfTheSchedule() async throws {
        let (process, diffusion) = try await Self.start()
        defer { (diffusion.channel as? WireClient)?.close(); process.signal(SIGKILL) }
        var images: [String: Data] = [:]
        for scheduler in ["pndm", "ddim", "euler", "euler_a", "dpmpp_2m", "dpmpp_2m_karras", "lcm"] {
            let run = try await events(diffusion.textToImage(TextToImageRequest(prompt: "a cat", guidanceScale: scheduler == "lcm" ? 1 : 7.5,
                                                                                steps: 3, seed: 2, width: 32, height: 32, scheduler: scheduler)))
            // One event per UNet evaluation: PNDM's PLMS runs 3 steps as 4 (its second timestep twice).
            let progress = run.compactMap(\.progress)
            #expect(progress.count == (scheduler == "pndm" ? 4 : 3) && progress.last?.step == progress.last?.total, "\(scheduler)")
            images[scheduler] = try #require(run.last?.result?.images.first?.data)
        }
        #expect(Set(images.values).count == images.count, "each scheduler takes its own path")

        // img2img: strength 0.5 of 6 steps re-runs 3; the init image may be any size and is resized.
        let initImage = try #require(images["ddim"])
        let variant = try await events(diffusion.imageToImage(ImageToImageRequest(
            params: TextToImageRequest(prompt: "a cat", steps: 6, seed: 3, width: 48, height: 32), initImage: EncodedImage(data: initImage), strength: 0.5)))
        #expect(variant.compactMap(\.progress).map(\.total) == Array(repeating: 3, count: 3))
        #expect(pngHeader(try #require(variant.last?.result?.images.first).data) == (48, 32, 8, 2))
    }

    @Test func aDeadlineStopsTheRunWithinAStep() async throws {
        let (process, diffusion) = try await Self.start(["--max-concurrency", "1"])
        defer { (diffusion.channel as? WireClient)?.close(); process.signal(SIGKILL) }
        let long = TextToImageRequest(prompt: "a cat", steps: 150, seed: 1, width: 64, height: 64)
        let started = Date()
        do {
            _ = try await events(diffusion.textToImage(long, options: CallOptions(timeout: .milliseconds(600))))
            Issue.record("a 150-step run finished inside 600 ms")
        } catch let status as WireStatus {
            #expect(status.code == .deadlineExceeded, "\(status)")
        }
        var idle = false
        for _ in 0..<100 where !idle {
            idle = try await diffusion.status(StatusRequest()).inFlight == 1
            if !idle { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(idle && Date().timeIntervalSince(started) < 3, "the service stopped the run after the step in flight")
        // The one compute slot is free again.
        let quick = try await events(diffusion.textToImage(TextToImageRequest(prompt: "a cat", steps: 1, seed: 1, width: 32, height: 32)))
        #expect(quick.last?.result?.images.count == 1)
    }

    @Test func cancelStopsTheRunAfterTheStepInFlight() async throws {
        let (process, diffusion) = try await Self.start(["--max-concurrency", "1"])
        defer { (diffusion.channel as? WireClient)?.close(); process.signal(SIGKILL) }
        // Leaving the stream after the first progress event sends CANCEL.
        for try await event in diffusion.textToImage(TextToImageRequest(prompt: "a cat", steps: 150, seed: 1, width: 64, height: 64))
        where event.progress != nil { break }
        var idle = false
        for _ in 0..<150 where !idle {
            idle = try await diffusion.status(StatusRequest()).inFlight == 1
            if !idle { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(idle, "the run stopped after CANCEL")
        let quick = try await events(diffusion.textToImage(TextToImageRequest(prompt: "a cat", steps: 1, seed: 1, width: 32, height: 32)))
        #expect(quick.last?.result?.images.count == 1)
    }

    @Test func loadModelAtRunTimeAndUnload() async throws {
        let (process, address) = try await ChorusProcess.serve(["diffusion", "--port", "0"])
        let diffusion = DiffusionClient(try WireClient(address: address))
        defer { (diffusion.channel as? WireClient)?.close(); process.signal(SIGKILL) }
        do {
            _ = try await events(diffusion.textToImage(TextToImageRequest(prompt: "a cat")))
            Issue.record("answered without a model")
        } catch let status as WireStatus {
            #expect(status.code == .failedPrecondition && status.message.contains("diffusion"), "\(status)")
        }
        let loaded = try await diffusion.loadModel(LoadModelRequest(name: "late", path: Self.sdFolder))
        #expect(loaded.models.first?.kind == "stable-diffusion" && loaded.models.map(\.name) == ["late"])
        let run = try await events(diffusion.textToImage(TextToImageRequest(prompt: "a cat", steps: 1, seed: 1, width: 32, height: 32)))
        #expect(run.last?.result?.images.count == 1)
        do {
            _ = try await diffusion.loadModel(LoadModelRequest(path: "/nonexistent/folder"))
            Issue.record("loaded a folder that does not exist")
        } catch let status as WireStatus {
            #expect(status.code == .notFound, "\(status)")
        }
        #expect(try await diffusion.unloadModel(UnloadModelRequest(name: "late")).unloaded)
        #expect(try await diffusion.listModels(ListModelsRequest()).models.isEmpty)
    }

    @Test func badRequestsGetClearErrors() async throws {
        let (process, diffusion) = try await Self.start(["--max-pixels", "262144"])
        defer { (diffusion.channel as? WireClient)?.close(); process.signal(SIGKILL) }
        let cat = TextToImageRequest(prompt: "a cat", steps: 2, seed: 1, width: 32, height: 32)
        func with(_ change: (inout TextToImageRequest) -> Void) -> TextToImageRequest { var r = cat; change(&r); return r }
        let cases: [(() async throws -> Void, StatusCode, String)] = [
            ({ _ = try await self.events(diffusion.textToImage(with { $0.width = 65 })) }, .invalidArgument, "multiples of 8"),
            ({ _ = try await self.events(diffusion.textToImage(with { $0.width = 1024; $0.height = 1024 })) }, .invalidArgument, "--max-pixels"),
            ({ _ = try await self.events(diffusion.textToImage(with { $0.steps = 1000 })) }, .invalidArgument, "--max-steps"),
            ({ _ = try await self.events(diffusion.textToImage(with { $0.scheduler = "heun" })) }, .invalidArgument, "dpmpp_2m_karras"),
            ({ _ = try await self.events(diffusion.textToImage(with { $0.numImages = 50 })) }, .invalidArgument, "--max-images"),
            ({ _ = try await self.events(diffusion.textToImage(with { $0.guidanceScale = .nan })) }, .invalidArgument, "guidance_scale"),
            ({ _ = try await self.events(diffusion.textToImage(with { $0.promptSyntax = "compel2" })) }, .invalidArgument, "a1111, compel, plain"),
            ({ _ = try await self.events(diffusion.textToImage(with { $0.prompt = "a (cat:1.2.3)" })) }, .invalidArgument, "\"1.2.3\" at character 8 is not a number"),
            ({ _ = try await self.events(diffusion.textToImage(with { $0.negativePrompt = String(repeating: "blurry, ", count: 1_500) })) },
             .invalidArgument, "the limit is 2400"),
            ({ _ = try await self.events(diffusion.imageToImage(ImageToImageRequest(params: cat, initImage: EncodedImage(data: Data("not a png".utf8)), strength: 0.5))) },
             .invalidArgument, "init_image"),
            ({ _ = try await self.events(diffusion.imageToImage(ImageToImageRequest(params: with { $0.steps = 10 }, initImage: nil, strength: 0.5))) },
             .invalidArgument, "no init_image"),
        ]
        for (call, code, text) in cases {
            do {
                try await call()
                Issue.record("accepted a request that should fail with \(code) (\(text))")
            } catch let status as WireStatus {
                #expect(status.code == code && status.message.contains(text), "\(status) should say \(text)")
            }
        }
        let png = try #require(try await events(diffusion.textToImage(cat)).last?.result?.images.first)
        do {
            _ = try await events(diffusion.imageToImage(ImageToImageRequest(params: with { $0.steps = 10 }, initImage: png, strength: 0.05)))
            Issue.record("strength 0.05 of 10 steps re-runs nothing and should be refused")
        } catch let status as WireStatus {
            #expect(status.code == .invalidArgument && status.message.contains("re-runs no step"), "\(status)")
        }
        #expect(try await diffusion.health(HealthRequest()).state == .serving)
    }

    @Test func aRunThatWouldNotFitIsRefusedBeforeItStarts() async throws {
        let (process, diffusion) = try await Self.start(["--memory-budget-gb", "0.05"])
        defer { (diffusion.channel as? WireClient)?.close(); process.signal(SIGKILL) }
        do {
            _ = try await events(diffusion.textToImage(TextToImageRequest(prompt: "a cat", steps: 2, width: 512, height: 512, numImages: 4)))
            Issue.record("a run far above the memory budget started")
        } catch let status as WireStatus {
            #expect(status.code == .resourceExhausted && status.message.contains("GB"), "\(status)")
        }
        let small = try await events(diffusion.textToImage(TextToImageRequest(prompt: "a cat", steps: 1, width: 32, height: 32)))
        #expect(small.last?.result?.images.count == 1)
    }
}

extension StableDiffusionProcessTests {
    /// A generation the limiter refuses must be answered RESOURCE_EXHAUSTED at once: the progress
    /// stream was only finished inside the compute block, so a refused call used to hang to its deadline.
    @Test func aFullQueueRefusesAtOnce() async throws {
        let (process, diffusion) = try await Self.start(["--max-concurrency", "1", "--max-queue", "0"])
        defer { (diffusion.channel as? WireClient)?.close(); process.signal(SIGKILL) }
        // The first call holds the only slot from its first progress event until the test lets it go.
        let long = TextToImageRequest(prompt: "a cat", steps: 150, seed: 1, width: 32, height: 32)
        let first = diffusion.textToImage(long, options: CallOptions(timeout: .seconds(120)))
        var iterator = first.makeAsyncIterator()
        #expect(try await iterator.next()?.progress != nil)
        do {
            _ = try await events(diffusion.textToImage(TextToImageRequest(prompt: "a dog", steps: 2, seed: 2, width: 32, height: 32),
                                                       options: CallOptions(timeout: .seconds(60))))
            Issue.record("a second generation was accepted with the only slot held")
        } catch let status as WireStatus {
            #expect(status.code == .resourceExhausted && status.message.contains("--max-queue 0"), "\(status)")
        }
        withExtendedLifetime(iterator) {}  // releasing it cancels the first call
    }
}
