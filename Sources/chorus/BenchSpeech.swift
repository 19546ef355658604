import ArgumentParser
import ChorusMedia
import ChorusServiceKit
import ChorusTensor
import Foundation
import SpeechService

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

    func run() async throws {
        let clipLengths = clips.split(separator: ",").compactMap { Int($0) }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-bench-speech")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let clipFiles = try clipLengths.map { seconds -> (Int, String) in
            let path = directory.appendingPathComponent("clip\(seconds).wav").path
            try makeClip(seconds: seconds, path: path)
            return (seconds, path)
        }
        print("chorus bench speech: \(threads) threads, OpenBLAS kernel \(BLASInfo.kernel)"
              + (BLASInfo.replacementNote.map { " (\($0))" } ?? ""))
        print("model            beam  clip |  chorus s   RTF   MB win  tok | " + peers.split(separator: ",").map { "\($0) s (ratio)  MB win  tok" }.joined(separator: " | "))
        for model in models.split(separator: ",").map(String.init) {
            for beam in beams.split(separator: ",").compactMap({ Int($0) }) {
                for (seconds, clip) in clipFiles {
                    let folder = (modelsDir as NSString).appendingPathComponent(model)
                    let ours = runJSON(CommandLine.arguments[0], ["bench", "speech-one", "--model", folder, "--wav", clip, "--beam", "\(beam)"])
                    var line = "\(model.padding(toLength: 16, withPad: " ", startingAt: 0)) \(String(format: "%4d", beam)) \(String(format: "%4d", seconds))s |"
                    let oursSeconds = ours?["seconds"] as? Double
                    if let ours, let s = oursSeconds {
                        line += String(format: " %8.2f %5.3f %4.0f %3d %4d |", s, s / Double(seconds), ours["peak_rss_mb"] as? Double ?? 0, ours["windows"] as? Int ?? 0,
                                       ours["tokens"] as? Int ?? 0)
                    } else {
                        line += "   failed              |"
                    }
                    for peer in peers.split(separator: ",").map(String.init) {
                        let result = runJSON(".venv/bin/python", ["scripts/bench/speech_peer.py", peer, folder, clip, "\(beam)", "\(threads)"])
                        if let result, let s = result["seconds"] as? Double {
                            let ratio = oursSeconds.map { String(format: "%.2fx", s / $0) } ?? "-"
                            line += String(format: " %8.2f (%@) %4.0f %3d %4d |", s, ratio, result["peak_rss_mb"] as? Double ?? 0, result["windows"] as? Int ?? 0,
                                           result["tokens"] as? Int ?? 0)
                        } else {
                            line += "   failed              |"
                        }
                    }
                    print(line)
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

    func run() async throws {
        let started = Date()
        let engine = try WhisperEngine(name: (model as NSString).lastPathComponent, folder: model)
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
