/// Which frames of a video a request reads: a number spread evenly over the clip, or a rate in frames
/// per second (bounded by `maxFrames`, then spread evenly too), between `start` and `end` seconds.
///
/// Even spreading is vLLM's (and the seeds' VideoQA's): frame indices
/// `numpy.linspace(0, frames - 1, count, dtype=int)` over the clip's frames, so the first and the last
/// frame are always read.
public struct FrameSampling: Sendable, Equatable {
    public enum Spacing: Sendable, Equatable {
        case count(Int)
        case perSecond(Double)
    }

    public var spacing: Spacing
    public var maxFrames: Int
    public var start: Double
    /// nil: to the end.
    public var end: Double?

    public init(_ spacing: Spacing, maxFrames: Int = 64, start: Double = 0, end: Double? = nil) {
        self.spacing = spacing
        self.maxFrames = maxFrames
        self.start = start
        self.end = end
    }

    /// A frame to read: its index in the stream and its time from the first frame.
    public struct Pick: Sendable, Equatable {
        public var index: Int
        public var time: Double
    }

    /// The frames to read from a video described by `info`, in order.
    public func picks(_ info: VideoInfo) throws(MediaError) -> [Pick] {
        guard let video = info.video else { throw .missingStream("the file has no video stream") }
        let rate = video.frameRate
        guard rate.isFinite, rate > 0, rate <= 1000 else { throw .invalidVideo("the video stream has no usable frame rate (\(rate))") }
        guard maxFrames >= 1 else { throw .invalidVideo("max_frames must be at least 1") }
        let total = info.frames
        // The frames' own span (MP4's 144 frames at 24 fps: 6 s), not the container's, which counts the audio's
        // padding too (WebM: 6.008 s).
        let length = Double(total) / rate
        guard start.isFinite, start >= 0 else { throw .invalidVideo("start \(start) s is not a time in the video") }
        let stop = end.map { min($0, length) } ?? length
        guard stop.isFinite, stop > start || (stop == start && start == 0) else {
            throw .invalidVideo(String(format: "the clip %.3f ... %.3f s is empty (the video is %.3f s)", start, end ?? length, length))
        }
        // The clip's frames: from the first shown at or after start, to the last shown before stop.
        let first = min(total - 1, Int((start * rate - 1e-6).rounded(.up)))  // checked: start and rate bounded above
        let last = max(first, min(total - 1, Int((stop * rate - 1e-6).rounded(.up)) - 1))  // checked: as above
        let frames = last - first + 1
        let wanted: Int
        switch spacing {
        case .count(let count):
            guard count >= 1 else { throw .invalidVideo("num_frames must be at least 1") }
            wanted = count
        case .perSecond(let fps):
            guard fps.isFinite, fps > 0, fps <= 1000 else { throw .invalidVideo("fps \(fps) is outside 0 ... 1000") }
            let made = ((stop - start) * fps).rounded(.up)
            wanted = made >= 1 ? Int(min(made, 1e9)) : 1  // checked: finite, 1 ... 1e9
        }
        guard wanted <= maxFrames || { if case .perSecond = spacing { return true } else { return false } }() else {
            throw .invalidVideo("num_frames \(wanted) is above the limit of \(maxFrames) frames")
        }
        let count = min(wanted, maxFrames, frames)
        return Self.linspace(frames - 1, count).map { offset in Pick(index: first + offset, time: Double(first + offset) / rate) }
    }

    /// `numpy.linspace(0, last, count, dtype=int)`: the step multiplied, truncated, the last exact.
    static func linspace(_ last: Int, _ count: Int) -> [Int] {
        guard count > 1 else { return [0] }
        let step = Double(last) / Double(count - 1)
        return (0..<count).map { $0 == count - 1 ? last : Int(Double($0) * step) }  // checked: 0 ... last
    }
}
