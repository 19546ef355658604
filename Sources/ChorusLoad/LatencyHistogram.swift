/// Latencies in microseconds, HDR-style: each power of two is cut into 128 linear sub-buckets, so any
/// recorded value is kept to within 1/128 (0.8%) of itself, at any magnitude, in a fixed 58 KB of counts
/// however long a run lasts. Percentiles come from the counts, not from sorting samples.
/// (Values below 256 µs are kept exactly.)
public struct LatencyHistogram: Sendable, Equatable {
    /// Buckets per power of two above 256 µs: a value is known to within 1/128 of itself.
    static let half = 128
    static let bucketCount = 2 * half + 56 * half
    private var counts = [UInt64](repeating: 0, count: bucketCount)
    public private(set) var count: UInt64 = 0
    public private(set) var max: UInt64 = 0
    public private(set) var min: UInt64 = .max
    private var sum: Double = 0
    private var sumOfSquares: Double = 0

    public init() {}

    /// Below 256 the value itself; above, the power of two and the 7 bits after the leading one.
    static func index(_ value: UInt64) -> Int {
        guard value >= UInt64(2 * half) else { return Int(value) }
        let shift = (63 - value.leadingZeroBitCount) - 7  // ≥ 1, so value >> shift is in 128 ..< 256
        return 2 * half + (shift - 1) * half + Int(value >> UInt64(shift)) - half
    }

    /// The largest value that lands in bucket `index` (what a percentile reports).
    static func upperBound(_ index: Int) -> UInt64 {
        guard index >= 2 * half else { return UInt64(index) }
        let k = index - 2 * half
        let shift = UInt64(k / half + 1), sub = UInt64(k % half + half)
        return ((sub + 1) << shift) &- 1
    }

    public mutating func record(microseconds value: UInt64) {
        counts[Self.index(value)] += 1
        count += 1
        max = Swift.max(max, value)
        min = Swift.min(min, value)
        sum += Double(value)
        sumOfSquares += Double(value) * Double(value)
    }

    public mutating func record(_ duration: Duration) {
        record(microseconds: duration.microseconds)
    }

    public mutating func add(_ other: LatencyHistogram) {
        for i in counts.indices { counts[i] += other.counts[i] }
        count += other.count
        max = Swift.max(max, other.max)
        min = Swift.min(min, other.min)
        sum += other.sum
        sumOfSquares += other.sumOfSquares
    }

    public var mean: Double { count == 0 ? 0 : sum / Double(count) }

    public var standardDeviation: Double {
        guard count > 1 else { return 0 }
        let variance = (sumOfSquares - sum * sum / Double(count)) / Double(count - 1)
        return variance > 0 ? variance.squareRoot() : 0
    }

    /// The value at or below which `percent` of the recorded values lie (nearest rank), in µs.
    public func percentile(_ percent: Double) -> UInt64 {
        guard count > 0 else { return 0 }
        // The small slack keeps 50% of 6 values at rank 3 where floating point makes it 3.0000000000000004.
        let rank = Swift.max(1, UInt64(clamping: Int64((percent / 100 * Double(count) - 1e-9).rounded(.up))))
        var seen: UInt64 = 0
        for (index, bucket) in counts.enumerated() where bucket > 0 {
            seen += bucket
            if seen >= rank { return Swift.min(Self.upperBound(index), max) }
        }
        return max
    }
}
