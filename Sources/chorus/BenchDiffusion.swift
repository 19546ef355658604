import ArgumentParser
import ChorusServiceKit
import Foundation
import ChorusStableDiffusion
import ChorusTerrain

/// `chorus bench diffusion`: the terrain consistency UNet against ONNX Runtime, and Stable Diffusion 1.5's UNet
/// step and VAE decode against diffusers on PyTorch, each measured in the same run.
struct BenchDiffusionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diffusion",
        abstract: "Diffusion speed against ONNX Runtime (terrain) and diffusers on PyTorch (Stable Diffusion 1.5), in the same run.",
        discussion: """
            The Stable Diffusion rows use an SD 1.5-shaped diffusers folder with random weights at the published
            shapes, made once by the peer (scripts/bench/sd_peer.py make) since model hubs are out of reach: speed
            does not depend on the values. A UNet step is one guided evaluation (batch 2: unconditional and
            conditional). The peers run with .venv/bin/python (pip install onnxruntime numpy torch==2.13.0
            diffusers==0.42.1 transformers==5.23.0).
            """)

    @Option(help: "The terrain consistency UNet.")
    var onnx = "models/terrain/terrain_consistency_unet_difficulty100.onnx"

    @Option(help: "Threads for both engines.")
    var threads = 2

    @Option(help: "Terrain batch sizes.")
    var batches = "1,4"

    @Option(help: "Terrain rounds: each is about 4 s of Chorus, then about 4 s of ONNX Runtime, per batch size.")
    var rounds = 3

    @Option(help: "Stable Diffusion rows: any of unet512, unet256, vae512, cnet512 (a UNet step with a ControlNet); empty for none.")
    var sdRows = "unet256,unet512,vae512,cnet512"

    @Option(help: "Stable Diffusion rounds: each times every row in Chorus, then in diffusers (a fresh peer process per row and round).")
    var sdRounds = 2

    @Option(help: "Where the SD 1.5-shaped folder is made (once) and read.")
    var sdFolder = "/tmp/chorus-bench-sd15"

    @Flag(help: "Skip the terrain rows.")
    var noTerrain = false

    func run() async throws {
        if !noTerrain { try terrain() }
        let rows = sdRows.split(separator: ",").map(String.init)
        if !rows.isEmpty { try stableDiffusion(rows) }
    }

    /// Rounds of Chorus and ONNX Runtime alternating per batch size; the ratio is the median of the rounds'
    /// ratios, each from two windows a few seconds apart.
    func terrain() throws {
        let sizes = batches.split(separator: ",").compactMap { Int($0) }
        print("chorus bench diffusion: terrain consistency UNet (128×128, one step), \(threads) threads, OpenBLAS kernel \(ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? "as detected"), \(rounds) alternating rounds")
        let bench = try TerrainBenchmark(onnx: onnx)
        let peer = PeerSession(peerPython, ["scripts/bench/diffusion_peer.py", onnx, "\(threads)", "--serve"])
        var ours: [Int: [Double]] = [:], theirs: [Int: [Double]] = [:]
        for round in 1...max(1, rounds) {
            for batch in sizes {
                let chorus = bench.seconds(batch: batch)
                let onnxRuntime = peer?.ask("\(batch)")?["seconds"] as? Double
                ours[batch, default: []].append(chorus)
                if let onnxRuntime { theirs[batch, default: []].append(onnxRuntime) }
                print(String(format: "  round %d, batch %d: chorus %.3f s, onnxruntime ", round, batch, chorus)
                      + (onnxRuntime.map { String(format: "%.3f s (%.2fx)", $0, $0 / chorus) } ?? "did not run"))
            }
        }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        print("batch | chorus s | onnxruntime s | ratio (peer / chorus, median of rounds) | range of rounds")
        for batch in sizes {
            let chorus = ours[batch]!
            guard let onnxRuntime = theirs[batch], onnxRuntime.count == chorus.count else {
                print(String(format: "%5d | %8.3f | (peer did not run: pip install onnxruntime into .venv)", batch, median(chorus)))
                continue
            }
            let ratios = zip(onnxRuntime, chorus).map { $0 / $1 }
            print(String(format: "%5d | %8.3f | %13.3f | %.2fx | %.2f–%.2fx", batch, median(chorus), median(onnxRuntime), median(ratios),
                         ratios.min()!, ratios.max()!))
        }
    }

    func stableDiffusion(_ rows: [String]) throws {
        let known = ["unet512", "unet256", "vae512", "cnet512"]
        guard rows.allSatisfy(known.contains) else { throw ValidationError("--sd-rows takes \(known.joined(separator: ", "))") }
        if !FileManager.default.fileExists(atPath: sdFolder + "/model_index.json")
            || (rows.contains("cnet512") && !FileManager.default.fileExists(atPath: sdFolder + "/controlnet/config.json")) {
            print("making the SD 1.5-shaped folder in \(sdFolder) (about 4 GB) ...")
            guard runJSON(peerPython, ["scripts/bench/sd_peer.py", "make", sdFolder], quietErrors: false) != nil else {
                throw ValidationError("scripts/bench/sd_peer.py make failed: pip install torch==2.13.0 diffusers==0.42.1 transformers==5.23.0 into .venv")
            }
        }
        print("chorus bench diffusion: Stable Diffusion 1.5 shapes (random weights), \(threads) threads, OpenBLAS kernel \(ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? "as detected"), \(max(1, sdRounds)) alternating rounds")
        let bench = try StableDiffusionBenchmark(folder: sdFolder)
        let labels = ["unet512": "UNet step 512×512 (batch 2)", "unet256": "UNet step 256×256 (batch 2)", "vae512": "VAE decode 512×512",
                      "cnet512": "UNet + ControlNet step 512×512 (batch 2)"]
        // Alternating rounds: Chorus, then the peer, row by row; the ratio is the median of the rounds' ratios.
        var ours: [String: [Double]] = [:], theirs: [String: [Double]] = [:]
        var peerMemory: Double?
        for round in 1...max(1, sdRounds) {
            for row in rows {
                let chorus: Double
                switch row {
                case "unet512": chorus = bench.unetStepSeconds(size: 512)
                case "unet256": chorus = bench.unetStepSeconds(size: 256)
                case "cnet512": chorus = try bench.controlNetStepSeconds(size: 512, controlNetFolder: sdFolder + "/controlnet")
                default: chorus = bench.vaeDecodeSeconds(size: 512)
                }
                ours[row, default: []].append(chorus)
                let peer = runJSON(peerPython, ["scripts/bench/sd_peer.py", "bench", sdFolder, "\(threads)", row], quietErrors: false)
                let diffusers = (peer?["seconds"] as? [String: Double])?[row]
                if let diffusers { theirs[row, default: []].append(diffusers) }
                if let memory = peer?["peak_rss_mib"] as? Double { peerMemory = max(peerMemory ?? 0, memory) }
                print(String(format: "  round %d, %@: chorus %.2f s, diffusers ", round, row, chorus)
                      + (diffusers.map { String(format: "%.2f s (%.2fx)", $0, $0 / chorus) } ?? "did not run"))
            }
        }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        print("row | chorus s | diffusers (PyTorch) s | ratio (peer / chorus, median of rounds) | range of rounds")
        for row in rows {
            let chorus = ours[row]!
            guard let diffusers = theirs[row], diffusers.count == chorus.count else {
                print(String(format: "%@ | %8.2f | (peer did not run)", labels[row]!, median(chorus)))
                continue
            }
            let ratios = zip(diffusers, chorus).map { $0 / $1 }
            print(String(format: "%@ | %8.2f | %8.2f | %.2fx | %.2f–%.2fx", labels[row]!, median(chorus), median(diffusers), median(ratios),
                         ratios.min()!, ratios.max()!))
        }
        print(String(format: "peak resident memory: chorus %.0f MB", Double(ProcessMemory.peakResidentBytes) / 1e6) + (peerMemory.map { String(format: ", diffusers %.0f MB", $0 * 1.048576) } ?? ""))
    }
}

extension BenchDiffusionCommand: HasExamples {
    static let examples = [
        "chorus bench diffusion --sd-rows \"\" --rounds 2     # terrain only",
    ]
}
