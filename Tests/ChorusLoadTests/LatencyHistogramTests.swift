import ChorusWire
import Foundation
import Testing
@testable import ChorusLoad

@Suite struct LatencyHistogramTests {
    @Test func smallValuesAreExactAndPercentilesAreNearestRank() {
        var h = LatencyHistogram()
        for v in 1...100 { h.record(microseconds: UInt64(v)) }
        #expect(h.count == 100 && h.min == 1 && h.max == 100)
        #expect(h.percentile(50) == 50 && h.percentile(90) == 90 && h.percentile(99) == 99 && h.percentile(100) == 100)
        #expect(abs(h.mean - 50.5) < 1e-9)
        #expect(abs(h.standardDeviation - 29.011491975882016) < 1e-6)
    }

    @Test func largeValuesAreKeptToWithinOnePartIn128() {
        var h = LatencyHistogram()
        let values: [UInt64] = [300, 1_000, 12_345, 999_999, 3_600_000_000, UInt64.max / 3]
        for v in values { h.record(microseconds: v) }
        for (i, v) in values.enumerated() {
            let reported = h.percentile(Double(i + 1) / Double(values.count) * 100)
            #expect(reported >= v && Double(reported - v) <= Double(v) / 128, "\(v) reported as \(reported)")
        }
    }

    @Test func bucketsCoverEveryValueInOrder() {
        var previous = -1
        for v in stride(from: UInt64(0), to: 1 << 20, by: 7) {
            let index = LatencyHistogram.index(v)
            #expect(index >= previous && LatencyHistogram.upperBound(index) >= v)
            previous = index
        }
        #expect(LatencyHistogram.index(.max) == LatencyHistogram.bucketCount - 1)
    }

    @Test func mergingIsTheSameAsRecordingTogether() {
        var a = LatencyHistogram(), b = LatencyHistogram(), both = LatencyHistogram()
        for v in stride(from: UInt64(5), to: 50_000, by: 37) {
            if v % 2 == 0 { a.record(microseconds: v) } else { b.record(microseconds: v) }
            both.record(microseconds: v)
        }
        a.add(b)
        #expect(a == both)
    }

    @Test func durationsAreRecordedInMicroseconds() {
        var h = LatencyHistogram()
        h.record(.milliseconds(12))
        h.record(.seconds(-1))
        #expect(h.max == 12_000 && h.min == 0)
    }
}
