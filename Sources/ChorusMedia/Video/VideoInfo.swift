/// What a container says of itself before anything is decoded: read by `VideoFile` and checked against
/// `VideoLimits` before any frame or sample is.
public struct VideoInfo: Sendable, Equatable {
    public struct Picture: Sendable, Equatable {
        public var codec: String
        public var width: Int
        public var height: Int
        /// Average frames per second; 0 when the container does not say.
        public var frameRate: Double
        /// As the container declares it (MP4 does, WebM does not); 0 when unknown.
        public var frameCount: Int
        /// The first frame's time, in the container's clock.
        public var start: Double
        public var duration: Double

        public init(codec: String, width: Int, height: Int, frameRate: Double, frameCount: Int, start: Double, duration: Double) {
            (self.codec, self.width, self.height, self.frameRate) = (codec, width, height, frameRate)
            (self.frameCount, self.start, self.duration) = (frameCount, start, duration)
        }
    }

    public struct Sound: Sendable, Equatable {
        public var codec: String
        public var sampleRate: Int
        public var channels: Int
        public var start: Double

        public init(codec: String, sampleRate: Int, channels: Int, start: Double) {
            (self.codec, self.sampleRate, self.channels, self.start) = (codec, sampleRate, channels, start)
        }
    }

    /// FFmpeg's demuxer name ("mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm").
    public var container: String
    /// Seconds; the container's figure, else its longest stream's; 0 when unknown.
    public var duration: Double
    public var video: Picture?
    public var audio: Sound?

    public init(container: String, duration: Double, video: Picture? = nil, audio: Sound? = nil) {
        (self.container, self.duration, self.video, self.audio) = (container, duration, video, audio)
    }

    /// Frames in the video stream: the declared count, else its duration at its rate.
    public var frames: Int {
        guard let video else { return 0 }
        if video.frameCount > 0 { return video.frameCount }
        let seconds = video.duration > 0 ? video.duration : duration
        let estimate = seconds * video.frameRate
        return estimate.isFinite && estimate >= 1 ? Int(min(estimate.rounded(), 1e9)) : 1  // checked: finite, 1 ... 1e9
    }

    /// The video's length in seconds: its own stream's, else the container's.
    public var videoDuration: Double {
        guard let video else { return 0 }
        return video.duration > 0 ? video.duration : duration
    }
}
