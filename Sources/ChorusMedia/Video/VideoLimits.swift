/// Bounds a video must be within before it is decoded: checked on the container's headers, so a
/// 10-hour or 100,000-pixel-wide declaration is refused without decoding a frame.
public struct VideoLimits: Sendable, Equatable {
    public var maxBytes: Int
    public var maxSeconds: Double
    /// The widest and tallest frame a stream may declare (FFmpeg's decoders are held to it as well).
    public var maxFrameSide: Int
    /// The most frames one request may sample.
    public var maxFrames: Int

    public init(maxBytes: Int = 256 << 20, maxSeconds: Double = 3600, maxFrameSide: Int = 8192, maxFrames: Int = 256) {
        self.maxBytes = maxBytes
        self.maxSeconds = maxSeconds
        self.maxFrameSide = maxFrameSide
        self.maxFrames = maxFrames
    }
}
