import CVideoShim
import Foundation

/// A video container held in memory and read with FFmpeg: its streams' headers at once (checked against
/// the limits), frames and the audio track when asked. Calls run on the caller's thread; `cancel()` from
/// another stops the one running.
public final class VideoFile: @unchecked Sendable {
    public let info: VideoInfo
    private let handle: OpaquePointer
    /// FFmpeg reads the bytes in place for the file's whole life.
    private let bytes: UnsafeMutableRawBufferPointer
    private let lock = NSLock()

    /// `decoderThreads`: the video decoder's frame threads (0: one a core, as FFmpeg counts them).
    public init<Bytes: Collection>(_ data: Bytes, limits: VideoLimits, decoderThreads: Int = 0) throws(MediaError) where Bytes.Element == UInt8 {
        guard !data.isEmpty else { throw .emptyInput(kind: "video") }
        guard data.count <= limits.maxBytes else {
            throw .videoLimit("the video is \(data.count) bytes, the limit is \(limits.maxBytes) bytes")
        }
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: data.count, alignment: 64)
        // One memcpy for contiguous bytes (Data, arrays): the generic element-by-element copy took 40% of a call.
        if data.withContiguousStorageIfAvailable({ copy.copyMemory(from: UnsafeRawBufferPointer($0)) }) == nil {
            _ = copy.initializeMemory(as: UInt8.self, from: data)
        }
        bytes = copy
        let side = Int64(limits.maxFrameSide)  // checked: Int to Int64 is exact
        var status = chorus_video_status()
        var raw = chorus_video_info()
        var opened: OpaquePointer?
        let code = chorus_video_open(bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count, side * side,
                                     Int32(clamping: decoderThreads), &opened, &raw, &status)
        guard code == CHORUS_VIDEO_OK, let opened else {
            bytes.deallocate()
            throw Self.error(code, status)
        }
        handle = opened
        let info = Self.info(raw)
        self.info = info
        // Every property is set: a throw from here on runs deinit, which closes the handle.
        try Self.check(info, limits)
    }

    deinit {
        chorus_video_close(handle)
        bytes.deallocate()
    }

    /// Stops the call now running (it answers `.cancelled`) and every later one.
    public func cancel() { chorus_video_cancel(handle) }

    /// A sampled frame: its index in the stream, the time it is shown (seconds from the first frame) and
    /// its pixels, RGB.
    public struct Frame: Sendable {
        public var index: Int
        public var time: Double
        public var image: Image

        public init(index: Int, time: Double, image: Image) {
            (self.index, self.time, self.image) = (index, time, image)
        }
    }

    /// The frames `sampling` picks, each scaled (keeping its shape) so that its longer side is at most
    /// `maxSide` pixels. `isCancelled` is asked before each frame.
    public func frames(_ sampling: FrameSampling, maxSide: Int, isCancelled: () -> Bool = { false }) throws(MediaError) -> [Frame] {
        let picks = try sampling.picks(info)
        guard let video = info.video else { throw .missingStream("the file has no video stream") }
        let (width, height) = Self.fitting(video.width, video.height, maxSide: maxSide)
        lock.lock()
        defer { lock.unlock() }
        var frames: [Frame] = []
        frames.reserveCapacity(picks.count)
        for pick in picks {
            guard !isCancelled() else { throw .cancelled }
            var pixels = [UInt8](repeating: 0, count: width * height * 3)
            var shown = 0.0
            var status = chorus_video_status()
            let code = pixels.withUnsafeMutableBufferPointer {
                chorus_video_frame_at(handle, pick.time, Int32(width), Int32(height), $0.baseAddress, $0.count, &shown, &status)  // checked: at most the declared Int32 sides
            }
            guard code == CHORUS_VIDEO_OK else { throw Self.error(code, status) }
            let index = Int((shown * video.frameRate).rounded())  // checked: shown is within the stream's bounded duration
            frames.append(Frame(index: index, time: shown, image: Image(unchecked: width, height, 3, pixels)))
        }
        return frames
    }

    /// The audio track between `start` and `end` seconds (nil: its end), mono at `sampleRate` Hz; at most
    /// `maxSeconds` of it.
    public func audio(sampleRate: Int = 16000, start: Double = 0, end: Double? = nil, maxSeconds: Double) throws(MediaError) -> [Float] {
        guard info.audio != nil else { throw .missingStream("the file has no audio track") }
        let limit = (maxSeconds * Double(sampleRate)).rounded(.up) + Double(sampleRate)
        guard limit.isFinite, limit > 0, limit < 1e10 else { throw .videoLimit("maximum audio length \(maxSeconds) s is out of range") }
        lock.lock()
        defer { lock.unlock() }
        var samples: UnsafeMutablePointer<Float>?
        var count = 0
        var status = chorus_video_status()
        let code = chorus_video_audio(handle, start, end ?? 0, Int32(clamping: sampleRate), Int(limit), &samples, &count, &status)  // checked: limit < 1e10
        defer { chorus_video_free(samples) }
        guard code == CHORUS_VIDEO_OK else { throw Self.error(code, status) }
        guard let samples, count > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: samples, count: count))
    }

    /// width × height scaled so the longer side is at most maxSide, each side at least 1.
    public static func fitting(_ width: Int, _ height: Int, maxSide: Int) -> (Int, Int) {
        let longer = max(width, height)
        guard longer > maxSide, maxSide > 0 else { return (width, height) }
        let scale = Double(maxSide) / Double(longer)
        return (max(1, Int((Double(width) * scale).rounded())), max(1, Int((Double(height) * scale).rounded())))  // checked: below width, height
    }

    private static func check(_ info: VideoInfo, _ limits: VideoLimits) throws(MediaError) {
        guard info.duration.isFinite, info.duration <= limits.maxSeconds else {
            throw .videoLimit(String(format: "the video is %.1f s long, the limit is %.0f s", info.duration, limits.maxSeconds))
        }
        if let video = info.video {
            guard video.width > 0, video.height > 0 else { throw .invalidVideo("the video stream declares no frame size (\(video.width)×\(video.height))") }
            guard video.width <= limits.maxFrameSide, video.height <= limits.maxFrameSide else {
                throw .videoLimit("the video's frames are \(video.width)×\(video.height), the limit is \(limits.maxFrameSide)×\(limits.maxFrameSide)")
            }
        }
        guard info.video != nil || info.audio != nil else { throw .missingStream("the file has neither a video stream nor an audio track") }
    }

    private static func info(_ raw: chorus_video_info) -> VideoInfo {
        var raw = raw
        func text<T>(_ field: inout T) -> String {
            withUnsafeBytes(of: &field) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        let finite: (Double) -> Double = { $0.isFinite && $0 > 0 ? $0 : 0 }
        // The C fields are Int32: each widens to Int exactly.
        return VideoInfo(
            container: text(&raw.container), duration: finite(raw.duration),
            video: raw.has_video == 0 ? nil : .init(codec: text(&raw.video_codec), width: Int(raw.width), height: Int(raw.height),  // checked: Int32 widened
                                                   frameRate: finite(raw.frame_rate), frameCount: Int(clamping: raw.frame_count),
                                                   start: raw.video_start.isFinite ? raw.video_start : 0, duration: finite(raw.video_duration)),
            audio: raw.has_audio == 0 ? nil : .init(codec: text(&raw.audio_codec), sampleRate: Int(raw.sample_rate),  // checked: Int32 widened
                                                   channels: Int(raw.channels), start: raw.audio_start.isFinite ? raw.audio_start : 0))  // checked: Int32 widened
    }

    private static func error(_ code: chorus_video_code, _ status: chorus_video_status) -> MediaError {
        let message = withUnsafeBytes(of: status.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        switch code {
        case CHORUS_VIDEO_NO_VIDEO, CHORUS_VIDEO_NO_AUDIO: return .missingStream(message)
        case CHORUS_VIDEO_TOO_LARGE: return .videoLimit(message)
        case CHORUS_VIDEO_CANCELLED: return .cancelled
        case CHORUS_VIDEO_UNSUPPORTED: return .unsupportedVideo(message)
        default: return .invalidVideo(message)
        }
    }
}
