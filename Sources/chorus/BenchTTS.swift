import ArgumentParser
import ChorusAPI
import ChorusServiceKit
import ChorusWire
import Foundation
import Logging
import SpeechService

/// `chorus bench tts`: Piper voice speed (times real time) against ONNX Runtime on the same phoneme ids, and
/// the time to the first audio chunk of a Synthesize call over the wire.
struct BenchTTSCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tts",
        abstract: "Text-to-speech speed against ONNX Runtime running the same Piper voice, measured in the same run.",
        discussion: """
            Both engines get the same phoneme ids (espeak-ng runs once, untimed) and the voice's default scales.
            The peer runs with .venv/bin/python (pip install onnxruntime numpy). First-chunk latency is measured
            through a Synthesize call on loopback, phonemisation included.
            """)

    @Option(help: "The Piper voice (.onnx with its .onnx.json beside it).")
    var voice = "models/piper/en_US-joe-medium.onnx"

    @Option(help: "Threads for both engines.")
    var threads = 2

    static let short = "Hello world, this is a test of the speech service."
    static let long = """
        The quick brown fox jumps over the lazy dog. Speech synthesis turns written text into audio. \
        This service runs every model natively in Swift. Each sentence is streamed as soon as it is ready. \
        Playback can start before the whole paragraph is done. The voice comes from the Piper project. \
        Its phonemes come from espeak next generation. The decoder is a HiFi generator network. \
        Latency matters as much as throughput here. Thank you for listening to this benchmark.
        """

    func run() async throws {
        quietBenchLogging()
        let bench = try TTSBenchmark(onnx: voice)
        let texts = [("1 sentence", Self.short), ("10 sentences", Self.long)]
        let idsFile = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-bench-tts-ids.json")
        try bench.writeIDs(texts, to: idsFile)
        print("chorus bench tts: \((voice as NSString).lastPathComponent), \(threads) threads, OpenBLAS kernel \(ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? "as detected")")
        let ours = texts.map { bench.measure($0.1) }
        let peer = runJSON(peerPython, ["scripts/bench/tts_peer.py", voice, idsFile.path, "\(threads)"], quietErrors: false)?["texts"] as? [String: [String: Double]]
        print("text          | chorus s  x real time  first s | onnxruntime s  x real time  first s | ratio (x real time)")
        for ((name, _), result) in zip(texts, ours) {
            var line = name.padding(toLength: 13, withPad: " ", startingAt: 0)
            line += String(format: " | %8.3f %11.1f %8.3f", result.seconds, result.audioSeconds / result.seconds, result.firstSeconds)
            if let p = peer?[name], let s = p["seconds"], let a = p["audio_seconds"], let f = p["first_seconds"] {
                line += String(format: " | %13.3f %12.1f %8.3f | %.2fx", s, a / s, f, (result.audioSeconds / result.seconds) / (a / s))
            } else {
                line += " | (peer did not run: pip install onnxruntime into .venv)"
            }
            print(line)
        }
        for text in ["Hello world.", Self.short] {
            let first = try await bench.firstChunkOverTheWire(text)
            print("first audio chunk over the wire (\"\(text)\", \(String(format: "%.1f", first.audioSeconds)) s of audio): "
                  + String(format: "p50 %.0f ms, worst %.0f ms of %d calls", first.p50 * 1000, first.worst * 1000, first.count))
        }
    }
}
