import ArgumentParser
import ChorusMedia
import ChorusTensor
import Foundation

/// `chorus bench kernels`: sgemm at transformer shapes, conv2d, attention and the Whisper mel against
/// numpy and transformers run in the same invocation (scripts/bench/kernels_peer.py).
struct BenchKernelsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "Kernel speed against numpy and transformers, measured in the same run.",
        discussion: """
            The peer runs with .venv/bin/python when it exists (scripts/bench-setup makes it), else python3;
            transformers is needed for the mel peer. OPENBLAS_CORETYPE is left as the environment sets it;
            the kernel OpenBLAS chose is printed.
            """)

    @Option(help: "Repetitions per kernel (the best time counts).")
    var repetitions = 10

    @Option(help: "Python for the peer.")
    var python: String?

    func run() async throws {
        let core = BLASInfo.kernel
        let environment = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? "unset"
        print("\(cpuName())")
        print("OpenBLAS \(BLASInfo.configuration); kernel \(core) (OPENBLAS_CORETYPE=\(environment)); \(BLASInfo.threading)")
        let peer = runPeer()

        var rows: [(String, String, Double, Double?, String)] = []  // kernel, shape, ours (s), peer (s), extra
        for (m, k, n) in [(1500, 384, 1536), (77, 512, 2048), (4096, 320, 1280)] {
            let a = Tensor(shape: [m, k], storage: (0..<(m * k)).map { Float(($0 * 7) % 13) * 0.1 - 0.6 })
            let b = Tensor(shape: [k, n], storage: (0..<(k * n)).map { Float(($0 * 5) % 11) * 0.1 - 0.5 })
            var c = [Float](repeating: 0, count: m * n)
            let raw = best {
                BLAS.serialSgemm(m: m, n: n, k: k, a: a.storage, lda: k, b: b.storage, ldb: n, c: &c, ldc: n)
            }
            let weight = Tensor(shape: [n, k], storage: b.storage)
            let bias = Tensor(zeros: [n])
            let linear = best { _ = MatMul.linear(a, weight: weight, bias: bias) }
            let shape = "\(m)x\(k)x\(n)"
            let flops = 2.0 * Double(m * k * n)
            rows.append(("sgemm", shape, raw, peer["sgemm \(shape)"], String(format: "%.0f GFLOP/s", flops / raw / 1e9)))
            rows.append(("linear+bias", shape, linear, peer["sgemm \(shape)"],
                         String(format: "%.0f GFLOP/s, %.0f%% of raw sgemm", flops / linear / 1e9, raw / linear * 100)))
        }

        // Linears with a packed weight against the same linear through sgemm, taking turns: ViT-B/32 at
        // batch 8 (400 rows) and a batch of 8 short CLIP prompts (80 rows).
        for (m, k, n) in [(400, 768, 768), (400, 768, 3072), (400, 3072, 768), (80, 512, 2048)] {
            let x = Tensor(shape: [m, k], storage: (0..<(m * k)).map { Float(($0 * 7) % 13) * 0.1 - 0.6 })
            let plain = Linear(weight: Tensor(shape: [n, k], storage: (0..<(n * k)).map { Float(($0 * 5) % 11) * 0.01 - 0.05 }),
                               bias: Tensor(zeros: [n]))
            let packed = plain.packedForProducts()
            guard packed.packed != nil else {
                print("(packed linear: models pack only on AVX-512 CPUs (CHORUS_PACKED_GEMM=avx2 forces the AVX2 block), or CHORUS_PACKED_GEMM=0)")
                break
            }
            let (viaSgemm, viaPacked) = inTurns({ _ = plain(x) }, { _ = packed(x) })
            let shape = "\(m)x\(k)x\(n)", flops = 2.0 * Double(m * k * n)
            rows.append(("linear packed", shape, viaPacked, nil,
                         String(format: "%.0f GFLOP/s, %.2fx the sgemm linear (%.0f GFLOP/s), in turns", flops / viaPacked / 1e9,
                                viaSgemm / viaPacked, flops / viaSgemm / 1e9)))
        }

        // Int8 weights (a scale per row; the input quantized per row and 128 values) against the float32 linear, in turns, at
        // Whisper's shapes: tiny's encoder MLP over a 30 s window, base's decoder MLP for 1 and 5 rows (greedy,
        // beam 5), and base's vocabulary projection for 5 rows. Few rows compare with the halves a decoder keeps.
        for (m, k, n) in [(1500, 384, 1536), (1500, 1536, 384), (1500, 512, 2048), (1, 512, 2048), (5, 512, 2048), (5, 512, 51865)] {
            let x = Tensor(shape: [m, k], storage: (0..<(m * k)).map { Float(($0 * 7) % 13) * 0.1 - 0.6 })
            // Values a half holds exactly, as a CTranslate2 float16 checkpoint's are, so few rows can use halves.
            var plain = Linear(weight: Tensor(shape: [n, k], storage: (0..<(n * k)).map { Float(Float16(Float(($0 * 5) % 11) * 0.01 - 0.05)) }),
                               bias: Tensor(zeros: [n]))
            if m <= HalfMatrix.rowsWorthIt { plain = plain.keepingHalves(when: true) }
            let int8 = plain.quantizedToInt8()
            let (viaFloat, viaInt8) = inTurns({ _ = plain(x) }, { _ = int8(x) })
            let shape = "\(m)x\(k)x\(n)", flops = 2.0 * Double(m * k * n)
            rows.append(("linear int8", shape, viaInt8, nil,
                         String(format: "%.0f GOP/s, %.2fx the float32 linear (%@, %.0f GFLOP/s), in turns; %@", flops / viaInt8 / 1e9,
                                viaFloat / viaInt8, plain.halves != nil ? "halves" : "sgemm", flops / viaFloat / 1e9,
                                int8.isInt8 ? "VNNI" : "float32: no VNNI at this level")))
        }

        let x = Tensor(shape: [1, 64, 64, 64], storage: (0..<(64 * 64 * 64)).map { Float($0 % 17) * 0.05 })
        let w = Tensor(shape: [64, 64, 3, 3], storage: (0..<(64 * 64 * 9)).map { Float($0 % 19) * 0.01 - 0.09 })
        let conv = best { _ = Convolution.conv2d(x, weight: w, options: Conv2DOptions(padding: (1, 1))) }
        var gemm = [Float](repeating: 0, count: 64 * 4096)
        let cols = [Float](repeating: 0.5, count: 576 * 4096)
        let convGemm = best {
            BLAS.serialSgemm(m: 64, n: 4096, k: 576, a: w.storage, lda: 576, b: cols, ldb: 4096, c: &gemm, ldc: 4096)
        }
        let convFlops = 2.0 * 64 * 64 * 64 * 64 * 9
        rows.append(("conv2d", "3x3 64->64 at 64x64", conv, peer["conv2d 3x3 64->64 at 64x64"],
                     String(format: "%.0f GFLOP/s, %.0f%% of sgemm at its GEMM shape", convFlops / conv / 1e9, convGemm / conv * 100)))

        let q = Tensor(shape: [1, 1500, 512], storage: (0..<(1500 * 512)).map { Float($0 % 23) * 0.01 })
        let attention = best { _ = Attention.attend(query: q, key: q, value: q, heads: 8) }
        rows.append(("attention", "8 heads x 1500 x 64", attention, peer["attention 8 heads x 1500 x 64"], ""))

        let mel = try WhisperMel()
        let audio = (0..<(16000 * 30)).map { Float(sin(Double($0) * 0.05)) * 0.1 }
        let melTime = best { _ = mel.logMel(audio) }
        rows.append(("mel", "30 s, 80 bins", melTime, peer["mel 30 s, 80 bins"], "peer: transformers WhisperFeatureExtractor"))

        print("")
        print("kernel        shape                    chorus ms    peer ms   speed-up  notes")
        for (kernel, shape, ours, theirs, note) in rows {
            let peerText = theirs.map { String(format: "%9.2f", $0 * 1000) } ?? "        -"
            let ratio = theirs.map { String(format: "%8.2fx", $0 / ours) } ?? "        -"
            print("\(kernel.padding(toLength: 13, withPad: " ", startingAt: 0)) \(shape.padding(toLength: 24, withPad: " ", startingAt: 0)) \(String(format: "%9.2f", ours * 1000)) \(peerText) \(ratio)  \(note)")
        }
        print("(peer = numpy for sgemm, conv2d (im2col + matmul), attention; speed-up = peer time / chorus time)")
    }

    /// The best times of two ways of computing one thing, measured in three turns each.
    private func inTurns(_ first: () -> Void, _ second: () -> Void) -> (Double, Double) {
        var times = (Double.infinity, Double.infinity)
        for _ in 0..<3 {
            times.0 = min(times.0, best(first))
            times.1 = min(times.1, best(second))
        }
        return times
    }

    private func best(_ body: () -> Void) -> Double {
        body()
        var fastest = Double.infinity
        for _ in 0..<repetitions {
            let start = DispatchTime.now().uptimeNanoseconds
            body()
            fastest = min(fastest, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return fastest
    }

    /// "kernel shape" → best seconds, from the Python peer; empty (with a note) when it cannot run.
    private func runPeer() -> [String: Double] {
        let interpreter = python ?? (FileManager.default.isExecutableFile(atPath: ".venv/bin/python") ? ".venv/bin/python" : "/usr/bin/env")
        let script = "scripts/bench/kernels_peer.py"
        guard FileManager.default.fileExists(atPath: script) else {
            print("(no \(script) here: run from the repository root for the peer numbers)")
            return [:]
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: interpreter)
        process.arguments = (interpreter == "/usr/bin/env" ? ["python3"] : []) + [script, "\(repetitions)"]
        let pipe = Pipe()
        process.standardOutput = pipe
        do { try process.run() } catch {
            print("(cannot run the peer: \(error))")
            return [:]
        }
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        var results: [String: Double] = [:]
        for line in String(decoding: output, as: UTF8.self).split(separator: "\n") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { continue }
            if let error = object["error"] as? String { print("(peer: \(error))") }
            if let kernel = object["kernel"] as? String, let shape = object["shape"] as? String, let seconds = object["seconds"] as? Double {
                results["\(kernel) \(shape)"] = seconds
            }
        }
        return results
    }
}

extension BenchKernelsCommand: HasExamples {
    static let examples = [
        "chorus bench kernels",
    ]
}
