import ArgumentParser
import ChorusMedia
import Foundation

/// `chorus bench video`: frames sampled per second of compute from a 60 s 720p H.264 clip, against PyAV and
/// OpenCV in the same run.
struct BenchVideoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "video",
        abstract: "Video frame sampling (VideoFile, FFmpeg through CVideoShim) against PyAV and OpenCV.",
        discussion: """
            The clip is 60 s of 1280×720 at 30 fps, H.264 with a keyframe every 2 s and AAC sound, made once by the
            peer (scripts/bench/video_peer.py make-clip, with the ffmpeg CLI). Each call opens the clip from memory
            and samples --frames frames spread evenly as RGB at full size, as AskVideo does per request (Chorus's
            decoder runs one thread: the service runs one call a core). The peers run with .venv/bin/python
            (pip install av opencv-python-headless numpy) and stay loaded: PyAV seeking as Chorus does, OpenCV
            grabbing every frame as vLLM's OpenCV loader does, and OpenCV seeking by frame number. The engines take
            turns for --rounds rounds; each row shows the medians, and the ratio is the median of each round's.

            Example: chorus bench video --frames 16 --rounds 3
            """)

    @Option(help: "Where the clip is made (once) and read.")
    var clip = "/tmp/chorus-bench-video-720p.mp4"

    @Option(help: "Frames sampled per call.")
    var frames = 16

    @Option(help: "Rounds in which Chorus and the peers take turns.")
    var rounds = 3

    @Option(help: "Peers, comma-separated: pyav, opencv-grab, opencv-seek.")
    var peers = "pyav,opencv-grab,opencv-seek"

    func run() async throws {
        quietBenchLogging()
        if !FileManager.default.fileExists(atPath: clip) {
            print("making the 60 s 720p clip in \(clip) ...")
            guard runJSON(peerPython, ["scripts/bench/video_peer.py", "make-clip", clip], quietErrors: false) != nil else {
                throw ValidationError("scripts/bench/video_peer.py make-clip failed (run from the repository root with .venv set up and ffmpeg installed)")
            }
        }
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: clip)))
        let probe = try VideoFile(bytes, limits: VideoLimits())
        let video = try probe.info.video.map { $0 } ?? { throw ValidationError("\(clip) has no video stream") }()
        print("chorus bench video: \(clip), \(video.width)×\(video.height) \(video.codec) at \(video.frameRate) fps, \(video.frameCount) frames, "
              + String(format: "%.1f s, %.1f MiB; %d frames a call", probe.info.duration, Double(bytes.count) / 1048576, frames))
        let peer = PeerSession(peerPython, ["scripts/bench/video_peer.py", "serve", clip])
        let names = peers.split(separator: ",").map(String.init)
        var ours: [Double] = [], theirs: [String: [Double]] = [:]
        for round in 1...max(1, rounds) {
            let seconds = medianSeconds(budget: 3) {
                let file = try? VideoFile(bytes, limits: VideoLimits())
                _ = try? file?.frames(FrameSampling(.count(frames)), maxSide: 4096)
            }
            ours.append(Double(frames) / seconds)
            var line = String(format: "  round %d: chorus %.1f frames/s", round, Double(frames) / seconds)
            for name in names {
                guard let rate = peer?.ask("\(name) \(frames)")?["per_s"] as? Double else { line += ", \(name) did not run"; continue }
                theirs[name, default: []].append(rate)
                line += String(format: ", %@ %.1f (%.2fx)", name, rate, Double(frames) / seconds / rate)
            }
            print(line)
        }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        print("\nengine      | frames/s | chorus ratio (range of rounds)")
        print(String(format: "chorus      | %8.1f |", median(ours)))
        for name in names {
            guard let rates = theirs[name], rates.count == ours.count else { print("\(name.padding(toLength: 11, withPad: " ", startingAt: 0)) |        - | did not run"); continue }
            let ratios = zip(ours, rates).map { $0 / $1 }
            print(String(format: "%@ | %8.1f | %.2fx (%.2f–%.2f)", name.padding(toLength: 11, withPad: " ", startingAt: 0), median(rates), median(ratios), ratios.min()!, ratios.max()!))
        }
        if peer == nil || theirs.isEmpty { print("(the peers did not run: set up .venv with av, opencv-python-headless and numpy)") }
        print("CPU: \(cpuName())")
    }
}

extension BenchVideoCommand: HasExamples {
    static let examples = [
        "chorus bench video --frames 16 --rounds 3",
    ]
}
