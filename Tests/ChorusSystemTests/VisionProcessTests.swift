import ChorusAPI
import ChorusWire
import Foundation
import Testing

/// VisionService as its own process with the tiny CLIP fixture, over the wire: embeddings against the
/// transformers reference, classification, image search with persistence across a restart, bad input.
@Suite(.serialized) struct VisionProcessTests {
    static let repository: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url
    }()
    static let clipFolder = repository.appendingPathComponent("Tests/VisionServiceTests/Fixtures/clip")
    static let png = FileManager.default.contents(atPath: clipFolder.appendingPathComponent("input_image.png").path)!
    /// transformers' outputs for the fixture's texts and image (fixtures.safetensors).
    static let textEmbedsStart: [Float] = [0.3318149, 0.17352672, -0.2783424, -0.09264516, -0.18691817, -0.14803118]
    static let imageEmbedsStart: [Float] = [0.11219416, -0.281782, 0.32410005, 0.26090607, -0.08584062, 0.03855886]
    static let logitsPerImage: [Float] = [-1.1493797, -1.1062773]
    static let texts = ["a photo of a cat", "a painting of a mountain lake at sunset"]

    /// A --models folder holding the fixture under the name "clip-tiny", and a fresh --data-dir.
    static func folders() throws -> (models: String, data: String) {
        let root = NSTemporaryDirectory() + "chorus-vision-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root + "/models", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: root + "/models/clip-tiny", withDestinationPath: clipFolder.path)
        return (root + "/models", root + "/data")
    }

    static func start(models: String, data: String) async throws -> (ChorusProcess, VisionClient) {
        let (process, address) = try await ChorusProcess.serve(["vision", "--port", "0", "--models", models, "--data-dir", data])
        return (process, VisionClient(try WireClient(address: address)))
    }

    func expectStatus(_ code: StatusCode, containing text: String, sourceLocation: SourceLocation = #_sourceLocation,
                      _ body: () async throws -> Void) async {
        do {
            try await body()
            Issue.record("expected \(code)", sourceLocation: sourceLocation)
        } catch let status as WireStatus {
            #expect(status.code == code && status.message.contains(text), "\(status)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("\(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func embeddingsAndClassificationMatchTransformers() async throws {
        let (models, data) = try Self.folders()
        let (process, vision) = try await Self.start(models: models, data: data)
        defer { (vision.channel as? WireClient)?.close(); process.signal(SIGKILL) }

        let texts = try await vision.embedTexts(EmbedTextsRequest(texts: Self.texts))
        #expect(texts.model == "clip-tiny" && texts.dimension == 32 && texts.embeddings.count == 2 && texts.tokens == 17)
        for (a, b) in zip(texts.embeddings[0].values, Self.textEmbedsStart) { #expect(abs(a - b) < 2e-4) }

        let images = try await vision.embedImages(EmbedImagesRequest(images: [EncodedImage(data: Self.png), EncodedImage(data: Self.png)]))
        // The same image twice in one batch: the same embedding, up to rounding. Not to the bit: sgemm rounds
        // a row differently depending on where in the batch (which micro-tile) it falls.
        #expect(images.embeddings.count == 2)
        for (a, b) in zip(images.embeddings[0].values, images.embeddings[1].values) { #expect(abs(a - b) < 1e-6) }
        for (a, b) in zip(images.embeddings[0].values, Self.imageEmbedsStart) { #expect(abs(a - b) < 5e-3) }

        // "{}" makes each label its own prompt, so the logits are the reference's logits_per_image.
        let classified = try await vision.classify(ClassifyRequest(image: EncodedImage(data: Self.png), labels: Self.texts, templates: ["{}"]))
        let byLabel = Dictionary(uniqueKeysWithValues: classified.labels.map { ($0.label, $0) })
        for (label, logit) in zip(Self.texts, Self.logitsPerImage) { #expect(abs(byLabel[label]!.logit - logit) < 0.05) }
        #expect(abs(classified.labels.map(\.probability).reduce(0, +) - 1) < 1e-5)
        #expect(classified.labels[0].probability >= classified.labels[1].probability)

        let top = try await vision.classify(ClassifyRequest(image: EncodedImage(data: Self.png), labels: ["cat", "dog", "lake"], topK: 1))
        #expect(top.labels.count == 1)
    }

    @Test func imageSearchPersistsAcrossARestart() async throws {
        let (models, data) = try Self.folders()
        var (process, vision) = try await Self.start(models: models, data: data)

        // Known vectors give known rankings.
        let axes = (0..<4).map { i in Embedding(values: (0..<32).map { $0 == i ? 1 : 0 }) }
        let added = try await vision.indexAdd(IndexAddRequest(index: "axes", ids: ["e0", "e1", "e2", "e3"], vectors: axes))
        #expect(added.added == 4 && added.size == 4)
        var query = Embedding(values: (0..<32).map { [0.2, 0.9, 0.1, 0.5][safe: $0] ?? 0 })
        let hits = try await vision.indexSearch(IndexSearchRequest(index: "axes", vector: query, topK: 3))
        #expect(hits.hits.map(\.id) == ["e1", "e3", "e0"])

        // Images are embedded by the model; the same image finds itself with cosine 1.
        _ = try await vision.indexAdd(IndexAddRequest(index: "photos", ids: ["fixture"], images: [EncodedImage(data: Self.png)]))
        let found = try await vision.indexSearch(IndexSearchRequest(index: "photos", image: EncodedImage(data: Self.png)))
        #expect(found.hits.first?.id == "fixture" && abs((found.hits.first?.score ?? 0) - 1) < 1e-4)
        let byText = try await vision.indexSearch(IndexSearchRequest(index: "photos", text: "a photo of a cat"))
        #expect(byText.hits.count == 1)

        let deleted = try await vision.indexDelete(IndexDeleteRequest(index: "axes", ids: ["e3"]))
        #expect(deleted.deleted == 1 && deleted.size == 3)

        // Restart on the same data folder: everything is still there.
        (vision.channel as? WireClient)?.close()
        process.signal(SIGTERM)
        _ = await process.waitForExit()
        (process, vision) = try await Self.start(models: models, data: data)
        defer { (vision.channel as? WireClient)?.close(); process.signal(SIGKILL) }
        let again = try await vision.indexSearch(IndexSearchRequest(index: "axes", vector: query, topK: 10))
        #expect(again.hits.map(\.id) == ["e1", "e0", "e2"])
        let photo = try await vision.indexSearch(IndexSearchRequest(index: "photos", image: EncodedImage(data: Self.png)))
        #expect(photo.hits.first?.id == "fixture")

        // Dimension mismatch and unknown index are the caller's errors.
        query = Embedding(values: [1, 2, 3])
        await expectStatus(.invalidArgument, containing: "dimension 32") {
            _ = try await vision.indexSearch(IndexSearchRequest(index: "axes", vector: query))
        }
        await expectStatus(.notFound, containing: "no index named 'nope'") {
            _ = try await vision.indexSearch(IndexSearchRequest(index: "nope", text: "x"))
        }
        let gone = try await vision.indexDelete(IndexDeleteRequest(index: "photos"))
        #expect(gone.deleted == 1 && gone.size == 0)
    }

    @Test func badInputGetsClearErrorsAndTheServiceStaysUp() async throws {
        let (models, data) = try Self.folders()
        let (process, vision) = try await Self.start(models: models, data: data)
        defer { (vision.channel as? WireClient)?.close(); process.signal(SIGKILL) }

        await expectStatus(.invalidArgument, containing: "corrupt PNG") {
            _ = try await vision.embedImages(EmbedImagesRequest(images: [EncodedImage(data: Self.png.prefix(200))]))
        }
        await expectStatus(.invalidArgument, containing: "image 1: unsupported image format") {
            _ = try await vision.embedImages(EmbedImagesRequest(images: [EncodedImage(data: Self.png), EncodedImage(data: Data("GIF89a....".utf8))]))
        }
        await expectStatus(.invalidArgument, containing: "100000×100000") {
            _ = try await vision.embedImages(EmbedImagesRequest(images: [EncodedImage(data: Self.hugePNGHeader())]))
        }
        await expectStatus(.invalidArgument, containing: "no labels") {
            _ = try await vision.classify(ClassifyRequest(image: EncodedImage(data: Self.png), labels: []))
        }
        await expectStatus(.invalidArgument, containing: "10000 labels; the limit is 1000") {
            _ = try await vision.classify(ClassifyRequest(image: EncodedImage(data: Self.png), labels: (0..<10_000).map { "label \($0)" }))
        }
        await expectStatus(.invalidArgument, containing: "has no {}") {
            _ = try await vision.classify(ClassifyRequest(image: EncodedImage(data: Self.png), labels: ["cat"], templates: ["a photo"]))
        }
        await expectStatus(.invalidArgument, containing: "exactly one query") {
            _ = try await vision.indexSearch(IndexSearchRequest(index: "x", text: "a", image: EncodedImage(data: Self.png)))
        }
        await expectStatus(.invalidArgument, containing: "index name") {
            _ = try await vision.indexAdd(IndexAddRequest(index: "../escape", ids: ["a"], vectors: [Embedding(values: [1])]))
        }
        await expectStatus(.notFound, containing: "no CLIP model named 'big'") {
            _ = try await vision.embedTexts(EmbedTextsRequest(model: "big", texts: ["a"]))
        }
        await expectStatus(.failedPrecondition, containing: "LLaVA") {
            _ = try await vision.caption(CaptionRequest(image: EncodedImage(data: Self.png)))
        }
        // Still serving.
        let texts = try await vision.embedTexts(EmbedTextsRequest(texts: ["still here"]))
        #expect(texts.embeddings.count == 1)
    }

    /// 16 callers at once, each one image: all get the embedding a lone call gets.
    @Test func concurrentCallersShareBatches() async throws {
        let (models, data) = try Self.folders()
        let (process, vision) = try await Self.start(models: models, data: data)
        defer { (vision.channel as? WireClient)?.close(); process.signal(SIGKILL) }
        let alone = try await vision.embedImages(EmbedImagesRequest(images: [EncodedImage(data: Self.png)])).embeddings[0].values
        let results = try await withThrowingTaskGroup(of: [Float].self) { group in
            for _ in 0..<16 {
                group.addTask { try await vision.embedImages(EmbedImagesRequest(images: [EncodedImage(data: Self.png)])).embeddings[0].values }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.count == 16)
        for values in results { #expect(zip(values, alone).allSatisfy { abs($0 - $1) < 1e-5 }) }
    }

    /// A PNG whose header claims 100000×100000 pixels: refused from the header, nothing allocated.
    static func hugePNGHeader() -> Data {
        var ihdr: [UInt8] = Array("IHDR".utf8)
        for value in [UInt32(100_000), UInt32(100_000)] { ihdr += withUnsafeBytes(of: value.bigEndian, Array.init) }
        ihdr += [8, 2, 0, 0, 0]
        var bytes: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13] + ihdr
        bytes += withUnsafeBytes(of: crc32(ihdr).bigEndian, Array.init)
        return Data(bytes + [0, 0, 0, 0] + Array("IEND".utf8) + [0xAE, 0x42, 0x60, 0x82])
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
