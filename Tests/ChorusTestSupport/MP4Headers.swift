/// Test videos edited in place: an MP4 whose headers claim what its frames do not hold.
public enum MP4Headers {
    /// The MP4 with its movie and media headers saying `hours` long (version-0 boxes: 32-bit durations).
    public static func rewritingDuration(_ bytes: [UInt8], hours: Int) -> [UInt8] {
        var out = bytes
        for box in ["mvhd", "mdhd"] {
            let tag = Array(box.utf8)
            var i = 0
            while i + 32 < out.count {
                if Array(out[i..<(i + 4)]) == tag, out[i + 4] == 0 {
                    // version and flags, creation, modification, timescale, duration.
                    let scaleAt = i + 16, durationAt = i + 20
                    let scale = out[scaleAt..<(scaleAt + 4)].reduce(0) { $0 << 8 | Int($1) }
                    let duration = UInt32(min(scale * 3600 * hours, Int(UInt32.max)))
                    for k in 0..<4 { out[durationAt + k] = UInt8(truncatingIfNeeded: duration >> (24 - 8 * k)) }
                }
                i += 1
            }
        }
        return out
    }
}
