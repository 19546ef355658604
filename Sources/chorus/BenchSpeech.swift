import ArgumentParser
import ChorusMedia
import ChorusServiceKit
import ChorusTensor
import Foundation
import ChorusWhisper

/// `chorus bench speech`: Whisper wall time and real-time factor against CTranslate2 (float32, int8) and
/// transformers on PyTorch, each configuration in its own process so that peak memory is its own.
struct BenchSpeechCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "speech",
        abstract: "Whisper speed and memory against CTranslate2 and transformers, measured in the same run.",
        discussion: """
            Peers run with .venv/bin/python (pip install torch==2.13.0 ctranslate2 transformers==5.23.0 numpy).
            Clips: 30 s and 5 min made from the reference clips under Tests/SpeechServiceTests/Fixtures
            (run from the repository root), decoded in 30 s windows with timestamps by every engine, each window
            starting where the previous one's last complete segment ended (openai-whisper's seek).
            --rounds N runs every engine N times per row, in turns, and compares medians (the machines drift).
            """)

    @Option(help: "Clip lengths in seconds.")
    var clips = "30,300"

    @Option(help: "Model folders under --models-dir.")
    var models = "whisper-tiny.en,whisper-base"

    @Option(help: "Beam sizes (1 = greedy).")
    var beams = "1,5"

    @Option(help: "Peers to run.")
    var peers = "ct2-float32,ct2-int8,transformers"

    @Option(help: "Where the models are.")
    var modelsDir = "models"

    @Option(help: "Threads for every engine.")
    var threads = 2

    @Option(help: "Runs of every engine per row, in turns; the table shows each engine's median.")
    var rounds = 1

    @Option(help: "Chorus's precision: float32, or int8 (linears on int8 weights; needs AVX-512 VNNI) against ct2-int8.")
    var precision: Precision = .float32

    func run() async throws {
        let clipLengths = clips.split(separator: ",").compactMap { Int($0) }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-bench-speech")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let clipFiles = try clipLengths.map { seconds -> (Int, String) in
            let path = directory.appendingPathComponent("clip\(seconds).wav").path
            try makeClip(seconds: seconds, path: path)
            return (seconds, path)
        }
        let (precision, note) = Precision.available(precision)
        if let note { print("chorus bench speech: \(note)") }
        print("chorus bench speech: \(cpuName()); Chorus in \(precision); \(threads) threads, OpenBLAS kernel \(BLASInfo.kernel)"
              + (BLASInfo.replacementNote.map { " (\($0))" } ?? ""))
        print("model            beam  clip |  chorus s   RTF   MB win  tok | " + peers.split(separator: ",").map { "\($0) s (ratio)  MB win  tok" }.joined(separator: " | "))
        let peerNames = peers.split(separator: ",").map(String.init)
        for model in models.split(separator: ",").map(String.init) {
            for beam in beams.split(separator: ",").compactMap({ Int($0) }) {
                for (seconds, clip) in clipFiles {
                    let folder = (modelsDir as NSString).appendingPathComponent(model)
                    // Every engine once per round, in turns: these machines drift by tens of percent within a
                    // minute, so each engine's median over rounds is compared, not one run against another.
                    // One entry per round, nil where that run failed, so each round's ratios pair the same round.
                    var oursByRound: [[String: Any]?] = []
                    var theirsByRound = [[[String: Any]?]](repeating: [], count: peerNames.count)
                    for _ in 0..<max(1, rounds) {
                        let result = runJSON(CommandLine.arguments[0], ["bench", "speech-one", "--model", folder, "--wav", clip, "--beam", "\(beam)", "--precision", "\(precision)"])
                        oursByRound.append(result?["seconds"] is Double ? result : nil)
                        for (index, peer) in peerNames.enumerated() {
                            let result = runJSON(".venv/bin/python", ["scripts/bench/speech_peer.py", peer, folder, clip, "\(beam)", "\(threads)"])
                            theirsByRound[index].append(result?["seconds"] is Double ? result : nil)
                        }
                    }
                    let ours = oursByRound.compactMap { $0 }
                    let theirs = theirsByRound.map { $0.compactMap { $0 } }
                    var line = "\(model.padding(toLength: 16, withPad: " ", startingAt: 0)) \(String(format: "%4d", beam)) \(String(format: "%4d", seconds))s |"
                    let oursSeconds = median(ours.map { $0["seconds"] as! Double })
                    if let s = oursSeconds, let last = ours.last {
                        line += String(format: " %8.2f %5.3f %4.0f %3d %4d |", s, s / Double(seconds), last["peak_rss_mb"] as? Double ?? 0, last["windows"] as? Int ?? 0,
                                       last["tokens"] as? Int ?? 0)
                    } else {
                        line += "   failed              |"
                    }
                    for results in theirs {
                        if let s = median(results.map { $0["seconds"] as! Double }), let last = results.last {
                            let ratio = oursSeconds.map { String(format: "%.2fx", s / $0) } ?? "-"
                            line += String(format: " %8.2f (%@) %4.0f %3d %4d |", s, ratio, last["peak_rss_mb"] as? Double ?? 0, last["windows"] as? Int ?? 0,
                                           last["tokens"] as? Int ?? 0)
                        } else {
                            line += "   failed              |"
                        }
                    }
                    print(line)
                    if rounds > 1 {
                        // Each round's ratios, to show the spread behind the medians.
                        func runSeconds(_ result: [String: Any]?) -> Double? { result?["seconds"] as? Double }
                        let perRound = theirsByRound.enumerated().map { index, results -> String in
                            let ratios = zip(results, oursByRound).map { peer, chorus in
                                runSeconds(peer).flatMap { p in runSeconds(chorus).map { String(format: "%.2f", p / $0) } } ?? "failed"
                            }
                            return "\(peerNames[index]) " + ratios.joined(separator: "/")
                        }
                        print("    rounds: chorus " + oursByRound.map { runSeconds($0).map { String(format: "%.2f", $0) } ?? "failed" }.joined(separator: "/")
                              + " s; ratios " + perRound.joined(separator: ", "))
                    }
                    fflush(stdout)
                }
            }
        }
        print("(ratio = peer time / chorus time: above 1 means Chorus is faster; RTF = processing time / audio time;")
        print(" win = 30 s windows decoded, advanced from the last timestamp as openai-whisper does, by every engine;")
        print(" tok = tokens decoded in those windows, timestamps included: equal counts mean equal work)")
    }

    /// The reference clips with a second of silence after each, repeated to `seconds`.
    private func makeClip(seconds: Int, path: String) throws {
        let sources = ["Tests/SpeechServiceTests/Fixtures/espeak_lights.wav", "Tests/SpeechServiceTests/Fixtures/piper_speech_service.wav"]
        var pattern: [Float] = []
        for source in sources {
            guard let data = FileManager.default.contents(atPath: source) else {
                throw ValidationError("cannot read \(source): run from the repository root")
            }
            pattern += try WAVCodec.decode(Array(data)).downmixedToMono() + [Float](repeating: 0, count: 16000)
        }
        var samples: [Float] = []
        while samples.count < seconds * 16000 { samples += pattern }
        let audio = try AudioSamples(sampleRate: 16000, mono: Array(samples.prefix(seconds * 16000)))
        try Data(try WAVCodec.encode(audio)).write(to: URL(fileURLWithPath: path))
    }
}

