/// Decoded audio: one Float32 array per channel, full scale at ±1.
public struct AudioSamples: Equatable, Sendable {
    public let sampleRate: Int
    public let channels: [[Float]]

    public init(sampleRate: Int, channels: [[Float]]) throws {
        guard sampleRate > 0 else { throw MediaError.invalidAudio("sample rate \(sampleRate) Hz") }
        guard let first = channels.first else { throw MediaError.invalidAudio("no channels") }
        guard channels.allSatisfy({ $0.count == first.count }) else {
            throw MediaError.invalidAudio("channels have different lengths: \(channels.map(\.count))")
        }
        self.sampleRate = sampleRate
        self.channels = channels
    }

    public init(sampleRate: Int, mono: [Float]) throws {
        try self.init(sampleRate: sampleRate, channels: [mono])
    }

    public var frameCount: Int { channels[0].count }
    public var duration: Double { Double(frameCount) / Double(sampleRate) }

    /// The mean of all channels, as ffmpeg's `-ac 1` and librosa's `to_mono` compute it.
    public func downmixedToMono() -> [Float] {
        guard channels.count > 1 else { return channels[0] }
        var mono = channels[0]
        for channel in channels.dropFirst() {
            channel.withUnsafeBufferPointer { source in
                mono.withUnsafeMutableBufferPointer { sum in
                    for i in 0..<sum.count { sum[i] += source[i] }
                }
            }
        }
        let scale = 1 / Float(channels.count)
        return mono.map { $0 * scale }
    }
}
