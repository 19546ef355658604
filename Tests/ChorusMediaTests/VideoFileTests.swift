import ChorusMedia
import ChorusTestSupport
import Foundation
import Testing

/// VideoFile against PyAV on the videos scripts/fixtures/make_video_cases.py made with the ffmpeg CLI (H.264 + AAC
/// in MP4, VP9 + Opus in WebM, an MP4 without audio): the sampled frames' indices and times equal PyAV's decode at
/// numpy.linspace's picks, their pixels match PyAV's RGB within a stated tolerance, and the audio track at 16 kHz
/// matches PyAV's libswresample output.
@Suite struct VideoFileTests {
    static let folder = Bundle.module.resourcePath! + "/Fixtures/video/"
    static func bytes(_ name: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: folder + name))) }
    static var manifest: [String: Any] {
        get throws { try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "cases.json"))) as! [String: Any] }
    }

    @Test func headersAreReadWithoutDecoding() throws {
        let mp4 = try VideoFile(Self.bytes("scenes.mp4"), limits: VideoLimits())
        let video = try #require(mp4.info.video)
        #expect(mp4.info.container.contains("mp4") && video.codec == "h264" && mp4.info.audio?.codec == "aac")
        #expect(video.width == 320 && video.height == 240 && video.frameRate == 24 && video.frameCount == 144)
        #expect(abs(mp4.info.duration - 6) < 0.01 && mp4.info.frames == 144)
        let webm = try VideoFile(Self.bytes("scenes.webm"), limits: VideoLimits())
        #expect(webm.info.container.contains("webm") && webm.info.video?.codec == "vp9" && webm.info.audio?.codec == "opus")
        // WebM declares no frame count: it is the duration at the frame rate.
        #expect(webm.info.video?.frameCount == 0 && webm.info.frames == 144)
        #expect(try VideoFile(Self.bytes("silent.mp4"), limits: VideoLimits()).info.audio == nil)
        #expect(try VideoFile(Self.bytes("voice.m4a"), limits: VideoLimits()).info.video == nil)
    }

    /// PyAV (FFmpeg 8) and Debian's FFmpeg 5.1 decode H.264 and VP9 bit-exactly (both codecs define their
    /// output); the RGB conversion is swscale's bilinear in both, whose rounding changed between the versions:
    /// a few pixels along colour edges differ by up to 22 levels, the mean difference is 0.05 levels.
    static let maxPixelDifference = 32
    static let maxMeanDifference = 0.25

    @Test func sampledFramesArePyAVsAtTheSameIndicesAndTimes() throws {
        let cases = try Self.manifest["cases"] as! [[String: Any]]
        #expect(cases.count == 8)
        var worst = 0, worstMean = 0.0
        for c in cases {
            let file = try VideoFile(Self.bytes(c["file"] as! String), limits: VideoLimits())
            let spacing: FrameSampling.Spacing = (c["num_frames"] as? Int).map { .count($0) } ?? .perSecond(c["fps"] as! Double)
            let sampling = FrameSampling(spacing, maxFrames: c["max_frames"] as? Int ?? 64, start: c["start"] as? Double ?? 0, end: c["end"] as? Double)
            let frames = try file.frames(sampling, maxSide: c["max_side"] as? Int ?? 1024)
            let expected = c["frames"] as! [[String: Any]]
            let label = "\(c["file"]!) \(c["num_frames"].map { "n=\($0)" } ?? "fps=\(c["fps"]!)")"
            #expect(frames.map(\.index) == expected.map { $0["index"] as! Int }, "\(label)")
            #expect(zip(frames, expected).allSatisfy { abs($0.time - ($1["time"] as! Double)) < 1e-5 }, "\(label): \(frames.map(\.time))")
            for (frame, reference) in zip(frames, expected) {
                let image = try ImageCodec.decode(try Self.bytes(reference["png"] as! String))
                #expect(frame.image.width == c["width"] as! Int && frame.image.height == image.height && frame.image.channels == 3)
                guard frame.image.pixels.count == image.pixels.count else { continue }
                let differences = zip(frame.image.pixels, image.pixels).map { abs(Int($0) - Int($1)) }
                worst = max(worst, differences.max() ?? 0)
                worstMean = max(worstMean, Double(differences.reduce(0, +)) / Double(differences.count))
            }
        }
        #expect(worst <= Self.maxPixelDifference && worstMean <= Self.maxMeanDifference, "max \(worst), mean \(worstMean)")
    }

    @Test func framesInReverseOrderAreTheSameFrames() throws {
        // Seeking backwards (and far forwards) lands on the same pictures as decoding straight through.
        let file = try VideoFile(Self.bytes("scenes.mp4"), limits: VideoLimits())
        let forward = try file.frames(FrameSampling(.count(16)), maxSide: 320)
        let again = try file.frames(FrameSampling(.count(4)), maxSide: 320)
        let byIndex = Dictionary(uniqueKeysWithValues: forward.map { ($0.index, $0.image.pixels) })
        for frame in again { #expect(byIndex[frame.index] == frame.image.pixels, "frame \(frame.index)") }
    }

    /// AAC in MP4: the same samples as PyAV's. Opus in WebM: PyAV's FFmpeg 8 keeps 156 samples at 48 kHz (52 at
    /// 16 kHz, 3.25 ms) of the stream's pre-skip that Debian's FFmpeg 5.1 (its CLI too) trims: past that offset the
    /// samples agree.
    @Test func theAudioTrackIsPyAVsAt16kHz() throws {
        let audio = try Self.manifest["audio"] as! [[String: Any]]
        for a in audio {
            let file = a["file"] as! String
            let samples = try VideoFile(Self.bytes(file), limits: VideoLimits()).audio(maxSeconds: 60)
            let reference = try WAVCodec.decode(try Self.bytes(a["wav"] as! String)).channels[0]
            let offset = file.hasSuffix(".webm") ? 52 : 0
            #expect(samples.count + offset == a["samples"] as! Int, "\(file): \(samples.count) samples")
            let worst = zip(samples, reference[offset...]).map { abs($0 - $1) }.max() ?? 1
            // The reference is stored as 16-bit: half a step of rounding, and the decoders' float order.
            #expect(worst < 2e-3, "\(file): max difference \(worst)")
        }
    }

    @Test func aSliceOfTheAudioIsThatStretchOfTheWhole() throws {
        let file = try VideoFile(Self.bytes("scenes.mp4"), limits: VideoLimits())
        let whole = try file.audio(maxSeconds: 60)
        let slice = try file.audio(start: 2, end: 3, maxSeconds: 60)
        #expect(slice.count == 16000)
        // The cut lands inside an AAC frame, whose start is not a whole 16 kHz sample: the resampler runs a
        // fraction of a sample apart from the whole's, so the two agree as signals, not sample for sample.
        let a = Array(slice[1000...]), b = Array(whole[33000..<48000])
        let dot = zip(a, b).map { $0 * $1 }.reduce(0, +)
        let correlation = dot / (a.map { $0 * $0 }.reduce(0, +) * b.map { $0 * $0 }.reduce(0, +)).squareRoot()
        #expect(correlation > 0.98, "\(correlation)")
        #expect(throws: MediaError.videoLimit("the audio is longer than the limit of 80000 samples")) {
            try file.audio(maxSeconds: 4)
        }
    }

    @Test func badInputIsNamedNotCrashed() throws {
        let mp4 = try Self.bytes("scenes.mp4")
        func failure(_ bytes: [UInt8], _ limits: VideoLimits = VideoLimits(), frames: Bool = true) -> String {
            do {
                let file = try VideoFile(bytes, limits: limits)
                _ = frames ? try file.frames(FrameSampling(.count(4)), maxSide: 64).count : try file.audio(maxSeconds: 60).count
                return "accepted"
            } catch {
                return "\(error)"
            }
        }
        #expect(failure([]) == "empty video data")
        // A PNG with an .mp4 name.
        let png = try ImageCodec.encodePNG(Image(width: 8, height: 8, channels: 3, pixels: Array(repeating: 9, count: 192)))
        #expect(failure(png) == "invalid video: the data is an image (png_pipe), not a video")
        #expect(failure(Array(repeating: 0x41, count: 5000)) == "invalid video: not a video container FFmpeg can read: Invalid data found when processing input")
        // Truncated: the moov box (at the front: +faststart) is whole, the frames are cut off.
        let truncated = failure(Array(mp4.prefix(mp4.count / 3)))
        #expect(truncated == "invalid video: the video stream has no frame that decodes at 1.958 s (the file is empty, truncated or damaged there)")
        #expect(failure(Array(mp4.prefix(1000))) == "invalid video: not a video container FFmpeg can read: End of file (error reading header)")
        #expect(failure(mp4, VideoLimits(maxBytes: 1000)) == "the video is \(mp4.count) bytes, the limit is 1000 bytes")
        #expect(failure(mp4, VideoLimits(maxSeconds: 5)) == "the video is 6.0 s long, the limit is 5 s")
        #expect(failure(mp4, VideoLimits(maxFrameSide: 300)) == "the video's frames are 320×240, the limit is 300×300")
        // A 10-hour header: the movie header's duration rewritten.
        #expect(failure(MP4Headers.rewritingDuration(mp4, hours: 10)).hasPrefix("the video is 36000.0 s long"), "\(failure(MP4Headers.rewritingDuration(mp4, hours: 10)))")
        // Raw video headers declaring huge frames, and one with no frame at all.
        let huge = failure(Array("YUV4MPEG2 W100000 H100000 F25:1 Ip A1:1 C420jpeg\nFRAME\n".utf8))
        #expect(huge.hasPrefix("invalid video: not a video container FFmpeg can read") && huge.hasSuffix("(Picture size 100000x100000 is invalid)"), "\(huge)")
        #expect(failure(Array("YUV4MPEG2 W9000 H9000 F25:1 Ip A1:1 C420jpeg\nFRAME\n".utf8)) == "the video's frames are 9000×9000, the limit is 8192×8192")
        let empty = failure(Array("YUV4MPEG2 W16 H16 F25:1 Ip A1:1 C420jpeg\n".utf8))
        #expect(empty == "invalid video: the video stream has no frame that decodes at 0.000 s (the file is empty, truncated or damaged there)")
        // Streams that are not there.
        #expect(failure(try Self.bytes("voice.m4a")) == "the file has no video stream")
        #expect(failure(try Self.bytes("silent.mp4"), frames: false) == "the file has no audio track")
    }

    @Test func samplingPicksAreNumpysLinspace() throws {
        let info = VideoInfo(container: "test", duration: 10, video: .init(codec: "h264", width: 64, height: 48, frameRate: 30, frameCount: 300, start: 0, duration: 10))
        #expect(try FrameSampling(.count(4)).picks(info).map(\.index) == [0, 99, 199, 299])
        #expect(try FrameSampling(.count(1)).picks(info).map(\.index) == [0])
        // More frames asked than the clip has: each once.
        #expect(try FrameSampling(.count(8), start: 1, end: 1.2).picks(info).map(\.index) == [30, 31, 32, 33, 34, 35])
        #expect(try FrameSampling(.perSecond(0.5)).picks(info).map(\.index) == [0, 74, 149, 224, 299])
        #expect(try FrameSampling(.perSecond(30), maxFrames: 3).picks(info).map(\.index) == [0, 149, 299])
        #expect(throws: MediaError.invalidVideo("num_frames 65 is above the limit of 64 frames")) { try FrameSampling(.count(65)).picks(info) }
        #expect(throws: MediaError.invalidVideo("the clip 12.000 ... 10.000 s is empty (the video is 10.000 s)")) {
            try FrameSampling(.count(2), start: 12).picks(info)
        }
        #expect(throws: MediaError.invalidVideo("fps inf is outside 0 ... 1000")) { try FrameSampling(.perSecond(.infinity)).picks(info) }
    }
}
