import ArgumentParser
import ChorusLLM
import ChorusTensor
import Foundation

/// `chorus bench llm`: prompt processing and generation tokens/s of the GGUF language models against
/// llama.cpp (llama-cpp-python) on the same file, ids and threads, in alternating rounds.
struct BenchLLMCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "llm",
        abstract: "GGUF language models: prompt processing and generation tokens/s against llama.cpp.",
        discussion: """
            Both engines run the same GGUF file (models/ from scripts/fetch-models unless --model is given), the same \
            token ids (BOS, then 1000 + (i·7919 mod 20000)) and the same threads. Prompt processing: a fresh KV cache and \
            N prompt tokens in one pass; generation: a 16-token prompt, then greedy steps one token at a time. Medians of \
            3 runs after a warm-up, each engine in turn for --rounds rounds. The peer is scripts/bench/llm_peer.py run \
            with --peer-python (llama-cpp-python builds llama.cpp from source: install it apart, e.g. \
            python3 -m venv /tmp/llamavenv && /tmp/llamavenv/bin/pip install llama-cpp-python numpy).
            """)

    @Option(name: .customLong("model"), help: "GGUF files to measure (default: SmolLM2-135M-Instruct and Gemma 3 270M under models/).")
    var models: [String] = []

    @Option(help: "Threads for both engines (Chorus splits its products over this many cores).")
    var threads = 2

    @Option(help: "Prompt lengths for prompt processing.")
    var promptTokens = "128,512"

    @Option(help: "New tokens per generation measurement.")
    var newTokens = 128

    @Option(help: "Rounds, each measuring Chorus then llama.cpp.")
    var rounds = 2

    @Option(help: "A Python with llama-cpp-python for the peer (none: Chorus alone).")
    var peerPython = "/tmp/llamavenv/bin/python"

    static func ids(_ count: Int, bos: Int?) -> [Int] {
        var out = (0..<count).map { 1000 + ($0 * 7919) % 20000 }
        if let bos, count > 0 { out[0] = bos }
        return out
    }

    func run() async throws {
        quietBenchLogging()
        let counts = promptTokens.split(separator: ",").compactMap { Int($0) }.filter { (1...4096).contains($0) }
        guard !counts.isEmpty, (1...4096).contains(newTokens), (1...10).contains(rounds) else {
            throw ValidationError("--prompt-tokens takes lengths of 1 ... 4096, --new-tokens 1 ... 4096, --rounds 1 ... 10")
        }
        let paths = models.isEmpty ? ["models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf", "models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf"] : models
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.split(separator: "\n").first { $0.hasPrefix("model name") }?
            .split(separator: ":").last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown CPU"
        print("chorus bench llm: \(cpu), \(threads) threads, prompts \(counts) tokens, \(newTokens) new tokens, \(rounds) rounds")
        let peerAvailable = FileManager.default.isExecutableFile(atPath: peerPython)
        if !peerAvailable { print("(no \(peerPython): llama.cpp is not measured; see --help)") }
        for path in paths {
            guard FileManager.default.fileExists(atPath: path) else { throw ValidationError("\(path) is missing: run scripts/fetch-models") }
            let started = Date()
            let lm = try GGUFLanguageModel(path: path)
            print("\n\(lm.name) (\(lm.architecture), \(lm.layers) layers × \(lm.width)), loaded in \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
            var ours: [String: [Double]] = [:], theirs: [String: [Double]] = [:]
            for _ in 0..<rounds {
                for count in counts {
                    let ids = Self.ids(count, bos: lm.bosTokenId)
                    let seconds = medianSeconds(budget: 0) {
                        var cache = lm.model.newCache(capacity: count + 1)
                        _ = lm.lastLogits(ids, cache: &cache)
                    }
                    ours["pp\(count)", default: []].append(Double(count) / seconds)
                }
                let prompt = Self.ids(16, bos: lm.bosTokenId)
                let tokens = newTokens
                let seconds = medianSeconds(budget: 0) {
                    var cache = lm.model.newCache(capacity: 16 + tokens + 1)
                    var last = lm.lastLogits(prompt, cache: &cache)
                    for _ in 0..<tokens {
                        let next = last.indices.max { last[$0] < last[$1] } ?? 0
                        last = lm.lastLogits([next], cache: &cache)
                    }
                }
                // The 16-token prompt is part of each run: take its time out.
                let promptSeconds = medianSeconds(budget: 0) {
                    var cache = lm.model.newCache(capacity: 17)
                    _ = lm.lastLogits(prompt, cache: &cache)
                }
                ours["tg\(newTokens)", default: []].append(Double(newTokens) / max(seconds - promptSeconds, 1e-9))
                if peerAvailable, let peer = runJSON(peerPython, ["scripts/bench/llm_peer.py", path, "\(threads)",
                                                                 counts.map(String.init).joined(separator: ","), "\(newTokens)"], quietErrors: false) {
                    for count in counts { if let v = peer["pp\(count)_tokens_per_s"] as? Double { theirs["pp\(count)", default: []].append(v) } }
                    if let v = peer["tg\(newTokens)_tokens_per_s"] as? Double { theirs["tg\(newTokens)", default: []].append(v) }
                }
            }
            print("metric       |  chorus tok/s | llama.cpp tok/s | chorus ÷ llama.cpp")
            for key in counts.map({ "pp\($0)" }) + ["tg\(newTokens)"] {
                let a = ours[key].map { $0.sorted()[$0.count / 2] }, b = theirs[key].map { $0.sorted()[$0.count / 2] }
                let ratio = a.flatMap { a in b.map { String(format: "%.2f×", a / $0) } } ?? "-"
                print(key.padding(toLength: 12, withPad: " ", startingAt: 0)
                      + String(format: " | %13.1f | %15@ | %@", a ?? 0, (b.map { String(format: "%.1f", $0) } ?? "-") as NSString, ratio as NSString))
            }
        }
    }
}

extension BenchLLMCommand: HasExamples {
    static let examples = [
        "chorus bench llm --peer-python /tmp/llamavenv/bin/python",
    ]
}
