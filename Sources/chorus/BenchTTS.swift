import ArgumentParser
import ChorusAPI
import ChorusServiceKit
import ChorusWire
import Foundation
import Logging
import ChorusVITS
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
            The engines take turns for --rounds rounds (this machine's speed drifts by ±15% over a minute): each
            row shows the medians over the rounds, and the ratio is the median of each round's ratio.
            """)

    @Option(help: "The Piper voice (.onnx with its .onnx.json beside it).")
    var voice = "models/piper/en_US-joe-medium.onnx"

    @Option(help: "Threads for both engines.")
    var threads = 2

    @Option(help: "Rounds in which the two engines take turns.")
    var rounds = 3

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
        let bench = try VitsBenchmark(onnx: voice)
        let texts = [("1 sentence", Self.short), ("10 sentences", Self.long)]
        let idsFile = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-bench-tts-ids.json")
        try bench.writeIDs(texts, to: idsFile)
        print("chorus bench tts: \((voice as NSString).lastPathComponent), \(threads) threads, OpenBLAS kernel \(ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? "as detected")")
        typealias Run = (seconds: Double, firstSeconds: Double, audioSeconds: Double)
        var ours: [[Run]] = texts.map { _ in [] }, theirs: [[Run]] = texts.map { _ in [] }
        var peerRan = true
        for _ in 0..<max(1, rounds) {
            for (i, text) in texts.enumerated() { ours[i].append(bench.measure(text.1)) }
            let peer = runJSON(peerPython, ["scripts/bench/tts_peer.py", voice, idsFile.path, "\(threads)"], quietErrors: false)?["texts"]
                as? [String: [String: Double]]
            for (i, (name, _)) in texts.enumerated() {
                if let p = peer?[name], let s = p["seconds"], let a = p["audio_seconds"], let f = p["first_seconds"] {
                    theirs[i].append((s, f, a))
                } else {
                    peerRan = false
                }
            }
        }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        print("text          | chorus s  x real time  first s | onnxruntime s  x real time  first s | ratio (x real time), each round")
        for (i, (name, _)) in texts.enumerated() {
            let us = ours[i]
            var line = name.padding(toLength: 13, withPad: " ", startingAt: 0)
            line += String(format: " | %8.3f %11.1f %8.3f", median(us.map(\.seconds)), median(us.map { $0.audioSeconds / $0.seconds }),
                           median(us.map(\.firstSeconds)))
            if peerRan, theirs[i].count == us.count {
                let them = theirs[i]
                let ratios = zip(us, them).map { ($0.audioSeconds / $0.seconds) / ($1.audioSeconds / $1.seconds) }
                line += String(format: " | %13.3f %12.1f %8.3f | %.2fx", median(them.map(\.seconds)),
                               median(them.map { $0.audioSeconds / $0.seconds }), median(them.map(\.firstSeconds)), median(ratios))
                line += " (" + ratios.map { String(format: "%.2f", $0) }.joined(separator: " ") + ")"
            } else {
                line += " | (peer did not run: pip install onnxruntime into .venv)"
            }
            print(line)
        }
        for text in ["Hello world.", Self.short] {
            let first = try await SpeechServer.firstChunkOverTheWire(voice: bench.voice, text: text)
            print("first audio chunk over the wire (\"\(text)\", \(String(format: "%.1f", first.audioSeconds)) s of audio): "
                  + String(format: "p50 %.0f ms, worst %.0f ms of %d calls", first.p50 * 1000, first.worst * 1000, first.count))
        }
    }
}

extension BenchTTSCommand: HasExamples {
    static let examples = [
        "chorus bench tts --rounds 5",
    ]
}
