import ArgumentParser
import ChorusAPI
import ChorusCLIP
import ChorusMedia
import ChorusServiceKit
import ChorusTensor
import ChorusWire
import Foundation
import Logging
import VisionService

/// `chorus bench clip`: CLIP ViT-B/32 images/s and texts/s against transformers on PyTorch in the same
/// run, and what dynamic batching gains for many single-image callers over the wire.
struct BenchCLIPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clip",
        abstract: "CLIP embedding throughput against transformers on PyTorch, and the dynamic batching gain.",
        discussion: """
            The model is a full-size ViT-B/32 CLIPModel with random weights at the real shapes, made by the peer
            (scripts/bench/clip_peer.py make-model) since model hubs are out of reach: speed does not depend on the
            values. The peer runs with .venv/bin/python (pip install torch==2.13.0 transformers==5.23.0 numpy) and
            stays loaded (clip_peer.py serve): the engines take turns for --rounds rounds, each row shows the
            medians over the rounds, and the ratio is the median of each round's ratio, with their range.
            """)

    @Option(help: "Where the ViT-B/32 folder is made (once) and read.")
    var modelDir = "/tmp/chorus-bench-clip-b32"

    @Option(help: "Batch sizes.")
    var batches = "1,8,32"

    @Option(help: "Threads for both engines.")
    var threads = 2

    @Option(help: "Concurrent single-image callers for the dynamic batching measurement.")
    var callers = 16

    @Option(help: "Seconds each dynamic batching configuration runs.")
    var seconds = 8.0

    @Option(help: "Rounds in which Chorus and PyTorch take turns (about 2 s each per batch and kind).")
    var rounds = 3

    func run() async throws {
        quietBenchLogging()
        let sizes = batches.split(separator: ",").compactMap { Int($0) }
        if !FileManager.default.fileExists(atPath: modelDir + "/model.safetensors") {
            print("making the ViT-B/32 folder in \(modelDir) ...")
            guard runJSON(peerPython, ["scripts/bench/clip_peer.py", "make-model", modelDir], quietErrors: false) != nil else {
                throw ValidationError("scripts/bench/clip_peer.py make-model failed (run from the repository root with .venv set up)")
            }
        }
        print("chorus bench clip: ViT-B/32 (random weights), \(threads) threads, OpenBLAS kernel \(ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? "as detected")")
        let pipeline = try CLIPPipeline(folder: modelDir)
        let model = pipeline.model
        // Turns, not one engine's whole run then the other's: this machine's speed drifts by ±20% over a
        // minute, as much as the difference being measured. The ratio is the median of the rounds' ratios.
        let peer = PeerSession(peerPython, ["scripts/bench/clip_peer.py", "serve", modelDir, "\(threads)"])
        var generator = SplitMix64(seed: 1)
        var ours: [String: [Double]] = [:], theirs: [String: [Double]] = [:]
        for round in 1...max(1, rounds) {
            for batch in sizes {
                let pixels = Tensor(shape: [batch, 3, 224, 224], storage: (0..<(batch * 3 * 224 * 224)).map { _ in Float(generator.uniform()) * 4 - 2 })
                let ids = (0..<batch).map { _ in [49406] + (0..<14).map { _ in Int(generator.next() % 40000) } + [49407] }
                for kind in ["images", "texts"] {
                    let key = "\(kind) \(batch)"
                    let chorus = Double(batch) / medianSeconds(budget: 2) {
                        _ = kind == "images" ? model.imageEmbeddings(pixels) : model.textEmbeddings(ids: ids)
                    }
                    ours[key, default: []].append(chorus)
                    let torch = peer?.ask(key)?["per_s"] as? Double
                    if let torch { theirs[key, default: []].append(torch) }
                    print("  round \(round), \(key): " + String(format: "chorus %.1f/s, torch ", chorus)
                          + (torch.map { String(format: "%.1f/s (%.2fx)", $0, chorus / $0) } ?? "did not run"))
                }
            }
        }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        func cells(_ key: String) -> String {
            let chorus = ours[key]!
            guard let torch = theirs[key], torch.count == chorus.count else { return String(format: "%14.1f |             - | -", median(chorus)) }
            let ratios = zip(chorus, torch).map { $0 / $1 }
            return String(format: "%14.1f | %13.1f | %.2fx (%.2f–%.2f)", median(chorus), median(torch), median(ratios), ratios.min()!, ratios.max()!)
        }
        print("\nbatch | chorus images/s | torch images/s | ratio (range of rounds) || chorus texts/s | torch texts/s | ratio (range of rounds)")
        for batch in sizes {
            print(String(format: "%5d | ", batch) + cells("images \(batch)") + " || " + cells("texts \(batch)"))
        }
        if peer == nil || theirs.isEmpty { print("(the PyTorch peer did not run: set up .venv with torch==2.13.0 and transformers)") }

        print("\ndynamic batching: \(callers) callers, one PNG each per call, over the wire (in-process service)")
        let png = try ImageCodec.encodePNG(Image(width: 224, height: 224, channels: 3,
                                                             pixels: (0..<(224 * 224 * 3)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }))
        var rates: [Double] = []
        for window in [0.0, 4.0] {
            let rate = try await callersPerSecond(windowMs: window, png: Data(png))
            rates.append(rate)
            print(String(format: "  --batch-window-ms %.0f: %.1f images/s", window, rate))
        }
        print(String(format: "  gain: %.2fx", rates[1] / rates[0]))
    }

    private func callersPerSecond(windowMs: Double, png: Data) async throws -> Double {
        let logger = Logger(label: "bench")
        let runtime = ServiceRuntime(options: .init(service: "vision", modelsDirectory: modelDir, maxConcurrency: 2, maxQueue: 256), logger: logger)
        let settings = VisionServer.Settings(batchWindow: .microseconds(Int64(windowMs * 1000)), maxBatch: 32)
        let server = WireServer(configuration: .init(port: 0), routes: try VisionServer(runtime: runtime, settings: settings).routes, logger: logger)
        let port = try await server.start()
        let client = VisionClient(WireClient(host: "127.0.0.1", port: port))
        defer { (client.channel as? WireClient)?.close() }
        let request = EmbedImagesRequest(images: [EncodedImage(data: png)])
        _ = try await client.embedImages(request)
        let deadline = Date().addingTimeInterval(seconds)
        let started = Date()
        let done = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<callers {
                group.addTask {
                    var count = 0
                    while Date() < deadline {
                        _ = try await client.embedImages(request)
                        count += 1
                    }
                    return count
                }
            }
            return try await group.reduce(0, +)
        }
        let rate = Double(done) / Date().timeIntervalSince(started)
        await server.close()
        return rate
    }

    private func pad(_ text: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - text.count)) + text }
    private func format(_ value: Double?) -> String { value.map { String(format: "%.1f", $0) } ?? "-" }
    private func ratio(_ ours: Double, _ peer: Double?) -> String { peer.map { String(format: "%.2fx", ours / $0) } ?? "-" }
}

extension BenchCLIPCommand: HasExamples {
    static let examples = [
        "chorus bench clip --seconds 4",
    ]
}