/// One configuration of `chorus bench speech`, in its own process.
struct BenchSpeechOneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "speech-one", shouldDisplay: false)

    @Option var model: String
    @Option var wav: String
    @Option var beam: Int
    @Option var precision: Precision = .float32

    func run() async throws {
        let started = Date()
        let engine = try WhisperEngine(name: (model as NSString).lastPathComponent, folder: model, precision: precision)
        let load = Date().timeIntervalSince(started)
        let samples = try WAVCodec.decode(Array(FileManager.default.contents(atPath: wav) ?? Data())).downmixedToMono()
        var options = TranscribeOptions()
        options.language = engine.multilingual ? "en" : nil
        options.decoding.beamSize = beam
        options.temperatures = [0]
        let decodeStart = Date()
        let result = try engine.transcribe(samples, options: options)
        let seconds = Date().timeIntervalSince(decodeStart)
        let object: [String: Any] = ["seconds": seconds, "load_seconds": load, "audio_seconds": Double(samples.count) / 16000,
                                     "tokens": result.decodedTokens, "encoder_seconds": result.encoderSeconds, "windows": result.windows,
                                     "peak_rss_mb": Double(ProcessMemory.peakResidentBytes) / 1_048_576]
        print(String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self))
    }
}

/// The middle value (the mean of the middle two for an even count), nil for none.
private func median(_ values: [Double]) -> Double? {
    guard !values.isEmpty else { return nil }
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

extension BenchSpeechCommand: HasExamples {
    static let examples = [
        "chorus bench speech --beams 1 --rounds 3",
    ]
}
