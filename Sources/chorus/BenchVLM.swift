import ArgumentParser
import ChorusLLaVA
import ChorusServiceKit
import ChorusTensor
import Foundation

/// `chorus bench vlm`: time to first token and decode tokens/s of a LLaVA-shaped model against
/// transformers on PyTorch in the same run.
struct BenchVLMCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vlm",
        abstract: "LLaVA time to first token and decode tokens/s against transformers on PyTorch.",
        discussion: """
            The model is LLaVA-shaped at a size this machine holds: a CLIP ViT-B/32 vision tower and a 12-layer, 768-wide
            Llama (12 query / 4 key-value heads, vocabulary 32064), random weights made by the peer
            (scripts/bench/vlm_peer.py make-model) since model hubs are out of reach. Both engines run the same prompt
            (BOS, 49 image tokens, 40 text tokens) and image, greedy, with a KV cache. The peer runs with .venv/bin/python
            (pip install torch==2.13.0 transformers==5.23.0 numpy).
            """)

    @Option(help: "Where the model folder is made (once) and read.")
    var modelDir = "/tmp/chorus-bench-vlm"

    @Option(help: "Threads for both engines.")
    var threads = 2

    @Option(help: "New tokens per decode measurement.")
    var tokens = 64

    func run() async throws {
        quietBenchLogging()
        if !FileManager.default.fileExists(atPath: modelDir + "/model.safetensors") {
            print("making the LLaVA-shaped folder in \(modelDir) ...")
            guard runJSON(peerPython, ["scripts/bench/vlm_peer.py", "make-model", modelDir], quietErrors: false) != nil else {
                throw ValidationError("scripts/bench/vlm_peer.py make-model failed (run from the repository root with .venv set up)")
            }
        }
        print("chorus bench vlm: CLIP ViT-B/32 + Llama 12×768 (random weights), \(threads) threads, \(tokens) new tokens, OpenBLAS kernel \(ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? "as detected")")
        let loaded = try LlavaPipeline(folder: modelDir)
        // No EOS: random weights may emit it at any step, and both engines must decode the same count.
        let pipeline = LlavaPipeline(model: loaded.model, tokenizer: loaded.tokenizer, preprocessor: loaded.preprocessor,
                                     chatTemplate: nil, eosTokenIds: [])
        let inputs = try SafeTensorsFile(path: modelDir + "/inputs.safetensors")
        let request = GenerationRequest(promptIDs: try inputs.int64s("input_ids").map(Int.init),
                                        images: [try inputs.tensor("pixel_values").storage], maxNewTokens: 1)
        // A fresh prefix cache each call: every measurement computes the whole prompt.
        let generator = LlavaGenerator(pipeline: pipeline, cachedConversations: 0)
        var long = request
        long.maxNewTokens = tokens
        let first = medianSeconds(budget: 5) { _ = try? generator.generate(request) }
        let whole = medianSeconds(budget: 10) { _ = try? generator.generate(long) }
        let ours = (ttft: first, decode: Double(tokens - 1) / (whole - first))

        let peer = runJSON(peerPython, ["scripts/bench/vlm_peer.py", "measure", modelDir, "\(threads)", "\(tokens)"], quietErrors: false)
        let peerTTFT = peer?["ttft_s"] as? Double, peerDecode = peer?["decode_tokens_per_s"] as? Double
        func cell(_ value: Double?, _ format: String) -> String {
            let text = value.map { String(format: format, $0) } ?? "-"
            return String(repeating: " ", count: max(0, 7 - text.count)) + text
        }
        print("\nmetric                    |  chorus |   torch | ratio")
        print("time to first token (ms)  | \(cell(ours.ttft * 1000, "%.1f")) | \(cell(peerTTFT.map { $0 * 1000 }, "%.1f")) | \(cell(peerTTFT.map { $0 / ours.ttft }, "%.2fx"))")
        print("decode tokens/s           | \(cell(ours.decode, "%.1f")) | \(cell(peerDecode, "%.1f")) | \(cell(peerDecode.map { ours.decode / $0 }, "%.2fx"))")
        print("peak resident memory (MB) | \(cell(Double(ProcessMemory.peakResidentBytes) / 1_048_576, "%.0f")) | \(cell(peer?["peak_rss_mb"] as? Double, "%.0f")) |")
        if peer == nil { print("(the PyTorch peer did not run: set up .venv with torch==2.13.0 and transformers)") }
    }
}

extension BenchVLMCommand: HasExamples {
    static let examples = [
        "chorus bench vlm",
    ]
}
