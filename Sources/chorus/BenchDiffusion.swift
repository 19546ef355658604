import ArgumentParser
import DiffusionService
import Foundation

/// `chorus bench diffusion`: the terrain consistency UNet's one-step generation against ONNX Runtime.
struct BenchDiffusionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diffusion",
        abstract: "Terrain consistency UNet speed against ONNX Runtime, measured in the same run.",
        discussion: """
            The peer runs with .venv/bin/python (pip install onnxruntime numpy). Stable Diffusion rows come with the
            Stable Diffusion engine, which this build does not have yet.
            """)

    @Option(help: "The terrain consistency UNet.")
    var onnx = "models/terrain/terrain_consistency_unet_difficulty100.onnx"

    @Option(help: "Threads for both engines.")
    var threads = 2

    @Option(help: "Batch sizes.")
    var batches = "1,4"

    func run() async throws {
        let sizes = batches.split(separator: ",").compactMap { Int($0) }
        print("chorus bench diffusion: terrain consistency UNet (128×128, one step), \(threads) threads, OpenBLAS kernel \(ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? "as detected")")
        let bench = try TerrainBenchmark(onnx: onnx)
        let ours = sizes.map { bench.seconds(batch: $0) }
        let peer = runJSON(peerPython, ["scripts/bench/diffusion_peer.py", onnx, "\(threads)", batches], quietErrors: false)?["seconds"] as? [String: Double]
        print("batch | chorus s | onnxruntime s | ratio (peer / chorus)")
        for (batch, seconds) in zip(sizes, ours) {
            let p = peer?["\(batch)"]
            print(String(format: "%5d | %8.3f | ", batch, seconds) + (p.map { String(format: "%13.3f | %.2fx", $0, $0 / seconds) } ?? "(peer did not run: pip install onnxruntime into .venv)"))
        }
    }
}
